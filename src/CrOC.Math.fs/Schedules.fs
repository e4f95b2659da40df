/// Per-iteration schedules (DINO's `cosine_scheduler`) and the teacher-temperature warm-up.
module CrOC.Math.Schedules

/// A cosine decay from `Base` to `Final` over the iterations after a linear warm-up from
/// `WarmupStart` to `Base` (inclusive of both ends, as numpy.linspace) over `WarmupIters`.
type CosineSchedule =
    { Base: float
      Final: float
      TotalIters: int
      WarmupIters: int
      WarmupStart: float }

/// The schedule's value at iteration i (0-based). Past the end it stays at the last value.
let cosineAt (s: CosineSchedule) (i: int) : float =
    if s.WarmupIters > 0 && i < s.WarmupIters then
        if s.WarmupIters = 1 then s.WarmupStart
        else s.WarmupStart + (s.Base - s.WarmupStart) * float i / float (s.WarmupIters - 1)
    else
        let decayIters = max 1 (s.TotalIters - s.WarmupIters)
        let j = min (i - s.WarmupIters) (decayIters - 1)
        s.Final + 0.5 * (s.Base - s.Final) * (1.0 + cos (System.Math.PI * float j / float decayIters))

/// The warm-up epochs a run of `epochs` uses: none when it has ≤ 2 epochs (the official code's rule
/// for both the lr and the teacher-temperature warm-ups), else `warmupEpochs`.
let warmupFor (epochs: int) (warmupEpochs: int) : int = if epochs <= 2 then 0 else warmupEpochs

/// The official linear scaling: peak lr = base lr × global batch / 256.
let scaledLearningRate (baseLr: float) (globalBatch: int) : float = baseLr * float globalBatch / 256.0

/// Learning rate: linear warm-up from 0 over `warmupEpochs`, then cosine to `minLr`.
let learningRate (peak: float) (minLr: float) (epochs: int) (itersPerEpoch: int) (warmupEpochs: int) =
    { Base = peak; Final = minLr; TotalIters = epochs * itersPerEpoch; WarmupIters = warmupEpochs * itersPerEpoch; WarmupStart = 0.0 }

/// Weight decay: cosine from `start` (0.04) to `final` (0.4), no warm-up.
let weightDecay (start: float) (final: float) (epochs: int) (itersPerEpoch: int) =
    { Base = start; Final = final; TotalIters = epochs * itersPerEpoch; WarmupIters = 0; WarmupStart = 0.0 }

/// EMA momentum m_i = 1 + ½(m0 − 1)(1 + cos(π i / I)), rising from m0 (0.996) to 1.
let teacherMomentum (m0: float) (epochs: int) (itersPerEpoch: int) =
    { Base = m0; Final = 1.0; TotalIters = epochs * itersPerEpoch; WarmupIters = 0; WarmupStart = 0.0 }

/// τ_t at `epoch`: linspace(warmup, final, warmupEpochs) during the warm-up, then `final`.
let teacherTemperature (warmup: float) (final: float) (warmupEpochs: int) (epoch: int) : float =
    if epoch >= warmupEpochs then final
    elif warmupEpochs = 1 then warmup
    else warmup + (final - warmup) * float epoch / float (warmupEpochs - 1)
