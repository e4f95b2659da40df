module CrOC.Tests.ClusteringTests

open System
open Expecto
open FsCheck
open FsCheck.FSharp
open TorchSharp
open CrOC.Math.Tensors
open CrOC.Math.Clustering
open CrOC.Math.Objects
open CrOC.Tests.TestUtil

/// A random clustering batch: B images, g feature groups (heads) per image, a side×side patch grid.
type Case = { B: int; Groups: int; Side: int; Dim: int; Seed: int }

let genCase =
    gen {
        let! b = Gen.choose (1, 3)
        let! groups = Gen.choose (1, 3)
        let! side = Gen.choose (2, 7)
        let! dim = Gen.elements [ 4; 8; 16 ]
        let! seed = Gen.choose (0, Int32.MaxValue - 1)
        return { B = b; Groups = groups; Side = side; Dim = dim; Seed = seed }
    }

/// Features (2S, 1+N, d) ~ N(0, 1) and positions (2B, N, 2) of two random crops per image.
let inputs (dtype: torch.ScalarType) (c: Case) =
    let rng = Random(c.Seed)
    let n = c.Side * c.Side
    let s = c.B * c.Groups
    let features = tensorOf [| int64 (2 * s); int64 (n + 1); int64 c.Dim |] (normal rng (2 * s * (n + 1) * c.Dim))
    let crop () =
        let hc, wc = 40.0 + 200.0 * rng.NextDouble(), 40.0 + 200.0 * rng.NextDouble()
        patchCentres c.Side 16 (100.0 * rng.NextDouble()) (100.0 * rng.NextDouble()) hc wc (rng.Next(2) = 1)
    let positions = Array.init (2 * c.B) (fun _ -> crop ()) |> Array.concat
    features.to_type(dtype), (tensorOf [| int64 (2 * c.B); int64 n; 2L |] positions).to_type(dtype)

let config = { FsCheckConfig.defaultConfig with maxTest = 40 }
let property name (f: Case -> unit) = testPropertyWithConfig config name (Prop.forAll (Arb.fromGen genCase) f)

let generator (seed: int) = new torch.Generator(uint64 seed, torch.CPU)

/// Per problem s and view m: the argmax cluster of every token (−1 for none) and the count of
/// non-zero entries of its mask row, read back from W (2, S, N, K̄).
let maskRows (clusters: Clusters) =
    let w = clusters.Masks
    let s, n, k = int w.shape.[1], int w.shape.[2], int w.shape.[3]
    let values = valuesOf w
    Array.init 2 (fun m ->
        Array.init s (fun si ->
            Array.init n (fun ni ->
                let entries = Array.init k (fun ki -> values.[((m * s + si) * n + ni) * k + ki])
                let nonZero = entries |> Array.filter (fun v -> v <> 0.0) |> Array.length
                let arg = if nonZero = 0 then -1 else Array.findIndex (fun v -> v <> 0.0) entries
                arg, nonZero)))

/// Merged pairs (S, 2) as sorted pairs: G[i, j] and G[j, i] tie, and bmm may round either one an
/// ulp higher (another CPU's bmm too), so the order within a pair is not part of the result.
let unorderedPairs (pairs: Tensor) : float[][] = valuesOf pairs |> Array.chunkBySize 2 |> Array.map Array.sort

