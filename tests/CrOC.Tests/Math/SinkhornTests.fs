module CrOC.Tests.SinkhornTests

open System
open Expecto
open FsCheck
open FsCheck.FSharp
open TorchSharp
open CrOC.Math.Tensors
open CrOC.Math.Sinkhorn
open CrOC.Tests.TestUtil

/// A batch of random transport problems.
type Case =
    { S: int; N: int; K: int; Lambda: float; Iterations: int; Spread: float; CostScale: float; Seed: int }

let genCase =
    gen {
        let! s = Gen.choose (1, 3)
        let! n = Gen.choose (2, 512)
        let! k = Gen.choose (1, 64)
        let! lambda = Gen.elements [ 0.1; 0.5; 1.0; 3.0; 5.0; 10.0; 20.0; 30.0 ]
        let! iterations = Gen.choose (1, 30)
        let! spread = Gen.elements [ 0.0; 0.5; 1.0; 2.0 ]
        let! costScale = Gen.elements [ 0.1; 1.0; 2.0 ]
        let! seed = Gen.choose (0, Int32.MaxValue - 1)
        return { S = s; N = n; K = k; Lambda = lambda; Iterations = iterations; Spread = spread; CostScale = costScale; Seed = seed }
    }

let cases = Arb.fromGen genCase

/// Cost (S, N, K) in [0, CostScale), a (S, N), b (S, K), as float64 arrays.
let problem (c: Case) =
    let rng = Random(c.Seed)
    let cost = uniform rng 0.0 c.CostScale (c.S * c.N * c.K)
    let a = Array.init c.S (fun _ -> probabilities rng c.Spread c.N) |> Array.concat
    let b = Array.init c.S (fun _ -> probabilities rng c.Spread c.K) |> Array.concat
    cost, a, b

let tensors (dtype: torch.ScalarType) (c: Case) =
    let cost, a, b = problem c
    (tensorOf [| int64 c.S; int64 c.N; int64 c.K |] cost).to_type(dtype),
    (tensorOf [| int64 c.S; int64 c.N |] a).to_type(dtype),
    (tensorOf [| int64 c.S; int64 c.K |] b).to_type(dtype)

let solvers = [ "linear", sinkhorn; "log-domain", sinkhornLog ]

/// Hilbert projective distance between positive vectors: log max(x/y) − log min(x/y).
let hilbert (x: float[]) (y: float[]) =
    let r = Array.map2 (fun p q -> log p - log q) x y
    Array.max r - Array.min r

let config = { FsCheckConfig.defaultConfig with maxTest = 60 }

let property name f = testPropertyWithConfig config name (Prop.forAll cases f)

let invariants (solverName, solve) =
    property (sprintf "%s: plan >= 0, mass 1, column sums = b (float32)" solverName) (fun (c: Case) ->
        use _ = torch.NewDisposeScope()
        let cost, a, b = tensors f32 c
        let t = solve c.Lambda c.Iterations a b cost
        let plan = valuesOf t.Plan
        Expect.isTrue (plan |> Array.forall (fun p -> p >= 0.0 && Double.IsFinite p)) "plan is finite and non-negative"
        for s, mass in Array.indexed (valuesOf (t.Plan.sum([| 1L; 2L |]))) do
            Expect.floatClose { absolute = 2e-5; relative = 0.0 } mass 1.0 (sprintf "mass of problem %d" s)
        let cols = valuesOf (t.Plan.sum(1L))
        let bs = valuesOf b
        for i in 0 .. cols.Length - 1 do
            Expect.floatClose { absolute = 2e-6; relative = 1e-4 } cols.[i] bs.[i] (sprintf "column sum %d" i))

