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

        test "L_obj matches the same reference over the objects" {
            use _ = torch.NewDisposeScope()
            let student, teacher, centre = logits 9 5 11
            let expected = Reference.crossViewLoss 0.1 0.04 (valuesOf centre) (rowsOf student) (rowsOf teacher)
            Expect.floatClose { absolute = 1e-12; relative = 1e-12 } (toFloat (lossDense temps centre student teacher)) expected "loss"
        }

        test "weighted L_obj and centre statistics over every candidate equal lossDense and rowSum over the valid rows alone" {
            use _ = torch.NewDisposeScope()
            let student, teacher, centre = logits 13 7 11                           // (14, 11): 7 candidates, two views
            let validity = torch.tensor([| true; false; true; true; false; false; true |])
            let pick (t: Tensor) = let index = torch.tensor([| 0L; 2L; 3L; 6L |]) in torch.cat([| t.narrow(0L, 0L, 7L).index_select(0L, index); t.narrow(0L, 7L, 7L).index_select(0L, index) |])
            let expected = toFloat (lossDense temps centre (pick student) (pick teacher))
            Expect.floatClose { absolute = 1e-14; relative = 1e-13 } (toFloat (lossDenseWeighted validity temps centre student teacher)) expected "the mean over the valid rows"
            let listed, weighted = rowSum (pick teacher), weightedRowSum validity teacher
            Expect.isLessThan (maxAbsDiff weighted.Sum listed.Sum) 1e-12 "Σ of the valid teacher rows"
            Expect.equal (toFloat weighted.Count) (toFloat listed.Count) "2·|V| rows"
            gradientCheck (fun s -> lossDenseWeighted validity temps centre s teacher) student
            let none = torch.zeros(7L, dtype = torch.ScalarType.Bool)
            let s0 = student.detach().requires_grad_(true)
            let zero = lossDenseWeighted none temps centre s0 teacher
            Expect.equal (toFloat zero) 0.0 "no valid row: exactly 0, not NaN"
            zero.backward()
            Expect.equal (valuesOf (gradOf s0) |> Array.map abs |> worstError) 0.0 "and no gradient"
            Expect.equal (toFloat (weightedRowSum none teacher).Count) 0.0 "no rows counted"
        }

        test "gradients of L_img and L_obj w.r.t. the student outputs match finite differences" {
            use _ = torch.NewDisposeScope()
            let student, teacher, centre = logits 5 2 6
            gradientCheck (fun s -> lossGlob temps centre s teacher) student
            gradientCheck (fun s -> lossDense temps centre s teacher) student
        }

        test "an empty object set gives L_obj = 0, and backward still works" {
            use _ = torch.NewDisposeScope()
            let student = torch.zeros(0L, 8L, dtype = f64).requires_grad_(true)
            let dense = lossDense temps (torch.zeros(1L, 8L, dtype = f64)) student (torch.zeros(0L, 8L, dtype = f64))
            Expect.equal (toFloat dense) 0.0 "zero, not NaN"
            dense.backward()
            Expect.equal (gradOf student).shape [| 0L; 8L |] "gradient of the right shape"
        }

        test "centres move by momentum 0.9 toward the batch mean; no rows leave them unchanged" {
            use _ = torch.NewDisposeScope()
            let centre = tensorOf [| 1L; 3L |] [| 1.; 2.; 3. |]
            let teacher = tensorOf [| 2L; 3L |] [| 0.; 0.; 0.; 2.; 4.; 6. |]
            let updated = updateCentre 0.9 centre (rowSum teacher)
            Expect.isLessThan (maxAbsDiff updated (tensorOf [| 1L; 3L |] [| 1.0; 2.0; 3.0 |] )) 1e-15 "0.9·κ + 0.1·mean (mean = κ here)"
            let count (c: float) = torch.tensor(c, torch.ScalarType.Float64)
            let moved = updateCentre 0.9 centre { Sum = tensorOf [| 1L; 3L |] [| 10.; 10.; 10. |]; Count = count 1.0 }
            Expect.isLessThan (maxAbsDiff moved (tensorOf [| 1L; 3L |] [| 1.9; 2.8; 3.7 |])) 1e-15 "0.9·κ + 0.1·row"
            let unchanged = updateCentre 0.9 centre { Sum = torch.zeros(1L, 3L, dtype = f64); Count = count 0.0 }
            Expect.sequenceEqual (valuesOf unchanged) (valuesOf centre) "no objects: κ stays, bit for bit (not NaN)"
            // float32, as in training: the same bits as the update with the factor (1 − m)/count taken on the host
            let centre32, sum32 = torch.randn(1L, 64L), torch.randn(1L, 64L) * 7.0
            let onHost = centre32 * 0.9 + sum32 * ((1.0 - 0.9) / 37.0)
            let updated32 = updateCentre 0.9 centre32 { Sum = sum32; Count = count 37.0 }
            Expect.sequenceEqual (valuesOf updated32) (valuesOf onHost) "bit for bit the host-side factor's update"
        }

        test "|V|, the valid objects reported: the listed rows' count, or the weighted rows' validity summed (not their number)" {
            use _ = torch.NewDisposeScope()
            Expect.equal (toFloat (validCount (Listed(torch.tensor([| 0L; 2L; 5L |]))))) 3.0 "three listed clusters"
            Expect.equal (toFloat (validCount (Weighted(torch.tensor([| 1.0f; 0.0f; 1.0f; 0.0f; 0.0f; 1.0f |]))))) 3.0 "three of six columns valid"
            Expect.equal (toFloat (validCount (Weighted(torch.zeros(4L))))) 0.0 "none valid"
        }

        test "object vectors equal the masked sums of the tokens rescaled to the mean CLS norm" {
            use _ = torch.NewDisposeScope()
            let clusters, tokens = smallClusters 21
            let objects = objectVectors clusters tokens
            let v = clusters.ValidCount
            Expect.equal objects.shape [| 2L; int64 v; 5L |] "(2, V, D)"
            let w = valuesOf clusters.Masks
            let y = valuesOf tokens
            let s, n, k, d = 4, 9, clusters.Columns, 5
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
            let none = { one with Validity = torch.zeros_like(one.Validity) }
            let empty = objectVectors none tokens
            Expect.equal empty.shape [| 2L; 0L; 4L |] "no pairs"
            let flat = empty.reshape(0L, 4L)
            let dense = lossDense temps (torch.zeros(1L, 4L)) flat (flat.detach())
            Expect.equal (toFloat dense) 0.0 "L_obj = 0"
            dense.backward()
            Expect.equal (valuesOf (gradOf tokens) |> Array.map abs |> worstError) 0.0 "zero gradient, no NaN"
        }

        // Catches: a clamp of p well above 1e-30 before the log (the collapse diagnostic's entropy): a
        // clamp at 1e-11 moves this entropy by 8 %, at 1e-8 by 32 %.
        test "meanEntropy is −Σ p log p, exact for small probabilities and 0·log 0 = 0" {
            use _ = torch.NewDisposeScope()
            let p = tensorOf [| 2L; 2L |] [| 1.0 - 1e-12; 1e-12; 1.0; 0.0 |]
            let expected = ((1.0 - 1e-12) * 1e-12 - 1e-12 * log 1e-12) / 2.0 // log (1 − ε) = −ε (to 1e-12); ≈ 1.43e-11
            // 1e-3: 1 − 1e-12 is stored to about 1e-4 of its distance from 1
            Expect.floatClose { absolute = 0.0; relative = 1e-3 } (toFloat (meanEntropy p)) expected "mean entropy"
        }
    ]
