/// Joint-space (cross-view) online clustering of CrOC (spec §6), batched over S problems.
///
/// A problem s is one (image, feature group) pair: with per-head keys S = B·h, with output
/// tokens S = B. Its 2N tokens are the N patches of view 1 followed by the N patches of view 2
/// (row-major over the patch grid). Everything here runs without gradient and in fp32 (float64
/// inputs stay float64, which the tests use).
module CrOC.Math.Clustering

open TorchSharp
open CrOC.Math.Tensors
open CrOC.Math.Sinkhorn
open CrOC.Math.Costs

/// How the token marginal a (2N) and the cluster marginal b (K) are formed.
type Marginals =
    /// a = softmax(ρ/τ_r) over all 2N tokens, b = softmax(ρ_seeds/τ_c) over the seeds, where
    /// ρ_n = ⟨x_n, x_cls of the token's view⟩ (official: `uniform_marginals=False`, τ_r = τ_c = 2).
    | ClsSimilarity of tauR: float * tauC: float
    /// a = 1/2N, b = 1/K (the poster's variant, `uniform_marginals=True`).
    | Uniform

/// How the final number of clusters K* of each problem is chosen.
type KSelection =
    /// Merge K0 → 2 and pick K* = argmin of the transport cost among K ∈ {kMax, …, 2}; ties go to
    /// the larger K (official: `n_centroids_max` = 4).
    | MinTransportCost of kMax: int
    /// Merge K0 → k and keep K* = k for every problem (k = K0: no merge at all).
    | FixedK of k: int

/// How the selected clusters are laid out for the objects and L_obj (spec §6.6–§6.8).
type ObjectShapes =
    /// Masks of K̄ = max K* columns and the valid clusters as a list of V flat indices: shapes that
    /// depend on the data, so both are read back to the host (the spec's form).
    | Dynamic
    /// Masks of as many columns as the selection's largest K and a 0/1 validity per column: shapes
    /// fixed by the configuration, no host read; the objects and L_obj weigh every column by its
    /// validity (the same values as `Dynamic` up to float rounding).
    | Fixed

/// Which Sinkhorn solver runs each stage.
type SinkhornVariant =
    /// `Sinkhorn.sinkhorn`, as the official code.
    | Linear
    /// `Sinkhorn.sinkhornLog`, finite for large λ and tiny marginals.
    | LogDomain

type ClusteringConfig =
    { /// K0, the number of seeds (`n_tokens`).
      K0: int
      Selection: KSelection
      /// λ = 1/ε of the entropic transport (`sinkhorn_lambda`).
      SinkhornLambda: float
      /// T, the number of row-then-column sweeps (`sinkhorn_iterations`).
      SinkhornIterations: int
      Solver: SinkhornVariant
      /// λ_pos, the weight of the positional cost (`pos_alpha`).
      LambdaPos: float
      Marginals: Marginals
      /// Temperature of the seeding distribution p = softmax(ρ / τ_seed) (2.0 in the official code).
      SeedTemperature: float
      /// The layout of the selected clusters (`Dynamic`, the spec's, by default).
      Shapes: ObjectShapes }

    /// The official defaults (spec §10).
    static member Official =
        { K0 = 5
          Selection = MinTransportCost 4
          SinkhornLambda = 20.0
          SinkhornIterations = 5
          Solver = Linear
          LambdaPos = 4.0
          Marginals = ClsSimilarity(2.0, 2.0)
          SeedTemperature = 2.0
          Shapes = Dynamic }

    /// The poster's variant: uniform marginals and a fixed K (use it with output-token features).
    static member Poster(k: int) =
        { ClusteringConfig.Official with Selection = FixedK k; Marginals = Uniform }

/// Where the K0 seeds come from.
type Seeding =
    /// Drawn from p without replacement, over both views, with this generator (a CPU one, whatever
    /// the features' device): `torch.multinomial`'s draw.
    | Sampled of torch.Generator
    /// Drawn from p without replacement as the K0 largest p / q, with Exp(1) noise q (S, 2N) drawn
    /// beforehand by `seedNoise`: the same seeds as `Sampled` with the generator q came from, but
    /// the noise can reach the device before the teacher's forward, so nothing waits for it there.
    | Noisy of Tensor
    /// Injected token indices (S, K0), int64 in [0, 2N), distinct per row: reproducible runs and
    /// comparisons with the official implementation.
    | Given of Tensor

