/// A naive float64 implementation of the joint-space clustering (spec §6.1–§6.8) over F# arrays,
/// written from the spec's steps with plain loops, to compare `Clustering.cluster` against.
module CrOC.Tests.ClusteringReference

type Result =
    { /// K* per problem.
      KStar: int[]
      /// W per view, problem, token, cluster (K* columns per problem).
      Masks: float[][][][]
      /// Valid flat indices s·K̄ + k, ascending.
      Valid: int[]
      /// Per stage (K0 first): the transport cost of every problem.
      Costs: float[][]
      /// Per stage: the token marginal a and the cluster marginal b of every problem.
      TokenMarginals: float[][][]
      ClusterMarginals: float[][][]
      /// Per merge: the pair (i, j) of every problem.
      Merges: (int * int)[][] }

open CrOC.Tests.Reference

/// features.[row].[token].[i] with rows (view, image, group), token 0 the CLS; positions.[row].[n]
/// (x, y) with rows (view, image); seeds.[s] token indices in [0, 2N). K0 → 2 with the official
/// rules: τ_r, τ_c, λ_pos, λ, T as given, K* among K ≤ largestSelectableK by the smallest cost (ties: larger K).
let cluster (tauR: float) (tauC: float) (lambdaPos: float) (lambda: float) (iterations: int) (largestSelectableK: int)
            (features: float[][][]) (positions: float[][][]) (seeds: int[][]) : Result =
    let s = features.Length / 2
    let b = positions.Length / 2
    let groups = s / b
    let n = features.[0].Length - 1
    let k0 = seeds.[0].Length
    // §6.1: X (2N tokens, view 1 first), the CLS of each view, e, ρ
    let x = Array.init s (fun si -> Array.init (2 * n) (fun t -> normalise features.[(t / n) * s + si].[1 + t % n]))
    let cls = Array.init s (fun si -> Array.init 2 (fun m -> normalise features.[m * s + si].[0]))
    let e = Array.init s (fun si -> Array.init (2 * n) (fun t -> positions.[(t / n) * b + si / groups].[t % n]))
    let rho = Array.init s (fun si -> Array.init (2 * n) (fun t -> dot x.[si].[t] cls.[si].[t / n]))
    let a = rho |> Array.map (fun r -> softmax (r |> Array.map (fun v -> v / tauR)))
    let mutable bs = Array.init s (fun si -> softmax (seeds.[si] |> Array.map (fun t -> rho.[si].[t] / tauC)))
    let mutable centroids = Array.init s (fun si -> seeds.[si] |> Array.map (fun t -> x.[si].[t]))
    let mutable centroidPositions = Array.init s (fun si -> seeds.[si] |> Array.map (fun t -> e.[si].[t]))
    let costs, tokenMarginals, clusterMarginals, merges, plans = ResizeArray(), ResizeArray(), ResizeArray(), ResizeArray(), ResizeArray()
    // P̄ᵀ·rows: each column of P as a distribution over the 2N tokens, weighting `rows` (2N rows)
    let weightedMeans (p: float[,]) (rows: float[][]) =
        Array.init (Array2D.length2 p) (fun j ->
            let mass = Seq.sum (seq { for t in 0 .. 2 * n - 1 -> p.[t, j] })
            Array.init rows.[0].Length (fun i -> Seq.sum (seq { for t in 0 .. 2 * n - 1 -> p.[t, j] / mass * rows.[t].[i] })))
    for k in k0 .. -1 .. 2 do
        // §6.4–§6.5 steps 1–3: M = −X·Ĉᵀ + λ_pos·D, D by the per-problem maximum, then one global min–max
        let raw =
            Array.init s (fun si ->
                let dist = Array2D.init (2 * n) k (fun t j -> sqrt (dot (Array.map2 (-) e.[si].[t] centroidPositions.[si].[j]) (Array.map2 (-) e.[si].[t] centroidPositions.[si].[j])))
                let top = Seq.max (Seq.cast<float> dist)
                let c = centroids.[si] |> Array.map normalise
                Array2D.init (2 * n) k (fun t j -> -(dot x.[si].[t] c.[j]) + lambdaPos * (if top > 0.0 then dist.[t, j] / top else 0.0)))
        let all = raw |> Seq.collect Seq.cast<float>
        let low, high = Seq.min all, Seq.max all
        let m = raw |> Array.map (Array2D.map (fun v -> (v - low) / (high - low)))
        // step 4: Sinkhorn per problem
        let solved = Array.init s (fun si -> sinkhorn lambda iterations a.[si] bs.[si] m.[si])
        costs.Add(solved |> Array.map snd)
        tokenMarginals.Add a
        clusterMarginals.Add bs
        plans.Add(solved |> Array.map fst)
        if k > 2 then
            let pairs, next =
                solved
                |> Array.mapi (fun si (p, _) ->
                    // steps 7–8: C = P̄ᵀX (un-normalised), argmax of C·Cᵀ − 2I, first in row-major order
                    let c = weightedMeans p x.[si]
                    let mutable best, bi, bj = -infinity, -1, -1
                    for i in 0 .. k - 1 do
                        for j in 0 .. k - 1 do
                            let g = dot c.[i] c.[j] - (if i = j then 2.0 else 0.0)
                            if g > best then best <- g; bi <- i; bj <- j
                    // step 9: remove i and j, append their sum last
                    let kept = [| for j in 0 .. k - 1 do if j <> bi && j <> bj then yield j |]
                    let merged = Array2D.init (2 * n) (k - 1) (fun t j -> if j < k - 2 then p.[t, kept.[j]] else p.[t, bi] + p.[t, bj])
                    (bi, bj), merged)
                |> Array.unzip
            merges.Add pairs
            centroids <- Array.init s (fun si -> weightedMeans next.[si] x.[si])
            centroidPositions <- Array.init s (fun si -> weightedMeans next.[si] e.[si])
            // b = Σ_t a_t·P̄_t, renormalised: the token marginal as one-column rows through weightedMeans
            bs <- Array.init s (fun si ->
                let raw = weightedMeans next.[si] (a.[si] |> Array.map (fun v -> [| v |])) |> Array.map Array.exactlyOne
                raw |> Array.map (fun v -> v / Array.sum raw))
    // §6.6: K* = argmin of the cost over K ≤ largestSelectableK (stages are K0, K0 − 1, …), ties to the larger K
    let kStar =
        Array.init s (fun si ->
            let mutable best, chosen = infinity, -1
            for stage in 0 .. costs.Count - 1 do
                let k = k0 - stage
                if k <= largestSelectableK && costs.[stage].[si] < best then best <- costs.[stage].[si]; chosen <- k
            chosen)
    // §6.5 step 5, §6.7: Q per view and column, H at each row's maximum, W = Q ⊙ H
    let masks =
        Array.init 2 (fun view ->
            Array.init s (fun si ->
                let k = kStar.[si]
                let p = plans.[k0 - k].[si]
                let q = Array2D.init n k (fun ni j -> p.[view * n + ni, j] / Seq.sum (seq { for t in 0 .. n - 1 -> p.[view * n + t, j] }))
                Array.init n (fun ni ->
                    let top = Array.max (Array.init k (fun j -> q.[ni, j]))
                    Array.init k (fun j -> if q.[ni, j] = top then q.[ni, j] else 0.0))))
    // §6.8: valid when Σ_n W > 0 in both views
    let columns = Array.max kStar
    let valid =
        [| for si in 0 .. s - 1 do
             for j in 0 .. kStar.[si] - 1 do
                 let present view = masks.[view].[si] |> Array.sumBy (fun row -> row.[j]) > 0.0
                 if present 0 && present 1 then yield si * columns + j |]
    { KStar = kStar; Masks = masks; Valid = valid; Costs = costs.ToArray(); TokenMarginals = tokenMarginals.ToArray()
      ClusterMarginals = clusterMarginals.ToArray(); Merges = merges.ToArray() }
