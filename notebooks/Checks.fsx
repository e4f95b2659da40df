// The notebooks' claims, checked: a claim that does not hold fails its cell, and so the headless
// run of CI (`bash .ci/notebooks.sh`). The references here are plain float64 arrays, not CrOC.Math.

/// Fails the cell with `claim` when it does not hold.
let check (claim: string) (holds: bool) = if not holds then failwithf "check failed: %s" claim

/// Linear-domain Sinkhorn (spec §6.5) in float64: P = exp(−λM) / Σ exp(−λM), then `iterations`
/// times the rows scaled to the marginal a and the columns to b (without `Sinkhorn.sinkhorn`'s
/// NaN → 1e-8 fill: the notebook's costs give no NaN).
let referenceSinkhorn (lambda: float) (iterations: int) (a: float[]) (b: float[]) (m: float[,]) =
    let n, k = Array2D.length1 m, Array2D.length2 m
    let kernel = Array2D.map (fun c -> exp (-lambda * c)) m
    let total = Seq.sum (Seq.cast<float> kernel)
    let p = Array2D.map (fun v -> v / total) kernel
    for _ in 1 .. iterations do
        for r in 0 .. n - 1 do
            let sum = Seq.sum (seq { for c in 0 .. k - 1 -> p.[r, c] })
            for c in 0 .. k - 1 do p.[r, c] <- p.[r, c] * a.[r] / sum
        for c in 0 .. k - 1 do
            let sum = Seq.sum (seq { for r in 0 .. n - 1 -> p.[r, c] })
            for r in 0 .. n - 1 do p.[r, c] <- p.[r, c] * b.[c] / sum
    p

/// The mean over `rows` of the entropy (nats) of softmax((row − centre) / τ), in float64.
let referenceEntropy (tau: float) (centre: float[]) (rows: float[][]) =
    rows |> Array.averageBy (fun row ->
        let z = Array.map2 (fun x c -> (x - c) / tau) row centre
        let top = Array.max z
        let e = z |> Array.map (fun v -> exp (v - top))
        let total = Array.sum e
        -(e |> Array.sumBy (fun v -> let p = v / total in if p > 0.0 then p * log p else 0.0)))