/// Which pair of clusters each merge joins.
type Merging =
    /// The closest pair by C·Cᵀ − 2I of the un-normalised centroids (official); ties go to the
    /// first pair in row-major order, so float rounding decides between equally close pairs.
    | Closest
    /// Injected pairs, one (S, 2) int64 tensor (i, j), i ≠ j, per merge in stage order (K0 → K0−1
    /// first): replays the merges of another run or implementation exactly.
    | GivenPairs of Tensor list

/// One stage of the merge loop: everything its Sinkhorn solve saw and gave.
type Stage =
    { K: int
      /// Q_K: the plan normalised per view and per column, (S, 2, N, K): each column sums to 1
      /// within each view.
      Plan: Tensor
      /// P: the raw transport plan, (S, 2N, K), total mass 1 per problem.
      RawPlan: Tensor
      /// M: the min–max rescaled joint cost the stage solved, (S, 2N, K).
      CostMatrix: Tensor
      /// a: the token marginal, (S, 2N).
      TokenMarginal: Tensor
      /// b: the cluster marginal, (S, K).
      ClusterMarginal: Tensor
      /// ρ: each token's similarity to the CLS feature of its view (what a and the seeding come from), (S, 2N).
      TokenScores: Tensor
      /// ⟨P, M⟩ of the stage, (S).
      Cost: Tensor
      /// The pair (i, j) merged after this stage, (S, 2) int64; None at the last stage.
      Merged: Tensor option }

/// K* per problem and what follows from it (spec §6.6–§6.8).
type Assignment =
    { /// K* per problem, (S) int64.
      KStar: Tensor
      /// The masks' columns: K̄ = max K* over the batch (`Dynamic`), or the selection's largest K (`Fixed`).
      Columns: int
      /// W = Q_{K*} ⊙ H, (2, S, N, Columns), view-major; columns ≥ K* of a problem are zero.
      Masks: Tensor
      /// Whether cluster (s, k) has Σ_n W > 0 (a patch's maximum) in each view, (S, Columns) bool.
      Validity: Tensor }

type Clusters =
    { /// W = Q_{K*} ⊙ H: each token keeps the soft weight of its argmax cluster(s) only,
      /// (2, S, N, Columns), view-major; columns ≥ K* of a problem are zero padding.
      Masks: Tensor
      /// Whether cluster (s, k) has Σ_n W > 0 (a patch's maximum) in EACH view, (S, Columns) bool;
      /// padding columns are never valid.
      Validity: Tensor
      /// K* per problem, (S) int64.
      KStar: Tensor
      /// The masks' columns: K̄ = max K* over the batch (`Dynamic` shapes), or the selection's
      /// largest K whatever the data (`Fixed`).
      Columns: int
      /// The seeds used, (S, K0) int64.
      Seeds: Tensor
      /// Stages K0, K0−1, …, in merge order (each with its raw plan, cost matrix, marginals and merged pair).
      Stages: Stage list
      /// Problems per image (h for per-head keys, 1 for output tokens).
      ProblemsPerImage: int }

    /// Flat indices s·Columns + k of the valid clusters, (V) int64, ascending; may be empty.
    /// A new tensor, and a host read of V.
    member this.Valid : Tensor = this.Validity.flatten().nonzero().flatten()

    /// |V| (a host read).
    member this.ValidCount : int = int (toFloat (this.Validity.sum()))

    /// Every tensor of the record.
    member this.Tensors : Tensor list =
        [ this.Masks; this.Validity; this.KStar; this.Seeds
          for stage in this.Stages do
              stage.Plan
              stage.RawPlan
              stage.CostMatrix
              stage.TokenMarginal
              stage.ClusterMarginal
              stage.TokenScores
              stage.Cost
              match stage.Merged with
              | Some pair -> pair
              | None -> () ]

    /// The merges of every stage, in order: `GivenPairs` of these replays this clustering.
    member this.Merges : Tensor list = this.Stages |> List.choose (fun stage -> stage.Merged)

