/// Naive float64 implementations over F# arrays, written from the spec's formulas with plain
/// loops, to compare the TorchSharp versions against.
module CrOC.Tests.Reference

/// Linear-domain Sinkhorn of one problem: cost m (n × k), marginals a (n), b (k).
/// Returns the plan and ⟨P, M⟩.
let sinkhorn (lambda: float) (iterations: int) (a: float[]) (b: float[]) (m: float[,]) : float[,] * float =
    let n, k = Array2D.length1 m, Array2D.length2 m
    let p = Array2D.init n k (fun i j -> exp (-lambda * m.[i, j]))
    let total = Seq.sum (Seq.cast<float> p)
    for i in 0 .. n - 1 do
        for j in 0 .. k - 1 do
            p.[i, j] <- p.[i, j] / total
    for _ in 1 .. iterations do
        for i in 0 .. n - 1 do
            let r = Seq.sum (seq { for j in 0 .. k - 1 -> p.[i, j] })
            for j in 0 .. k - 1 do
                p.[i, j] <- p.[i, j] * a.[i] / r
        for j in 0 .. k - 1 do
            let c = Seq.sum (seq { for i in 0 .. n - 1 -> p.[i, j] })
            for i in 0 .. n - 1 do
                p.[i, j] <- p.[i, j] * b.[j] / c
    let cost = Seq.sum (seq { for i in 0 .. n - 1 do for j in 0 .. k - 1 -> p.[i, j] * m.[i, j] })
    p, cost

let softmax (xs: float[]) =
    let top = Array.max xs
    let e = xs |> Array.map (fun x -> exp (x - top))
    let s = Array.sum e
    e |> Array.map (fun x -> x / s)

let logSoftmax (xs: float[]) =
    let top = Array.max xs
    let lse = top + log (xs |> Array.sumBy (fun x -> exp (x - top)))
    xs |> Array.map (fun x -> x - lse)

/// ⟨x, y⟩.
let dot (x: float[]) (y: float[]) = Array.fold2 (fun acc p q -> acc + p * q) 0.0 x y

/// x / max(‖x‖₂, 1e-12), as F.normalize.
let normalise (x: float[]) = let n = max (sqrt (dot x x)) 1e-12 in x |> Array.map (fun v -> v / n)

/// The teacher's target of spec §5: softmax((g_t − κ) / τ_t).
let teacherTarget (tauT: float) (centre: float[]) (g: float[]) = softmax (Array.map2 (fun x c -> (x - c) / tauT) g centre)

/// The cross-view distillation loss of spec §5/§7 on rows (2R of them, view 1 first):
/// ½ [mean_r H(t¹_r, s²_r) + mean_r H(t²_r, s¹_r)], t = softmax((g_t − κ)/τ_t), s = log softmax(g_s/τ_s).
let crossViewLoss (tauS: float) (tauT: float) (centre: float[]) (student: float[][]) (teacher: float[][]) : float =
    let rows = student.Length / 2
    let logPred (g: float[]) = logSoftmax (g |> Array.map (fun x -> x / tauS))
    let h (t: float[]) (s: float[]) = -(Array.map2 (*) t s |> Array.sum)
    let term teacherView studentView =
        (seq { for r in 0 .. rows - 1 -> h (teacherTarget tauT centre teacher.[teacherView * rows + r]) (logPred student.[studentView * rows + r]) } |> Seq.sum) / float rows
    0.5 * (term 0 1 + term 1 0)
