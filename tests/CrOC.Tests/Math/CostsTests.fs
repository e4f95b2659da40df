module CrOC.Tests.CostsTests

open System
open Expecto
open TorchSharp
open CrOC.Math.Tensors
open CrOC.Math.Costs
open CrOC.Tests.TestUtil

let tests =
    testList "Costs" [
        test "costPos is the Euclidean distance divided by the per-problem maximum" {
            use _ = torch.NewDisposeScope()
            // Problem 0: tokens at (0,0), (3,4); centroid at (0,0) → distances 0, 5 → 0, 1.
            // Problem 1: tokens at (0,0), (0,1); centroid at (0,2) → distances 2, 1 → 1, 0.5.
            let e = tensorOf [| 2L; 2L; 2L |] [| 0.; 0.; 3.; 4.; 0.; 0.; 0.; 1. |]
            let mu = tensorOf [| 2L; 1L; 2L |] [| 0.; 0.; 0.; 2. |]
            Expect.sequenceEqual (valuesOf (costPos e mu)) [| 0.0; 1.0; 1.0; 0.5 |] "normalised distances"
        }

        test "costPos of a problem whose tokens all sit on the centroid is 0, not NaN" {
            use _ = torch.NewDisposeScope()
            let e = torch.ones(1L, 3L, 2L, dtype = f64)
            Expect.sequenceEqual (valuesOf (costPos e (torch.ones(1L, 2L, 2L, dtype = f64)))) (Array.zeroCreate 6) "zeros"
        }

        test "costSem is the negative cosine to the normalised centroids" {
            use _ = torch.NewDisposeScope()
            let x = tensorOf [| 1L; 2L; 2L |] [| 1.; 0.; 0.; 1. |]
            let c = tensorOf [| 1L; 1L; 2L |] [| 3.; 3. |]
            let expected = -1.0 / sqrt 2.0
            Expect.isLessThan (maxAbsDiff (costSem x c) (tensorOf [| 1L; 2L; 1L |] [| expected; expected |])) 1e-15 "cosines"
        }

        test "minMaxGlobal rescales with one min and max across all problems" {
            use _ = torch.NewDisposeScope()
            let m = tensorOf [| 2L; 1L; 2L |] [| 1.; 2.; 3.; 5. |]
            Expect.sequenceEqual (valuesOf (minMaxGlobal m)) [| 0.0; 0.25; 0.5; 1.0 |] "global rescaling"
        }

        test "patch positions averaged from a dense position map equal the closed form, flipped or not" {
            use _ = torch.NewDisposeScope()
            // A crop that is not resized (scale 1): pixel (r, c) of the view came from (i0 + r, j0 + c),
            // or from column j0 + (W − 1 − c) when the view is flipped.
            let side, patch, i0, j0 = 3, 4, 5.0, 7.0
            let h = side * patch
            for flipped in [ false; true ] do
                let map =
                    Array.init (2 * h * h) (fun idx ->
                        let ch, rem = idx / (h * h), idx % (h * h)
                        let r, c = rem / h, rem % h
                        let source = if flipped then h - 1 - c else c
                        if ch = 0 then j0 + float source else i0 + float r)
                let pooled = patchPositionsFromMap patch (tensorOf [| 1L; 2L; int64 h; int64 h |] map)
                let expected = patchCentres side patch i0 j0 (float h) (float h) flipped
                Expect.isLessThan (maxAbsDiff pooled (tensorOf [| 1L; int64 (side * side); 2L |] expected)) 1e-5 (sprintf "pooled = closed form (flipped %b)" flipped)
        }

        // Catches: D normalised per centroid (amax over tokens only) instead of per problem.
        test "costPos divides by the maximum over every token and centroid of the problem" {
            use _ = torch.NewDisposeScope()
            // tokens (0,0), (0,1); centroids (0,0), (0,4): distances [0, 4; 1, 3] / 4
            let e = tensorOf [| 1L; 2L; 2L |] [| 0.; 0.; 0.; 1. |]
            let mu = tensorOf [| 1L; 2L; 2L |] [| 0.; 0.; 0.; 4. |]
            Expect.sequenceEqual (valuesOf (costPos e mu)) [| 0.0; 1.0; 0.25; 0.75 |] "normalised distances"
        }

        // Catches: a different λ_pos factor, or the min–max applied before adding λ_pos·D.
        test "jointCost = the global min–max rescaling of −X·Ĉᵀ + λ_pos·D (naive float64)" {
            use _ = torch.NewDisposeScope()
            let rng = Random(4)
            let x = l2normalize (tensorOf [| 2L; 5L; 3L |] (normal rng 30))
            let centroids = tensorOf [| 2L; 2L; 3L |] (normal rng 12)
            let e = tensorOf [| 2L; 5L; 2L |] (uniform rng 0.0 100.0 20)
            let mu = tensorOf [| 2L; 2L; 2L |] (uniform rng 0.0 100.0 8)
            let xs, cs, es, ms = cube x, cube centroids, cube e, cube mu
            let raw =
                [| for s in 0 .. 1 do
                     let dist t k = sqrt ((es.[s].[t].[0] - ms.[s].[k].[0]) ** 2.0 + (es.[s].[t].[1] - ms.[s].[k].[1]) ** 2.0)
                     let top = Seq.max (seq { for t in 0 .. 4 do for k in 0 .. 1 -> dist t k })
                     for t in 0 .. 4 do
                         for k in 0 .. 1 do
                             yield -(Reference.dot xs.[s].[t] (Reference.normalise cs.[s].[k])) + 4.0 * dist t k / top |]
            let low, high = Array.min raw, Array.max raw
            let expected = raw |> Array.map (fun v -> (v - low) / (high - low))
            Expect.isLessThan (maxAbsDiff (jointCost 4.0 x e centroids mu) (tensorOf [| 2L; 5L; 2L |] expected)) 1e-12 "M"
        }
    ]