/// Exp(1) noise q (S, 2N) of `dtype` drawn with `generator` (CPU), on `device`. `torch.multinomial`
/// without replacement draws exactly this q and keeps the K largest p / q (the exponential form of
/// the Gumbel-top-k trick), so `Noisy q` seeds the clustering as `Sampled generator` would.
let seedNoise (generator: torch.Generator) (s: int64) (twoN: int64) (dtype: torch.ScalarType) (device: torch.Device) : Tensor =
    torch.empty(s, twoN, dtype = dtype).exponential_(1.0, generator = generator).``to``(device)

/// The K indices of the largest p / q per row, largest first: p (S, 2N) ≥ 0, q (S, 2N) > 0 → (S, K) int64.
let seedsOf (k: int) (weights: Tensor) (noise: Tensor) : Tensor =
    let struct (_, indices) = (weights / noise).topk(k)
    indices

/// Rows (S, K, c) of `table` (S, 2N, c) at `indices` (S, K).
let private gatherTokens (table: Tensor) (indices: Tensor) : Tensor =
    table.gather(1L, indices.unsqueeze(-1).expand(indices.shape.[0], indices.shape.[1], table.shape.[2]))

/// P̄ = P / column sums: each column becomes a distribution over the 2N tokens. (S, 2N, K)
let private columnDistributions (plan: Tensor) : Tensor = safeDivide plan (plan.sum(1L, keepdim = true))

/// Q^m[n,k] = P[n,k] / Σ_{n' ∈ view m} P[n',k]. Plan (S, 2N, K) → (S, 2, N, K).
let perViewColumnNormalised (plan: Tensor) : Tensor =
    let s, k = plan.shape.[0], plan.shape.[2]
    let byView = plan.view(s, 2L, -1L, k)                                  // (S, 2, N, K)
    safeDivide byView (byView.sum(2L, keepdim = true))

/// The two closest clusters of every problem: with C = P̄ᵀX (un-normalised), the pair (i, j) =
/// argmax of C·Cᵀ − 2I, the first in row-major order on ties. Plan (S, 2N, K), tokens X (S, 2N, d)
/// → (S, 2) int64, i ≠ j, in either order: bmm may round G[j, i] an ulp above G[i, j] (the merge is
/// the same either way).
let closestPair (plan: Tensor) (tokens: Tensor) : Tensor =
    let k = plan.shape.[2]
    let centroids = torch.bmm((columnDistributions plan).transpose(1, 2), tokens)       // (S, K, d)
    let eye = torch.eye(k, dtype = plan.dtype, device = plan.device).unsqueeze(0)
    let similarity = torch.bmm(centroids, centroids.transpose(1, 2)) - times 2.0 eye      // (S, K, K)
    let best = similarity.flatten(1).argmax(1L)                                           // (S)
    // floor_divide: TorchSharp 0.107's torch.div(t, scalar, rounding_mode = floor) ignores the
    // rounding mode and returns a float tensor.
    let kTensor = filledOn plan.device torch.int64 (float k)
    torch.stack([| torch.floor_divide(best, kTensor); best.remainder(kTensor) |], 1L)

/// Merges the pair (i, j) of every problem: columns i and j are removed and their sum is appended
/// LAST; the other columns keep their order. Plan (S, 2N, K), pairs (S, 2) → plan (S, 2N, K−1).
let mergePair (plan: Tensor) (pairs: Tensor) : Tensor =
    let s, n2, k = plan.shape.[0], plan.shape.[1], plan.shape.[2]
    let kTensor = filledOn plan.device torch.int64 (float k)
    let i, j = pairs.narrow(1L, 0L, 1L), pairs.narrow(1L, 1L, 1L)                          // (S, 1) each
    let columns = torch.arange(k, dtype = torch.int64, device = plan.device).unsqueeze(0) // (1, K)
    let inPair = columns.eq(i: Tensor).logical_or(columns.eq(j: Tensor)).to_type(torch.int64) // (S, K)
    // Distinct sort keys: kept columns 0..K−1 in order, then the pair as K+i, K+j.
    let order = (plus columns (inPair * kTensor)).argsort(1L)                             // (S, K)
    let permuted = plan.gather(2L, order.unsqueeze(1).expand(s, n2, k))                   // (S, 2N, K)
    let merged = plus (permuted.narrow(2L, k - 2L, 1L)) (permuted.narrow(2L, k - 1L, 1L))  // (S, 2N, 1)
    torch.cat([| permuted.narrow(2L, 0L, k - 2L); merged |], 2L)

