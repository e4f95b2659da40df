/// The self-distillation losses (spec §5, §7) and the centre updates.
/// Rows of every (2R, L) tensor are ordered view 1 first, then view 2.
module CrOC.Math.Losses

open TorchSharp
open CrOC.Math.Tensors

/// H(A, B) = −(1/K) Σ_k Σ_l A_kl log B_kl: cross-entropy between target rows A and
/// log-probability rows log B, averaged over the K rows (the poster's H). (K, L), (K, L) → scalar.
let crossEntropy (targets: Tensor) (logPredictions: Tensor) : Tensor =
    -((targets * logPredictions).sum(-1L).mean())

/// Teacher targets softmax((g_t − κ)/τ_t): centring by κ (1, L), sharpening by τ_t.
let teacherTargets (tauT: float) (centre: Tensor) (teacherLogits: Tensor) : Tensor =
    (over (minus teacherLogits centre) tauT).softmax(-1L)

/// Student log-predictions log softmax(g_s/τ_s).
let studentLogProbs (tauS: float) (studentLogits: Tensor) : Tensor =
    (over studentLogits tauS).log_softmax(-1L)

/// ½ [H(t¹, s²) + H(t², s¹)]: each view's teacher target against the OTHER view's student.
/// Targets (2R, L), log-predictions (2R, L).
let crossViewLoss (targets: Tensor) (logPredictions: Tensor) : Tensor =
    let t = targets.chunk(2L, 0L)
    let s = logPredictions.chunk(2L, 0L)
    times 0.5 (plus (crossEntropy t.[0] s.[1]) (crossEntropy t.[1] s.[0]))

/// Temperatures of one distillation branch.
type Temperatures =
    { /// τ_s (0.1 for both branches in the official code).
      Student: float
      /// τ_t for this epoch (see `Schedules.teacherTemperature`).
      Teacher: float }

/// L_img (lossGlob): the image-level loss on head outputs g_s, g_t (2B, L) with centre κ (1, L).
let lossGlob (temps: Temperatures) (centre: Tensor) (studentLogits: Tensor) (teacherLogits: Tensor) : Tensor =
    crossViewLoss (teacherTargets temps.Teacher centre teacherLogits) (studentLogProbs temps.Student studentLogits)

/// The object-level loss and whether it had anything to average.
type DenseLoss =
    { /// L_obj, a scalar; exactly 0 (still attached to the student's graph) when there is no object.
      Loss: Tensor
      /// True when the valid set V was empty, so L_obj carries no signal this step.
      Empty: bool }

/// L_obj (lossDense): the object-level loss on projections a_s, a_t (2V, L_c) of the V matched
/// objects, with centre κ_c (1, L_c). An empty V gives 0 with `Empty = true`, never NaN.
let lossDense (temps: Temperatures) (centre: Tensor) (studentLogits: Tensor) (teacherLogits: Tensor) : DenseLoss =
    if studentLogits.shape.[0] = 0L then
        { Loss = times 0.0 (studentLogits.sum()); Empty = true }
    else
        { Loss = lossGlob temps centre studentLogits teacherLogits; Empty = false }

/// The statistics a centre update needs: the sum of the teacher rows (1, L) and their count.
/// Kept apart so a distributed run can all-reduce both before `updateCentre`.
type RowSum = { Sum: Tensor; Count: float }

/// Σ over the rows of the teacher's outputs (no gradient). (R, L) → { (1, L); R }.
let rowSum (teacherLogits: Tensor) : RowSum =
    use _ = torch.no_grad()
    { Sum = teacherLogits.detach().sum(0L, keepdim = true); Count = float teacherLogits.shape.[0] }

/// κ ← m·κ + (1 − m)·Σ/count (momentum m = 0.9 in the official code). A count of 0 (no object
/// anywhere) leaves κ as it is instead of dividing by zero. Returns a new tensor.
let updateCentre (momentum: float) (centre: Tensor) (stats: RowSum) : Tensor =
    use _ = torch.no_grad()
    if stats.Count = 0.0 then centre.clone()
    else plus (times momentum centre) (times ((1.0 - momentum) / stats.Count) stats.Sum)

/// Mean entropy −Σ p log p of probability rows (R, L) → scalar, for collapse diagnostics.
let meanEntropy (probabilities: Tensor) : Tensor =
    let safe = withScalar 1e-30 (fun s -> probabilities.clamp_min(s))
    -((probabilities * safe.log()).sum(-1L).mean())