let tests =
    testList "Clustering" [
        property "each token's mask row has exactly one non-zero, K* ∈ {2,3,4}, padding is empty (float32)" (fun c ->
            use _ = torch.NewDisposeScope()
            let features, positions = inputs f32 c
            let clusters = cluster ClusteringConfig.Official (Sampled(generator c.Seed)) features positions
            let kStar = valuesOf clusters.KStar |> Array.map int
            Expect.all kStar (fun k -> k >= 2 && k <= 4) "K* in {2, 3, 4}"
            Expect.equal clusters.Columns (Array.max kStar) "K̄ = max K*"
            let rows = maskRows clusters
            for m in 0 .. 1 do
                for s in 0 .. kStar.Length - 1 do
                    for arg, nonZero in rows.[m].[s] do
                        Expect.equal nonZero 1 "exactly one non-zero per mask row"
                        Expect.isLessThan arg kStar.[s] "the argmax is a real (not padded) cluster")

        property "a cluster is valid exactly when it is the argmax of ≥ 1 patch in each view" (fun c ->
            use _ = torch.NewDisposeScope()
            let features, positions = inputs f32 c
            let clusters = cluster ClusteringConfig.Official (Sampled(generator c.Seed)) features positions
            let rows = maskRows clusters
            let s = c.B * c.Groups
            let inView m si k = rows.[m].[si] |> Array.exists (fun (arg, _) -> arg = k)
            let expected = [| for si in 0 .. s - 1 do for k in 0 .. clusters.Columns - 1 do if inView 0 si k && inView 1 si k then yield float (si * clusters.Columns + k) |]
            Expect.sequenceEqual (valuesOf clusters.Valid) expected "valid flat indices, ascending")

        property "fixed shapes: masks and validity over the selection's largest K whatever the data, equal to the dynamic ones padded" (fun c ->
            use _ = torch.NewDisposeScope()
            let features, positions = inputs f32 c
            let dynamic = cluster ClusteringConfig.Official (Sampled(generator c.Seed)) features positions
            let fixedShapes = cluster { ClusteringConfig.Official with Shapes = Fixed } (Sampled(generator c.Seed)) features positions
            let s = int64 (c.B * c.Groups)
            Expect.equal fixedShapes.Columns 4 "n_centroids_max columns"
            Expect.equal fixedShapes.Masks.shape [| 2L; s; int64 (c.Side * c.Side); 4L |] "(2, S, N, 4)"
            let pad (t: Tensor) = torch.nn.functional.pad(t, [| 0L; int64 (4 - dynamic.Columns) |])
            Expect.sequenceEqual (valuesOf fixedShapes.Masks) (valuesOf (pad dynamic.Masks)) "W, bit for bit, zero beyond K̄"
            Expect.sequenceEqual (valuesOf fixedShapes.Validity) (valuesOf (pad dynamic.Validity)) "the same valid clusters"
            Expect.sequenceEqual (valuesOf fixedShapes.KStar) (valuesOf dynamic.KStar) "the same K*")

        test "hard masks keep every tied maximum (spec §6.7), and validity is Σ W > 0 in each view (§6.8)" {
            use _ = torch.NewDisposeScope()
            // one problem, N = 1 token per view, K = 2: view 1 ties [0.5, 0.5], view 2 [0.2, 0.8]
            let masks, valid = masksOf (tensorOf [| 1L; 2L; 1L; 2L |] [| 0.5; 0.5; 0.2; 0.8 |])
            Expect.sequenceEqual (valuesOf masks) [| 0.5; 0.5; 0.0; 0.8 |] "W¹ keeps both tied weights, W² its maximum"
            Expect.sequenceEqual (valuesOf valid) [| 0.0; 1.0 |] "cluster 1 is in both views; cluster 0 only in view 1"
        }

        property "same inputs and same seeds give identical outputs" (fun c ->
            use _ = torch.NewDisposeScope()
            let features, positions = inputs f32 c
            let first = cluster ClusteringConfig.Official (Sampled(generator c.Seed)) features positions
            let again = cluster ClusteringConfig.Official (Sampled(generator c.Seed)) features positions
            let given = cluster ClusteringConfig.Official (Given first.Seeds) features positions
            for other in [ again; given ] do
                Expect.sequenceEqual (valuesOf other.Seeds) (valuesOf first.Seeds) "seeds"
                Expect.sequenceEqual (valuesOf other.Masks) (valuesOf first.Masks) "masks, bit for bit"
                Expect.sequenceEqual (valuesOf other.Valid) (valuesOf first.Valid) "valid set"
                Expect.sequenceEqual (valuesOf other.KStar) (valuesOf first.KStar) "K*")

        property "seeds are distinct token indices of either view" (fun c ->
            use _ = torch.NewDisposeScope()
            let features, positions = inputs f32 c
            let seeds = (cluster ClusteringConfig.Official (Sampled(generator c.Seed)) features positions).Seeds
            let n = c.Side * c.Side
            for r in 0 .. c.B * c.Groups - 1 do
                let rowSeeds = row 5 (valuesOf seeds) r
                Expect.equal (Array.distinct rowSeeds).Length 5 "distinct"
                Expect.all rowSeeds (fun v -> v >= 0.0 && v < float (2 * n)) "in range")

        property "the seeds are torch.multinomial's draw without replacement: the K largest p / q with its Exp(1) noise q, drawn before or inside the clustering" (fun c ->
            use _ = torch.NewDisposeScope()
            let s, twoN = int64 (c.B * c.Groups), int64 (2 * c.Side * c.Side)
            for dtype in [ f32; f64 ] do
                let weights = (torch.randn(s, twoN, dtype = dtype, generator = generator (c.Seed + 1)) * 3.0).softmax(1L)
                let drawn = torch.multinomial(weights, 5L, replacement = false, generator = generator c.Seed)
                let ours = seedsOf 5 weights (seedNoise (generator c.Seed) s twoN dtype torch.CPU)
                Expect.sequenceEqual (valuesOf ours) (valuesOf drawn) (sprintf "the same seeds, in the same order (%A)" dtype)
            let features, positions = inputs f32 c
            let noisy = cluster ClusteringConfig.Official (Noisy(seedNoise (generator c.Seed) s twoN f32 torch.CPU)) features positions
            let unit = (l2normalize features).view(2L, s, -1L, int64 c.Dim)                    // (2, S, 1+N, d)
            let rho = (unit.narrow(2L, 1L, unit.shape.[2] - 1L) * unit.narrow(2L, 0L, 1L)).sum(-1L).permute(1L, 0L, 2L).reshape(s, -1L)
            let weights = rho
            let drawn = torch.multinomial((weights / 2.0).softmax(1L), 5L, replacement = false, generator = generator c.Seed)
            Expect.sequenceEqual (valuesOf noisy.Seeds) (valuesOf drawn) "noise drawn beforehand: torch.multinomial's seeds of softmax(ρ/2)")

        property "swapping the two views swaps the outputs (float64)" (fun c ->
            use _ = torch.NewDisposeScope()
            let features, positions = inputs f64 c
            let n = int64 (c.Side * c.Side)
            let swap (t: Tensor) = let halves = t.chunk(2L, 0L) in torch.cat([| halves.[1]; halves.[0] |], 0L)
            let original = cluster ClusteringConfig.Official (Sampled(generator c.Seed)) features positions
            let mirroredSeeds = (original.Seeds + n).remainder(scalar (float (2L * n)))
            let swapped = cluster ClusteringConfig.Official (Given mirroredSeeds) (swap features) (swap positions)
            Expect.sequenceEqual (valuesOf swapped.KStar) (valuesOf original.KStar) "K*"
            Expect.sequenceEqual (valuesOf swapped.Valid) (valuesOf original.Valid) "valid set"
            Expect.isLessThan (maxAbsDiff swapped.Masks (swap original.Masks)) 1e-12 "W¹ ↔ W²")

        property "with uniform marginals the seeds are a uniform draw (the draw of equal weights on the same generator), not softmax(ρ/T)" (fun c ->
            use _ = torch.NewDisposeScope()
            let features, positions = inputs f32 c
            let seeds = (cluster (ClusteringConfig.Poster 3) (Sampled(generator c.Seed)) features positions).Seeds
            let s = int64 (c.B * c.Groups)
            let uniform = torch.multinomial(torch.ones(s, int64 (2 * c.Side * c.Side)), 5L, replacement = false, generator = generator c.Seed)
            Expect.sequenceEqual (valuesOf seeds) (valuesOf uniform) "the same draw")

        property "the poster variant (uniform marginals, fixed K) keeps K* = K everywhere" (fun c ->
            use _ = torch.NewDisposeScope()
            let features, positions = inputs f32 c
            let clusters = cluster (ClusteringConfig.Poster 3) (Sampled(generator c.Seed)) features positions
            Expect.all (valuesOf clusters.KStar) (fun k -> k = 3.0) "K* = 3"
            Expect.equal clusters.Stages.Length 3 "stages K = 5, 4, 3")

        test "two well-separated feature clusters are recovered when the semantic cost leads (λ_pos ∈ {0, 1})" {
            use _ = torch.NewDisposeScope()
            // 2 images × 2 heads, an 8×8 grid; the left half of each view is object A, the right
            // half object B. A and B have opposite features (plus noise): a semantic gap of 2; the
            // CLS is orthogonal to both. (With the official λ_pos = 4 the positional term, up to 4,
            // outweighs that gap and the clusters become spatial cells instead.)
            let rng = Random(3)
            let b, groups, side, dim = 2, 2, 8, 8
            let n = side * side
            let isA ni = ni % side < side / 2
            let feature (token: int) =
                let basis = Array.init dim (fun i -> if token = 0 then (if i = 1 then 1.0 else 0.0) elif i = 0 then (if isA (token - 1) then 1.0 else -1.0) else 0.0)
                Array.map2 (+) basis (normal rng dim |> Array.map (fun z -> 0.05 * z))
            let features = tensorOf [| int64 (2 * b * groups); int64 (n + 1); int64 dim |] (Array.init (2 * b * groups * (n + 1)) (fun i -> feature (i % (n + 1))) |> Array.concat)
            let positions = tensorOf [| int64 (2 * b); int64 n; 2L |] (Array.init (2 * b) (fun v -> patchCentres side 16 (float (4 * v)) (float (6 * v)) 128.0 128.0 false) |> Array.concat)
            for lambdaPos in [ 0.0; 1.0 ] do
                let clusters = cluster { ClusteringConfig.Official with LambdaPos = lambdaPos } (Sampled(generator 11)) features positions
                let rows = maskRows clusters
                let validSet = valuesOf clusters.Valid |> Array.map int |> Set.ofArray
                for s in 0 .. b * groups - 1 do
                    let membersOf k = [ for m in 0 .. 1 do for ni in 0 .. n - 1 do if fst rows.[m].[s].[ni] = k then yield isA ni ]
                    for k in 0 .. clusters.Columns - 1 do
                        Expect.isLessThanOrEqual (membersOf k |> List.distinct |> List.length) 1 (sprintf "λ_pos %g: cluster %d of problem %d is pure" lambdaPos k s)
                    let coveredClasses = [ for k in 0 .. clusters.Columns - 1 do if validSet.Contains(s * clusters.Columns + k) then yield! membersOf k ] |> List.distinct
                    Expect.equal (List.sort coveredClasses) [ false; true ] (sprintf "λ_pos %g: both objects are matched across views in problem %d" lambdaPos s)
        }

        test "mergeClosestPair removes the most similar pair and appends its summed column last" {
            use _ = torch.NewDisposeScope()
            // Tokens e0, e1, e1, e0 (one view of 4 tokens, d = 2); columns 0 and 2 both sit on e0,
            // column 1 on e1, column 3 on e0 and e1: the closest pair is (0, 2), in a problem where
            // an integer division that rounds wrongly would merge another pair.
            let x = tensorOf [| 1L; 4L; 2L |] [| 1.; 0.; 0.; 1.; 0.; 1.; 1.; 0. |]
            let plan =
                tensorOf [| 1L; 4L; 4L |]
                    [| 0.10; 0.00; 0.05; 0.05
                       0.00; 0.10; 0.00; 0.05
                       0.00; 0.10; 0.00; 0.05
                       0.10; 0.00; 0.20; 0.15 |]
            let merged = mergeClosestPair plan x
            let expected = tensorOf [| 1L; 4L; 3L |] [| 0.00; 0.05; 0.15; 0.10; 0.05; 0.00; 0.10; 0.05; 0.00; 0.00; 0.15; 0.30 |]
            Expect.isLessThan (maxAbsDiff merged expected) 1e-15 "columns 1, 3 kept in order, then 0 + 2"
        }

        test "bad inputs are refused with clear messages" {
            use _ = torch.NewDisposeScope()
            let features, positions = inputs f32 { B = 2; Groups = 2; Side = 3; Dim = 4; Seed = 1 }
            Expect.throwsT<ArgumentException> (fun () -> cluster ClusteringConfig.Official (Given(torch.zeros(4L, 5L, dtype = torch.int64))) features positions |> ignore) "repeated seeds"
            Expect.throwsT<ArgumentException> (fun () -> cluster ClusteringConfig.Official (Given(torch.arange(20L).view(4L, 5L) * 10L)) features positions |> ignore) "seeds out of range"
            Expect.throwsT<ArgumentException> (fun () -> cluster ClusteringConfig.Official (Sampled(generator 1)) features (positions.narrow(1L, 0L, 4L)) |> ignore) "positions of another grid"
            Expect.throwsT<ArgumentException> (fun () -> cluster { ClusteringConfig.Official with Selection = MinTransportCost 6 } (Sampled(generator 1)) features positions |> ignore) "kMax > K0"
        }
    
        property "replay: the merges of a clustering, injected with its seeds, reproduce it exactly; the stages record P, M, a, b, ρ and the pair" (fun c ->
            use _ = torch.NewDisposeScope()
            let features, positions = inputs f64 c
            let first = cluster ClusteringConfig.Official (Seeding.Sampled(generator c.Seed)) features positions
            let replay = clusterWith ClusteringConfig.Official (Seeding.Given first.Seeds) (GivenPairs first.Merges) features positions
            // X (S, 2N, d): the normalised patch features, view 1 then view 2 per problem.
            let s, n = int64 (c.B * c.Groups), features.shape.[1] - 1L
            let tokens = (l2normalize features).view(2L, s, n + 1L, -1L).narrow(2L, 1L, n).permute(1L, 0L, 2L, 3L).reshape(s, 2L * n, -1L)
            Expect.equal (valuesOf replay.Masks) (valuesOf first.Masks) "masks"
            Expect.equal (valuesOf replay.Valid) (valuesOf first.Valid) "valid set"
            Expect.equal first.Merges.Length 3 "merges 5→4, 4→3, 3→2"
            for stage in first.Stages do
                let mass = valuesOf (stage.RawPlan.sum([| 1L; 2L |]))
                Expect.isTrue (mass |> Array.forall (fun m -> abs (m - 1.0) < 1e-9)) (sprintf "K = %d: P has mass 1 per problem" stage.K)
                Expect.isLessThan (maxAbsDiff (stage.RawPlan.sum(1L)) stage.ClusterMarginal) 1e-9 (sprintf "K = %d: the columns of P are b" stage.K)
                Expect.isLessThan (maxAbsDiff stage.Cost ((stage.RawPlan * stage.CostMatrix).sum([| 1L; 2L |]))) 1e-9 "cost = ⟨P, M⟩"
                Expect.isLessThan (maxAbsDiff stage.Plan (perViewColumnNormalised stage.RawPlan)) 1e-12 "Q from P"
                Expect.isTrue (toFloat (stage.CostMatrix.min()) >= -1e-12 && toFloat (stage.CostMatrix.max()) <= 1.0 + 1e-12) "M is min–max rescaled"
                Expect.equal stage.TokenMarginal.shape [| int64 (c.B * c.Groups); int64 (2 * c.Side * c.Side) |] "a over 2N tokens"
                match stage.Merged with
                | Some pair ->
                    Expect.equal (valuesOf pair) (valuesOf (closestPair stage.RawPlan tokens)) "the closest pair was merged"
                | None -> Expect.equal stage.K 2 "the last stage merges nothing"
            let assignment = selectAndMask ClusteringConfig.Official.Selection Dynamic first.Stages
            Expect.equal (valuesOf assignment.Masks) (valuesOf first.Masks) "selectAndMask = cluster's masks"
            Expect.equal (valuesOf assignment.KStar) (valuesOf first.KStar) "and K*")

        test "the clustering and the objects match the PyTorch reference of tools/reference/step.py on a golden file (float64, injected seeds): every stage's plan, cost and merge, K*, masks, pruning, objects" {
            use _ = torch.NewDisposeScope()
            let golden = pthTensors (IO.Path.Combine(AppContext.BaseDirectory, "fixtures", "clustering_golden.pth"))
            let keys = golden "keys"                                                   // (2B, h, 1+N, dh)
            let heads = keys.shape.[1]
            let features = keys.reshape(keys.shape.[0] * heads, keys.shape.[2], keys.shape.[3])
            let clusters = cluster ClusteringConfig.Official (Given(golden "seeds")) features (golden "positions")
            // 1e-7, not float64's 1e-15: torch.cdist computes the positional distances as √(|e|² + |μ|² − 2e·μ)
            // on coordinates of hundreds of pixels (seen: 1.9e-9 in Q_5).
            let close (tolerance: float) (actual: Tensor) (expected: Tensor) what =
                Expect.equal actual.shape expected.shape (what + ": shape")
                Expect.isLessThan (maxAbsDiff actual expected) tolerance what
            Expect.equal [ for st in clusters.Stages -> st.K ] [ 5; 4; 3; 2 ] "stages K0 = 5 → 2"
            for stage in clusters.Stages do
                close 1e-7 stage.Plan (golden (sprintf "stage%d.plan" stage.K)) (sprintf "Q_%d" stage.K)
                close 1e-7 stage.Cost (golden (sprintf "stage%d.cost" stage.K)) (sprintf "⟨P, M⟩ of K = %d" stage.K)
                match stage.Merged with
                | Some pair -> Expect.equal (unorderedPairs pair) (unorderedPairs (golden (sprintf "stage%d.merged" stage.K))) (sprintf "the pair merged after K = %d" stage.K)
                | None -> Expect.equal stage.K 2 "only the last stage merges nothing"
            let kStar = valuesOf clusters.KStar
            Expect.sequenceEqual kStar (valuesOf (golden "kstar")) "K* = the argmin of the costs of K ∈ {4, 3, 2}"
            Expect.isTrue (Set.ofArray kStar = set [ 2.0; 3.0; 4.0 ]) "the golden file reaches every K*"
            close 1e-7 clusters.Masks (golden "masks") "W"
            Expect.sequenceEqual (valuesOf clusters.Valid) (valuesOf (golden "valid")) "the valid clusters"
            Expect.isLessThan clusters.ValidCount (int (Array.sum kStar)) "the golden file prunes a cluster found in one view only"
            close 1e-7 (objectVectors clusters (golden "tokens")) (golden "objects") "the object vectors"
        }

        test "injected merges override the scores (how a tie decided by rounding elsewhere is replayed); a wrong count is refused" {
            use _ = torch.NewDisposeScope()
            let c = { B = 1; Groups = 1; Side = 3; Dim = 4; Seed = 11 }
            let features, positions = inputs f64 c
            let seeds = Seeding.Given(torch.tensor([| 0L; 2L; 4L; 9L; 13L |]).unsqueeze(0))
            let official = clusterWith ClusteringConfig.Official seeds Closest features positions
            let first = valuesOf official.Merges.Head
            let other = if first = [| 0.0; 1.0 |] then [| 2L; 3L |] else [| 0L; 1L |]
            let chosen = [ torch.tensor(other).unsqueeze(0); torch.tensor([| 0L; 1L |]).unsqueeze(0); torch.tensor([| 0L; 1L |]).unsqueeze(0) ]
            let replayed = clusterWith ClusteringConfig.Official seeds (GivenPairs chosen) features positions
            Expect.equal [ for m in replayed.Merges -> valuesOf m ] [ for m in chosen -> valuesOf m ] "the given pairs were merged, not the closest"
            Expect.notEqual (valuesOf replayed.Stages.[1].RawPlan) (valuesOf official.Stages.[1].RawPlan) "and the next stage solved another problem"
            Expect.throwsT<ArgumentException> (fun () -> clusterWith ClusteringConfig.Official seeds (GivenPairs chosen.[.. 1]) features positions |> ignore) "two merges for three stages"
            for bad, why in [ [| 1L; 1L |], "a column with itself"; [| 0L; 5L |], "a column beyond K0 = 5" ] do
                let pairs = torch.tensor(bad).unsqueeze(0) :: chosen.Tail
                Expect.throwsT<ArgumentException> (fun () -> clusterWith ClusteringConfig.Official seeds (GivenPairs pairs) features positions |> ignore) why
        }

        // Catches: a wrong temperature or formula of a or b, b after a merge not Σ a·P̄, a merge by
        // un-normalised P, a plan normalised per row, argmax instead of argmin of the cost, T − 1
        // sweeps, λ_pos off, centroid positions from the raw plan, tokens of the wrong image per problem.
        property "the clustering equals a naive float64 implementation of spec §6.1–§6.8 (marginals, stage costs, merges, K*, W, V)" (fun c ->
            use _ = torch.NewDisposeScope()
            let features, positions = inputs f64 c
            let ours = cluster ClusteringConfig.Official (Sampled(generator c.Seed)) features positions
            let seeds = cube (ours.Seeds.unsqueeze(-1)) |> Array.map (Array.map (fun v -> int v.[0]))
            // the spec's defaults (§10), not the configuration's
            let expected = ClusteringReference.cluster 2.0 2.0 4.0 20.0 5 4 (cube features) (cube positions) seeds
            let close what (x: float[]) (y: float[]) =
                Expect.equal x.Length y.Length what
                Array.iteri2 (fun i p q -> Expect.floatClose { absolute = 1e-10; relative = 1e-8 } p q (sprintf "%s[%d]" what i)) x y
            Expect.equal ours.Stages.Length expected.Costs.Length "stages K0 … 2"
            for i, stage in List.indexed ours.Stages do
                close (sprintf "a of stage K = %d" stage.K) (valuesOf stage.TokenMarginal) (Array.concat expected.TokenMarginals.[i])
                close (sprintf "b of stage K = %d" stage.K) (valuesOf stage.ClusterMarginal) (Array.concat expected.ClusterMarginals.[i])
                close (sprintf "⟨P, M⟩ of stage K = %d" stage.K) (valuesOf stage.Cost) expected.Costs.[i]
            Expect.equal [ for m in ours.Merges -> unorderedPairs m ] [ for m in expected.Merges -> m |> Array.map (fun (i, j) -> Array.sort [| float i; float j |]) ] "merged pairs"
            Expect.equal (valuesOf ours.KStar |> Array.map int) expected.KStar "K*"
            Expect.equal (valuesOf ours.Valid |> Array.map int) expected.Valid "V"
            let columns = ours.Columns
            let w = valuesOf ours.Masks
            let s, n = c.B * c.Groups, c.Side * c.Side
            for m in 0 .. 1 do
                for si in 0 .. s - 1 do
                    for ni in 0 .. n - 1 do
                        for k in 0 .. columns - 1 do
                            let want = if k < expected.KStar.[si] then expected.Masks.[m].[si].[ni].[k] else 0.0
                            Expect.floatClose { absolute = 1e-10; relative = 1e-8 } w.[((m * s + si) * n + ni) * columns + k] want "W")

        // Catches: C·Cᵀ − I instead of − 2I (the diagonal wins a tie at 0 and a cluster "merges" with itself).
        test "closestPair never picks a cluster with itself: unit centroids e0, −e0, e1 merge (0, 2)" {
            use _ = torch.NewDisposeScope()
            let x = tensorOf [| 1L; 3L; 2L |] [| 1.; 0.; -1.; 0.; 0.; 1. |]
            let plan = tensorOf [| 1L; 3L; 3L |] [| 0.3; 0.; 0.; 0.; 0.3; 0.; 0.; 0.; 0.4 |]
            Expect.sequenceEqual (valuesOf (closestPair plan x)) [| 0.0; 2.0 |] "first off-diagonal maximum in row-major order"
        }
    ]
