/// The self-distillation losses (spec §5, §7) and the centre updates.
/// Rows of every (2R, L) tensor are ordered view 1 first, then view 2.
module CrOC.Math.Losses

open TorchSharp
open CrOC.Math.Tensors

/// −Σ_l A_kl log B_kl for each row k of target rows A and log-probability rows log B. (K, L), (K, L) → (K).
let rowCrossEntropies (targets: Tensor) (logPredictions: Tensor) : Tensor = -((targets * logPredictions).sum(-1L))

/// H(A, B) = −(1/K) Σ_k Σ_l A_kl log B_kl: the row cross-entropies averaged over the K rows (the
/// poster's H). (K, L), (K, L) → scalar.
let crossEntropy (targets: Tensor) (logPredictions: Tensor) : Tensor = (rowCrossEntropies targets logPredictions).mean()

/// Σ_k w_k H_k / max(Σ_k w_k, 1) with weights w (K): with 0/1 weights the mean over the rows of
/// weight 1, and exactly 0 (still attached to the graph) when every weight is 0.
let weightedCrossEntropy (weights: Tensor) (targets: Tensor) (logPredictions: Tensor) : Tensor =
    let w = weights.to_type(targets.dtype)
    (rowCrossEntropies targets logPredictions * w).sum() / withScalar 1.0 (fun one -> w.sum().clamp_min(one))

/// Teacher targets softmax((g_t − κ)/τ_t): centring by κ (1, L), sharpening by τ_t.
let teacherTargets (tauT: float) (centre: Tensor) (teacherLogits: Tensor) : Tensor =
    (over (minus teacherLogits centre) tauT).softmax(-1L)

/// Student log-predictions log softmax(g_s/τ_s).
let studentLogProbs (tauS: float) (studentLogits: Tensor) : Tensor =
    (over studentLogits tauS).log_softmax(-1L)

/// ½ [H(t¹, s²) + H(t², s¹)] with H = `crossEntropyOf`: each view's teacher target against the
/// OTHER view's student. Targets (2R, L), log-predictions (2R, L).
let private crossViewBy (crossEntropyOf: Tensor -> Tensor -> Tensor) (targets: Tensor) (logPredictions: Tensor) : Tensor =
    let t = targets.chunk(2L, 0L)
    let s = logPredictions.chunk(2L, 0L)
    times 0.5 (plus (crossEntropyOf t.[0] s.[1]) (crossEntropyOf t.[1] s.[0]))

/// Temperatures of one distillation branch.
type Temperatures =
    { /// τ_s (0.1 for both branches in the official code).
      Student: float
      /// τ_t for this epoch (see `Schedules.teacherTemperature`).
      Teacher: float }

/// Self-distillation with centre κ (1, L) on head outputs g_s, g_t (2R, L), H = `crossEntropyOf`.
let private distillBy (crossEntropyOf: Tensor -> Tensor -> Tensor) (temps: Temperatures) (centre: Tensor) (studentLogits: Tensor) (teacherLogits: Tensor) : Tensor =
    crossViewBy crossEntropyOf (teacherTargets temps.Teacher centre teacherLogits) (studentLogProbs temps.Student studentLogits)

/// L_img (lossGlob): the image-level loss on head outputs g_s, g_t (2B, L) with centre κ (1, L).
let lossGlob (temps: Temperatures) (centre: Tensor) (studentLogits: Tensor) (teacherLogits: Tensor) : Tensor =
    distillBy crossEntropy temps centre studentLogits teacherLogits

/// L_obj (lossDense): the object-level loss on projections a_s, a_t (2V, L_c) of the V matched
/// objects, with centre κ_c (1, L_c). An empty V gives exactly 0 (still attached to the student's
/// graph), never NaN.
let lossDense (temps: Temperatures) (centre: Tensor) (studentLogits: Tensor) (teacherLogits: Tensor) : Tensor =
    if studentLogits.shape.[0] = 0L then times 0.0 (studentLogits.sum())
    else lossGlob temps centre studentLogits teacherLogits

/// L_obj over the projections a_s, a_t (2R, L_c) of R candidate objects, each row pair weighted by
/// `validity` (R) 0/1: the same value as `lossDense` on the valid rows alone (up to the order of
/// the sums), exactly 0 when no row is valid; no host read.
let lossDenseWeighted (validity: Tensor) (temps: Temperatures) (centre: Tensor) (studentLogits: Tensor) (teacherLogits: Tensor) : Tensor =
    distillBy (weightedCrossEntropy validity) temps centre studentLogits teacherLogits

/// The statistics a centre update needs: the sum of the teacher rows (1, L) and their count, a 0-d
/// float64 tensor on the rows' device (read back only with the step's metrics). Kept apart so a
/// distributed run can all-reduce both before `updateCentre`.
type RowSum = { Sum: Tensor; Count: Tensor }

/// Σ over the rows of the teacher's outputs (no gradient). (R, L) → { (1, L); R }.
let rowSum (teacherLogits: Tensor) : RowSum =
    use _ = torch.no_grad()
    { Sum = teacherLogits.detach().sum(0L, keepdim = true)
      Count = filledOn teacherLogits.device torch.float64 (float teacherLogits.shape.[0]) }

/// Σ over the rows of both views' teacher outputs (2R, L) weighted by `validity` (R) 0/1 (no
/// gradient) → { (1, L); 2·Σ validity }: `rowSum` of the valid rows alone.
let weightedRowSum (validity: Tensor) (teacherLogits: Tensor) : RowSum =
    use _ = torch.no_grad()
    let both = torch.cat([| validity; validity |]).to_type(teacherLogits.dtype).unsqueeze(-1)   // (2R, 1)
    { Sum = (teacherLogits.detach() * both).sum(0L, keepdim = true)
      Count = both.sum().to_type(torch.float64) }

/// κ ← m·κ + (1 − m)·Σ/count (momentum m = 0.9 in the official code). A count of 0 (no object
/// anywhere) leaves κ as it is instead of dividing by zero; no host read. Returns a new tensor.
let updateCentre (momentum: float) (centre: Tensor) (stats: RowSum) : Tensor =
    use _ = torch.no_grad()
    let count = stats.Count.to_type(torch.float64)
    let factor = filledOn count.device torch.float64 (1.0 - momentum) / count           // (1 − m)/count, in float64
    let moved = plus (times momentum centre) (stats.Sum * factor)
    withScalar 0.0 (fun zero -> torch.where(count.gt(zero), moved, centre))

/// Mean entropy −Σ p log p of probability rows (R, L) → scalar, for collapse diagnostics.
let meanEntropy (probabilities: Tensor) : Tensor =
    let safe = withScalar 1e-30 (fun s -> probabilities.clamp_min(s))
    -((probabilities * safe.log()).sum(-1L).mean())