/// Merges the two closest clusters of every problem (`mergePair` of `closestPair`).
/// Plan (S, 2N, K), tokens X (S, 2N, d) → plan (S, 2N, K−1).
let mergeClosestPair (plan: Tensor) (tokens: Tensor) : Tensor = mergePair plan (closestPair plan tokens)

/// W and the validity of per-view plans Q (S, 2, N, K) (spec §6.7–§6.8): H = 1 where Q equals its
/// row's maximum (every tied column), W = Q ⊙ H keeps those soft weights; a cluster is valid when
/// Σ_n W > 0 in each view. → masks (2, S, N, K) view-major, validity (S, K) bool.
let masksOf (q: Tensor) : Tensor * Tensor =
    let hard = q.eq(q.amax([| -1L |], keepdim = true)).to_type(q.dtype)                    // (S, 2, N, K)
    let weights = q * hard
    let masks = weights.permute(1L, 0L, 2L, 3L).contiguous()                                // (2, S, N, K)
    let present = withScalar 0.0 (fun zero -> weights.sum(2L).gt(zero))                    // (S, 2, K)
    masks, present.select(1L, 0L).logical_and(present.select(1L, 1L))

/// K* per problem among the stages `selection` allows (MinTransportCost: the smallest ⟨P, M⟩, ties
/// to the larger K; FixedK k: k), then Q_{K*} zero-padded to K̄ = max K* (`Dynamic`: a host read)
/// or to the largest allowed K (`Fixed`), its masks and validity.
let selectAndMask (selection: KSelection) (shapes: ObjectShapes) (stages: Stage list) : Assignment =
    let candidates =                                                                        // descending K
        match selection with
        | MinTransportCost kMax -> stages |> List.filter (fun st -> st.K <= kMax)
        | FixedK k -> stages |> List.filter (fun st -> st.K = k)
    if candidates.IsEmpty then invalidArg "stages" "no stage fits the K selection"
    let s, n = candidates.Head.Plan.shape.[0], candidates.Head.Plan.shape.[2]
    let kFirst = candidates.Head.K
    let choice = torch.stack(candidates |> List.map (fun st -> st.Cost), 1L).argmin(1L)   // (S)
    let kStar = minus (filledOn choice.device torch.int64 (float kFirst)) choice
    let columns = match shapes with Dynamic -> int (toFloat (kStar.max())) | Fixed -> kFirst
    let padded =                                                                            // (S, C, 2, N, kFirst)
        torch.stack(candidates |> List.map (fun st -> torch.nn.functional.pad(st.Plan, [| 0L; int64 (kFirst - st.K) |])), 1L)
    let q =                                                                                 // (S, 2, N, Columns)
        padded.gather(1L, choice.view(s, 1L, 1L, 1L, 1L).expand(s, 1L, 2L, n, int64 kFirst))
            .squeeze(1L).narrow(3L, 0L, int64 columns)
    let masks, validity = masksOf q
    { KStar = kStar; Columns = columns; Masks = masks; Validity = validity }

/// ρ: similarity of every patch feature to the CLS feature of its own view.
/// Features (2, S, 1+N, d) normalised → (S, 2N).
let private clsSimilarity (features: Tensor) : Tensor =
    let cls = features.narrow(2L, 0L, 1L)                                  // (2, S, 1, d)
    let patches = features.narrow(2L, 1L, features.shape.[2] - 1L)        // (2, S, N, d)
    (patches * cls).sum(-1L).permute(1L, 0L, 2L).reshape(features.shape.[1], -1L)

