module CrOC.Tests.LossesTests

open System
open Expecto
open TorchSharp
open CrOC.Math.Tensors
open CrOC.Math.Clustering
open CrOC.Math.Objects
open CrOC.Math.Losses
open CrOC.Tests.TestUtil

let temps = { Student = 0.1; Teacher = 0.04 }

/// Student logits (2R, L) with gradient, teacher logits (2R, L) and a centre (1, L), float64.
let logits (seed: int) (rows: int) (width: int) =
    let rng = Random(seed)
    let student = (tensorOf [| int64 (2 * rows); int64 width |] (normal rng (2 * rows * width))).requires_grad_(true)
    let teacher = tensorOf [| int64 (2 * rows); int64 width |] (normal rng (2 * rows * width))
    let centre = tensorOf [| 1L; int64 width |] (normal rng width |> Array.map (fun z -> 0.3 * z))
    student, teacher, centre

let rowsOf (t: Tensor) =
    let cols = int t.shape.[1]
    let v = valuesOf t
    Array.init (int t.shape.[0]) (fun r -> row cols v r)

/// Central finite differences of `f` at `x` along every coordinate vs. autograd, float64.
let gradientCheck (f: Tensor -> Tensor) (x: Tensor) =
    let analytic = valuesOf (torch.autograd.grad([| f x |], [| x |]).[0])
    let flat = valuesOf x
    let h = 1e-6
    let at (values: float[]) = using (torch.no_grad()) (fun _ -> toFloat (f (tensorOf x.shape values)))
    for i in 0 .. flat.Length - 1 do
        let plus = Array.copy flat
        let minus = Array.copy flat
        plus.[i] <- plus.[i] + h
        minus.[i] <- minus.[i] - h
        let numeric = (at plus - at minus) / (2.0 * h)
        Expect.floatClose { absolute = 1e-6; relative = 1e-5 } analytic.[i] numeric (sprintf "∂L/∂x[%d]" i)

/// A small random clustering (float64) with its tokens, for the object-level tests.
let smallClusters (seed: int) =
    let c : ClusteringTests.Case = { B = 2; Groups = 2; Side = 3; Dim = 6; Seed = seed }
    let features, positions = ClusteringTests.inputs f64 c
    let clusters = cluster ClusteringConfig.Official (Sampled(ClusteringTests.generator seed)) features positions
    let rng = Random(seed + 1)
    let tokens = tensorOf [| 4L; 10L; 5L |] (normal rng (4 * 10 * 5))
    clusters, tokens