let tests =
    testList "Sinkhorn" [
        yield! solvers |> List.map invariants

        property "row sums obey the Birkhoff bound ‖r_T − a‖₁ ≤ exp(η^(2(T−1))·Δ) − 1, and d_H(r_T, a) does not grow with T (float64)" (fun (c: Case) ->
            use _ = torch.NewDisposeScope()
            let cost, a, b = tensors f64 c
            // Δ ≤ 2λ·(max M − min M) is the projective diameter of exp(−λM); η = tanh(Δ/4) its contraction.
            let costs = valuesOf cost
            let rowsOf (t: Transport) = valuesOf (t.Plan.sum(2L))
            let aValues = valuesOf a
            let previous = rowsOf (sinkhorn c.Lambda c.Iterations a b cost)
            let next = rowsOf (sinkhorn c.Lambda (c.Iterations + 1) a b cost)
            for s in 0 .. c.S - 1 do
                let m = Array.sub costs (s * c.N * c.K) (c.N * c.K)
                let delta = 2.0 * c.Lambda * (Array.max m - Array.min m)
                let eta = tanh (delta / 4.0)
                let r, aS, rNext = row c.N previous s, row c.N aValues s, row c.N next s
                let l1 = Array.map2 (fun x y -> abs (x - y)) r aS |> Array.sum
                let bound = exp (eta ** float (2 * (c.Iterations - 1)) * delta) - 1.0
                Expect.isLessThanOrEqual l1 (bound + 1e-9) (sprintf "row error of problem %d within the bound %g" s bound)
                Expect.isLessThanOrEqual (hilbert rNext aS) (hilbert r aS + 1e-9) "Hilbert row error is non-increasing")

        property "matches the naive float64 reference (float64 to 1e-10, float32 to 1e-4 relative)" (fun (c: Case) ->
            use _ = torch.NewDisposeScope()
            let costs, aValues, bValues = problem c
            let t64 = let cost, a, b = tensors f64 c in sinkhorn c.Lambda c.Iterations a b cost
            let t32 = let cost, a, b = tensors f32 c in sinkhorn c.Lambda c.Iterations a b cost
            let p64, p32 = valuesOf t64.Plan, valuesOf t32.Plan
            let cost64, cost32 = valuesOf t64.Cost, valuesOf t32.Cost
            for s in 0 .. c.S - 1 do
                let m = Array2D.init c.N c.K (fun i j -> costs.[(s * c.N + i) * c.K + j])
                let plan, transportCost = Reference.sinkhorn c.Lambda c.Iterations (row c.N aValues s) (row c.K bValues s) m
                for i in 0 .. c.N - 1 do
                    for j in 0 .. c.K - 1 do
                        let idx = (s * c.N + i) * c.K + j
                        Expect.floatClose { absolute = 1e-15; relative = 1e-10 } p64.[idx] plan.[i, j] "float64 plan entry"
                        Expect.floatClose { absolute = 1e-10; relative = 1e-4 } p32.[idx] plan.[i, j] "float32 plan entry"
                Expect.floatClose { absolute = 1e-14; relative = 1e-10 } cost64.[s] transportCost "float64 transport cost"
                Expect.floatClose { absolute = 1e-7; relative = 1e-4 } cost32.[s] transportCost "float32 transport cost")

        property "adding a constant to the cost leaves the plan unchanged (float64)" (fun (c: Case) ->
            use _ = torch.NewDisposeScope()
            let cost, a, b = tensors f64 c
            for _, solve in solvers do
                let p = (solve c.Lambda c.Iterations a b cost).Plan
                let shifted = (solve c.Lambda c.Iterations a b (cost + 0.731)).Plan
                Expect.isLessThanOrEqual (maxAbsDiff (shifted / p) (torch.ones_like(p))) 1e-9 "relative change of every entry")

        property "permuting rows and columns of the cost permutes the plan (float64)" (fun (c: Case) ->
            use _ = torch.NewDisposeScope()
            let cost, a, b = tensors f64 c
            let rng = Random(c.Seed + 1)
            let rowPerm = torch.tensor(Array.init c.N id |> Array.sortBy (fun _ -> rng.Next()) |> Array.map int64)
            let colPerm = torch.tensor(Array.init c.K id |> Array.sortBy (fun _ -> rng.Next()) |> Array.map int64)
            for _, solve in solvers do
                let p = (solve c.Lambda c.Iterations a b cost).Plan
                let permuted =
                    (solve c.Lambda c.Iterations (a.index_select(1L, rowPerm)) (b.index_select(1L, colPerm))
                        (cost.index_select(1L, rowPerm).index_select(2L, colPerm))).Plan
                let expected = p.index_select(1L, rowPerm).index_select(2L, colPerm)
                Expect.isLessThanOrEqual (maxAbsDiff (permuted / expected) (torch.ones_like(expected))) 1e-10 "permuted plan")

        property "the log-domain and linear variants agree where both are finite (float64)" (fun (c: Case) ->
            use _ = torch.NewDisposeScope()
            let cost, a, b = tensors f64 c
            let lin = sinkhorn c.Lambda c.Iterations a b cost
            let lg = sinkhornLog c.Lambda c.Iterations a b cost
            Expect.isLessThanOrEqual (maxAbsDiff (lg.Plan / lin.Plan) (torch.ones_like(lin.Plan))) 1e-9 "relative plan difference"
            Expect.isLessThanOrEqual (maxAbsDiff lg.Cost lin.Cost) 1e-12 "transport cost")

        test "the log-domain variant stays finite for λ = 1000 and marginals down to 0" {
            use _ = torch.NewDisposeScope()
            let rng = Random(7)
            let n, k = 64, 8
            let cost = (tensorOf [| 1L; int64 n; int64 k |] (uniform rng 0.0 1.0 (n * k))).to_type(f32)
            let aValues = probabilities rng 1.0 n |> Array.mapi (fun i p -> if i % 5 = 0 then 0.0 elif i % 7 = 0 then 1e-30 else p)
            let a = (tensorOf [| 1L; int64 n |] (aValues |> Array.map (fun p -> p / Array.sum aValues)))
            let b = tensorOf [| 1L; int64 k |] (probabilities rng 1.0 k)
            let t = sinkhornLog 1000.0 50 (a.to_type(f32)) (b.to_type(f32)) cost
            Expect.isTrue (valuesOf t.Plan |> Array.forall Double.IsFinite) "finite plan"
            Expect.isLessThanOrEqual (maxAbsDiff (t.Plan.sum(1L)) (b.to_type(f32))) 1e-5 "columns match b"
            Expect.isTrue (Double.IsFinite (valuesOf t.Cost).[0]) "finite cost"
            Expect.equal (valuesOf (t.Plan.sum(2L)) |> Array.indexed |> Array.filter (fun (i, _) -> i % 5 = 0) |> Array.map snd |> Array.max) 0.0
                "rows with zero marginal carry no mass"
        }

        test "the linear variant replaces NaN by 1e-8 where exp(−λM) underflows, as the official code" {
            use _ = torch.NewDisposeScope()
            let cost = torch.full([| 1L; 3L; 2L |], scalar 1.0, dtype = f32)
            let t = sinkhorn 1000.0 5 (torch.full([| 1L; 3L |], scalar (1.0 / 3.0))) (torch.full([| 1L; 2L |], scalar 0.5)) cost
            Expect.sequenceEqual (valuesOf t.Plan) (Array.create 6 (float 1e-8f)) "every entry is 1e-8"
        }

        test "mismatched marginals are refused with the shapes in the message" {
            Expect.throwsT<ArgumentException> (fun () -> sinkhorn 20.0 5 (torch.ones(1L, 4L)) (torch.ones(1L, 2L)) (torch.ones(1L, 3L, 2L)) |> ignore)
                "a (1, 4) does not fit a (1, 3, 2) cost"
        }

        // Catches: a sign error in the log variant's T = 0 branch (no property draws T = 0).
        test "T = 0 gives the normalised kernel exp(−λM) / Σ exp(−λM) in both variants" {
            use _ = torch.NewDisposeScope()
            let rng = Random(8)
            let cost = tensorOf [| 2L; 4L; 3L |] (uniform rng 0.0 1.0 24)
            let a = torch.full([| 2L; 4L |], scalar 0.25, dtype = f64)
            let b = torch.full([| 2L; 3L |], scalar (1.0 / 3.0), dtype = f64)
            let kernel = (cost * -5.0).exp()
            let expected = kernel / kernel.sum([| 1L; 2L |], keepdim = true)
            for name, solve in solvers do
                let t = solve 5.0 0 a b cost
                Expect.isLessThan (maxAbsDiff t.Plan expected) 1e-14 (sprintf "%s: plan" name)
                Expect.isLessThan (maxAbsDiff t.Cost ((expected * cost).sum([| 1L; 2L |]))) 1e-14 (sprintf "%s: cost" name)
        }
    ]