let private validateSeeds (k0: int) (twoN: int64) (seeds: Tensor) (s: int64) =
    if seeds.shape <> [| s; int64 k0 |] then
        invalidArg "seeds" (sprintf "injected seeds must have shape (S=%d, K0=%d), got %A" s k0 seeds.shape)
    if seeds.numel() > 0L && (toFloat (seeds.min()) < 0.0 || toFloat (seeds.max()) >= float twoN) then
        invalidArg "seeds" (sprintf "injected seeds must lie in [0, 2N=%d)" twoN)
    let struct (sorted, _) = seeds.sort(1L)
    if k0 > 1 && toFloat (sorted.narrow(1L, 1L, int64 k0 - 1L).eq(sorted.narrow(1L, 0L, int64 k0 - 1L)).any()) > 0.0 then
        invalidArg "seeds" "injected seeds must be distinct within each problem"

let private validateConfig (cfg: ClusteringConfig) (twoN: int64) =
    let kMin =
        match cfg.Selection with
        | MinTransportCost kMax ->
            if kMax < 2 || kMax > cfg.K0 then invalidArg "cfg" (sprintf "MinTransportCost needs 2 <= kMax (%d) <= K0 (%d)" kMax cfg.K0)
            2
        | FixedK k ->
            if k < 1 || k > cfg.K0 then invalidArg "cfg" (sprintf "FixedK needs 1 <= k (%d) <= K0 (%d)" k cfg.K0)
            k
    if int64 cfg.K0 > twoN then invalidArg "cfg" (sprintf "K0 (%d) exceeds the 2N = %d tokens" cfg.K0 twoN)
    kMin