let tests =
    testList "Losses" [
        test "L_img matches the naive float64 reference" {
            use _ = torch.NewDisposeScope()
            for seed in 0 .. 4 do
                let student, teacher, centre = logits seed 3 17
                let expected = Reference.crossViewLoss 0.1 0.04 (valuesOf centre) (rowsOf student) (rowsOf teacher)
                Expect.floatClose { absolute = 1e-12; relative = 1e-12 } (toFloat (lossGlob temps centre student teacher)) expected "loss"
        }

        test "L_obj matches the same reference over the objects and says it is not empty" {
            use _ = torch.NewDisposeScope()
            let student, teacher, centre = logits 9 5 11
            let dense = lossDense temps centre student teacher
            Expect.isFalse dense.Empty "five objects"
            let expected = Reference.crossViewLoss 0.1 0.04 (valuesOf centre) (rowsOf student) (rowsOf teacher)
            Expect.floatClose { absolute = 1e-12; relative = 1e-12 } (toFloat dense.Loss) expected "loss"
        }

        test "gradients of L_img and L_obj w.r.t. the student outputs match finite differences" {
            use _ = torch.NewDisposeScope()
            let student, teacher, centre = logits 5 2 6
            gradientCheck (fun s -> lossGlob temps centre s teacher) student
            gradientCheck (fun s -> (lossDense temps centre s teacher).Loss) student
        }

        test "an empty object set gives L_obj = 0 with the flag, and backward still works" {
            use _ = torch.NewDisposeScope()
            let student = torch.zeros(0L, 8L, dtype = f64).requires_grad_(true)
            let dense = lossDense temps (torch.zeros(1L, 8L, dtype = f64)) student (torch.zeros(0L, 8L, dtype = f64))
            Expect.isTrue dense.Empty "flagged"
            Expect.equal (toFloat dense.Loss) 0.0 "zero, not NaN"
            dense.Loss.backward()
            Expect.equal (gradOf student).shape [| 0L; 8L |] "gradient of the right shape"
        }

        test "centres move by momentum 0.9 toward the batch mean; no rows leave them unchanged" {
            use _ = torch.NewDisposeScope()
            let centre = tensorOf [| 1L; 3L |] [| 1.; 2.; 3. |]
            let teacher = tensorOf [| 2L; 3L |] [| 0.; 0.; 0.; 2.; 4.; 6. |]
            let updated = updateCentre 0.9 centre (rowSum teacher)
            Expect.isLessThan (maxAbsDiff updated (tensorOf [| 1L; 3L |] [| 1.0; 2.0; 3.0 |] )) 1e-15 "0.9·κ + 0.1·mean (mean = κ here)"
            let moved = updateCentre 0.9 centre { Sum = tensorOf [| 1L; 3L |] [| 10.; 10.; 10. |]; Count = 1.0 }
            Expect.isLessThan (maxAbsDiff moved (tensorOf [| 1L; 3L |] [| 1.9; 2.8; 3.7 |])) 1e-15 "0.9·κ + 0.1·row"
            let unchanged = updateCentre 0.9 centre { Sum = torch.zeros(1L, 3L, dtype = f64); Count = 0.0 }
            Expect.isLessThan (maxAbsDiff unchanged centre) 1e-15 "no objects: κ stays"
        }

        test "object vectors equal the masked sums of the tokens rescaled to the mean CLS norm" {
            use _ = torch.NewDisposeScope()
            let clusters, tokens = smallClusters 21
            let objects = objectVectors clusters tokens
            let v = clusters.ValidCount
            Expect.equal objects.shape [| 2L; int64 v; 5L |] "(2, V, D)"
            let w = valuesOf clusters.Masks
            let y = valuesOf tokens
            let s, n, k, d = 4, 9, clusters.KBar, 5
            let gamma = Array.init 4 (fun r -> sqrt (Array.init d (fun i -> y.[(r * 10) * d + i] ** 2.0) |> Array.sum)) |> Array.average
            let got = valuesOf objects
            for vi, flat in Array.indexed (valuesOf clusters.Valid |> Array.map int) do
                let si, ki = flat / k, flat % k
                let image = si / 2
                for m in 0 .. 1 do
                    let u = Array.init d (fun di -> Seq.sum (seq { for ni in 0 .. n - 1 -> w.[((m * s + si) * n + ni) * k + ki] * y.[((m * 2 + image) * 10 + 1 + ni) * d + di] }))
                    let norm = sqrt (Array.sumBy (fun x -> x * x) u)
                    for di in 0 .. d - 1 do
                        Expect.floatClose { absolute = 1e-12; relative = 1e-10 } got.[(m * v + vi) * d + di] (gamma * u.[di] / norm) "c = γ·u/‖u‖"
        }

        test "gradients reach the student's tokens through the pooled objects and through γ" {
            use _ = torch.NewDisposeScope()
            let clusters, tokens = smallClusters 5
            let weights = tensorOf [| 2L; int64 clusters.ValidCount; 5L |] (normal (Random(2)) (2 * clusters.ValidCount * 5))
            gradientCheck (fun t -> (objectVectors clusters t * weights).sum()) (tokens.requires_grad_(true))
        }

        test "one valid cluster (S = 1, K = 1) and an empty valid set flow through pooling and the loss" {
            use _ = torch.NewDisposeScope()
            let c : ClusteringTests.Case = { B = 1; Groups = 1; Side = 3; Dim = 4; Seed = 2 }
            let features, positions = ClusteringTests.inputs f32 c
            let one = cluster (ClusteringConfig.Poster 1) (Sampled(ClusteringTests.generator 2)) features positions
            Expect.equal one.ValidCount 1 "the single cluster spans both views"
            let tokens = torch.randn(2L, 10L, 4L).requires_grad_(true)
            let objects = objectVectors one tokens
            Expect.equal objects.shape [| 2L; 1L; 4L |] "one matched pair"
            let none = { one with Valid = one.Valid.narrow(0L, 0L, 0L) }
            let empty = objectVectors none tokens
            Expect.equal empty.shape [| 2L; 0L; 4L |] "no pairs"
            let flat = empty.reshape(0L, 4L)
            let dense = lossDense temps (torch.zeros(1L, 4L)) flat (flat.detach())
            Expect.isTrue (dense.Empty && toFloat dense.Loss = 0.0) "L_obj = 0, flagged"
            dense.Loss.backward()
            Expect.equal (valuesOf (gradOf tokens) |> Array.max) 0.0 "zero gradient, no NaN"
        }
    ]