/// Runs the joint-space clustering (spec §6.1–§6.8) without gradient, with the merges chosen by
/// `merging` (`Closest`: the official rule; `GivenPairs`: replayed).
///
/// `features` (2S, 1+N, d): per problem and view, token 0 is the CLS feature and 1..N the patch
/// features; rows are ordered (view, image, group), i.e. the official (view, image, head).
/// `positions` (2B, N, 2): patch centres (x, y) in original-image pixels, rows (view, image).
/// S must be a multiple of B; problem s belongs to image s / (S/B).
let clusterWith (cfg: ClusteringConfig) (seeding: Seeding) (merging: Merging) (features: Tensor) (positions: Tensor) : Clusters =
    use _ = torch.no_grad()
    expectRank "features" 3 features
    expectRank "positions" 3 positions
    let workType = if features.dtype = torch.float64 then torch.float64 else torch.float32
    let twoS, n = features.shape.[0], features.shape.[1] - 1L
    let twoB = positions.shape.[0]
    if twoS % 2L <> 0L || twoB % 2L <> 0L || positions.shape.[1] <> n || positions.shape.[2] <> 2L then
        invalidArg "positions" (sprintf "features (2S, 1+N, d) = %A and positions (2B, N, 2) = %A do not fit" features.shape positions.shape)
    let s, b = twoS / 2L, twoB / 2L
    if s % b <> 0L then invalidArg "features" (sprintf "S = %d problems is not a multiple of B = %d images" s b)
    let groups = s / b
    let kMin = validateConfig cfg (2L * n)

    let normalised = (l2normalize (features.to_type(workType))).view(2L, s, n + 1L, -1L) // (2, S, 1+N, d)
    let x = normalised.narrow(2L, 1L, n).permute(1L, 0L, 2L, 3L).reshape(s, 2L * n, -1L)   // (S, 2N, d)
    let e =                                                                                 // (S, 2N, 2)
        positions.to_type(workType).view(2L, b, n, 2L).permute(1L, 0L, 2L, 3L).reshape(b, 2L * n, 2L)
            .repeat_interleave(groups, dim = 0L)
    let rho = clsSimilarity normalised                                                      // (S, 2N)
    // The official seeding distribution is softmax(marginal / T): softmax(ρ/T) with the CLS
    // marginals, uniform with uniform ones.
    let seedingWeights () = match cfg.Marginals with ClsSimilarity _ -> (over rho cfg.SeedTemperature).softmax(1L) | Uniform -> torch.ones_like(rho)
    let seeds =
        match seeding with
        | Given t ->
            validateSeeds cfg.K0 (2L * n) t s
            t.to_type(torch.int64).``to``(features.device)
        | Sampled generator -> seedsOf cfg.K0 (seedingWeights ()) (seedNoise generator s (2L * n) workType features.device)
        | Noisy noise ->
            if noise.shape <> [| s; 2L * n |] then
                invalidArg "seeding" (sprintf "seed noise must have shape (S=%d, 2N=%d), got %A" s (2L * n) noise.shape)
            seedsOf cfg.K0 (seedingWeights ()) (noise.to_type(workType).``to``(features.device))
    let a, b0 =
        match cfg.Marginals with
        | ClsSimilarity(tauR, tauC) -> (over rho tauR).softmax(1L), (over (rho.gather(1L, seeds)) tauC).softmax(1L)
        | Uniform ->
            withScalar (1.0 / float (2L * n)) (fun v -> torch.full_like(rho, v)),
            withScalar (1.0 / float cfg.K0) (fun v -> torch.full_like(seeds, v, dtype = workType))
    let solve = match cfg.Solver with Linear -> sinkhorn | LogDomain -> sinkhornLog

    // The merge loop K0 → kMin: one Sinkhorn solve per K, then merge a pair.
    let pairs = match merging with GivenPairs given -> Some (Array.ofList given) | Closest -> None
    match pairs with
    | Some given when given.Length <> cfg.K0 - kMin ->
        invalidArg "merging" (sprintf "%d merges were given, %d stages merge (K0 = %d → %d)" given.Length (cfg.K0 - kMin) cfg.K0 kMin)
    | Some given ->
        given |> Array.iteri (fun m pair ->
            let k = int64 (cfg.K0 - m)
            let values = pair.to_type(torch.int64).cpu().data<int64>().ToArray()
            if pair.shape <> [| s; 2L |] || values |> Array.chunkBySize 2 |> Array.exists (fun ij -> ij.[0] = ij.[1] || Array.exists (fun v -> v < 0L || v >= k) ij) then
                invalidArg "merging" (sprintf "merge %d must be (S = %d, 2) pairs of distinct columns below K = %d, got %A" m s k pair.shape))
    | None -> ()
    let rec stages (k: int) (centroids: Tensor) (centroidPositions: Tensor) (b: Tensor) (acc: Stage list) =
        let cost = jointCost cfg.LambdaPos x e centroids centroidPositions                 // (S, 2N, K)
        let transport = solve cfg.SinkhornLambda cfg.SinkhornIterations a b cost
        let stage = { K = k; Plan = perViewColumnNormalised transport.Plan; RawPlan = transport.Plan; CostMatrix = cost
                      TokenMarginal = a; ClusterMarginal = b; TokenScores = rho; Cost = transport.Cost; Merged = None }
        if k = kMin then List.rev (stage :: acc)
        else
            let pair =
                match pairs with
                | Some given -> given.[cfg.K0 - k].to_type(torch.int64).``to``(transport.Plan.device)
                | None -> closestPair transport.Plan x                                      // (S, 2)
            let columns = columnDistributions (mergePair transport.Plan pair)              // P̄ (S, 2N, K−1)
            let nextB = (a.unsqueeze(-1) * columns).sum(1L)                                 // (S, K−1)
            stages (k - 1) (torch.bmm(columns.transpose(1, 2), x)) (torch.bmm(columns.transpose(1, 2), e))
                   (nextB / nextB.sum(1L, keepdim = true)) ({ stage with Merged = Some pair } :: acc)
    let allStages = stages cfg.K0 (gatherTokens x seeds) (gatherTokens e seeds) b0 []
    let assignment = selectAndMask cfg.Selection cfg.Shapes allStages
    { Masks = assignment.Masks
      Validity = assignment.Validity
      KStar = assignment.KStar
      Columns = assignment.Columns
      Seeds = seeds
      Stages = allStages
      ProblemsPerImage = int groups }

/// The official clustering: `clusterWith` with the closest pair merged at each stage.
let cluster (cfg: ClusteringConfig) (seeding: Seeding) (features: Tensor) (positions: Tensor) : Clusters =
    clusterWith cfg seeding Closest features positions
