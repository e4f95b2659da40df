/// The composed forward of one CrOC step (`Croc.step`, spec §2) against its parts run by hand.
module CrOC.Tests.CrocStepTests

open System
open Expecto
open TorchSharp
open CrOC.Math
open CrOC.Math.Tensors
open CrOC.Math.Clustering
open CrOC.Tests.TestUtil

let tests =
    testList "CrOC step" [
        test "Croc.step composes its parts: each level's own temperatures and centre, the student's objects pooled with the teacher's clusters, L = L_img + α·L_obj, the centres' statistics, the gradient of the loss built by hand (γ_s included), none into the teacher" {
            use _ = torch.NewDisposeScope()
            let rng = Random 17
            let images, side = 2, 4
            let n = side * side
            // Every pair that could be swapped differs: the temperatures of the two levels, the two
            // centres, the two networks (drawn from two generators).
            let cfg : Croc.CrocConfig =
                { Network = Fixtures.config; Clustering = ClusteringConfig.Official; Features = Croc.LastBlockKeys; Alpha = 0.5
                  GlobalPool = Croc.ClsToken; StudentTemp = 0.2; StudentTempC = 0.07; CentreMomentum = 0.9; DropPath = 0.0; Precision = Layers.Fp32 }
            let student = Network.init cfg.Network (new torch.Generator(2UL, torch.CPU))
            let teacher = Croc.frozenCopy cfg.Network (Network.init cfg.Network (new torch.Generator(3UL, torch.CPU)))
            let centre = tensorOf [| 1L; 40L |] (normal rng 40) |> fun t -> t.to_type(f32)
            let centreC = tensorOf [| 1L; 24L |] (normal rng 24) |> fun t -> t.to_type(f32)
            let state : Croc.CrocState = { Student = student; Teacher = teacher; Centre = centre; CentreC = centreC }
            let views = (tensorOf [| int64 (2 * images); 3L; 32L; 32L |] (normal rng (2 * images * 3 * 32 * 32))).to_type(f32)
            let positions =
                let crop () = patchCentres side 8 (50.0 * rng.NextDouble()) (50.0 * rng.NextDouble()) (60.0 + 100.0 * rng.NextDouble()) (60.0 + 100.0 * rng.NextDouble()) false
                (tensorOf [| int64 (2 * images); int64 n; 2L |] (Array.init (2 * images) (fun _ -> crop ()) |> Array.concat)).to_type(f32)
            let problems = images * cfg.Network.Vit.Heads
            let seeds = torch.tensor([| for _ in 1 .. problems do yield! (Array.init (2 * n) id |> Array.sortBy (fun _ -> rng.Next())).[.. 4] |> Array.map int64 |]).reshape(int64 problems, 5L)
            let input : Croc.StepInput =
                { Views = views; Positions = positions; TeacherTemp = 0.05; TeacherTempC = 0.03; Seeding = Given seeds
                  DropPathGenerator = new torch.Generator(1UL, torch.CPU); Mark = null }
            let result = Croc.step cfg state input

            // The same step by hand.
            let hand = StepByHand.forward cfg.Network cfg.Clustering teacher student (Given seeds) views positions
            let clusters = hand.Clusters
            let lossImg = Reference.crossViewLoss 0.2 0.05 (valuesOf centre) (rowsOf hand.StudentImage) (rowsOf hand.TeacherImage)
            let lossObj = Reference.crossViewLoss 0.07 0.03 (valuesOf centreC) (rowsOf hand.StudentObjects) (rowsOf hand.TeacherObjects)

            Expect.isGreaterThan clusters.ValidCount 0 "objects were matched"
            Expect.notEqual clusters.ValidCount images "|V| ≠ B: the two centres' row counts differ, so a swap would show"
            let close (actual: Tensor) (expected: float) what = Expect.floatClose { absolute = 1e-5; relative = 1e-5 } (toFloat actual) expected what
            close result.LossImg lossImg "L_img: image temperatures (0.2, 0.05) and the image centre"
            close result.LossObj lossObj "L_obj: object temperatures (0.07, 0.03), the object centre, objects of the teacher's clusters"
            close result.Loss (lossImg + 0.5 * lossObj) "L = L_img + α·L_obj"
            Expect.equal (toFloat result.ValidObjects) (float clusters.ValidCount) "|V|"
            Expect.sequenceEqual (valuesOf result.Clusters.Value.Masks) (valuesOf clusters.Masks) "the teacher's clusters"
            Expect.floatClose Accuracy.veryHigh (toFloat result.MeanKStar) (valuesOf clusters.KStar |> Array.average) "mean K*"
            Expect.isLessThan (maxAbsDiff result.CentreStats.Sum (hand.TeacherImage.sum(0L, keepdim = true))) 1e-4 "Σ of the teacher's image rows"
            Expect.equal (toFloat result.CentreStats.Count) (float (2 * images)) "2B image rows"
            Expect.isLessThan (maxAbsDiff result.CentreStatsC.Sum (hand.TeacherObjects.sum(0L, keepdim = true))) 1e-4 "Σ of the teacher's object rows"
            Expect.equal (toFloat result.CentreStatsC.Count) (float (2 * clusters.ValidCount)) "2·|V| object rows"

            // The gradient, through every path (tokens, γ, both heads), is that of the loss built by hand.
            let trainable = [ for name, t in Network.named student do if t.requires_grad then name, t ]
            let gradientsOf (loss: Tensor) =
                Optim.clearGradients (List.map snd trainable)
                loss.backward()
                [ for _, t in trainable -> (gradOf t).clone() ]
            let step = gradientsOf result.Loss
            Expect.all (Network.named teacher) (fun (_, t) -> isNull t.grad) "no gradient reaches the teacher"
            let lossWith (studentObjects: Tensor) (outputs: StepByHand.Outputs) =
                plus (Losses.lossGlob { Student = 0.2; Teacher = 0.05 } centre outputs.StudentImage outputs.TeacherImage)
                     (times 0.5 (Losses.lossDense { Student = 0.07; Teacher = 0.03 } centreC studentObjects outputs.TeacherObjects))
            let farFrom (gradients: Tensor list) =
                List.zip step gradients |> List.map (fun (e, g) -> maxAbsDiff g e / (1e-12 + toFloat (e.abs().max())))
            let byHand = farFrom (gradientsOf (lossWith hand.StudentObjects hand))
            for (name, _), error in List.zip trainable byHand do
                Expect.isLessThan error 1e-4 (sprintf "∂L/∂%s, relative to its largest entry" name)
            // (Seen: identical.) The check sees a lost path: γ_s detached moves some gradient by 1.6 % of its largest entry.
            let again = StepByHand.forward cfg.Network cfg.Clustering teacher student (Given seeds) views positions
            let gamma = Objects.meanClsNorm again.StudentTokens
            let fixedGamma = Heads.objects student.Head ((Objects.objectVectors clusters again.StudentTokens / gamma * gamma.detach()).reshape(-1L, again.StudentTokens.shape.[2]))
            Expect.isGreaterThan (List.max (farFrom (gradientsOf (lossWith fixedGamma again)))) 1e-3 "γ_s detached: the gradient differs"
            Expect.isGreaterThan (toFloat ((gradOf student.Backbone.Blocks.[0].Qkv.Weight).abs().sum())) 0.0 "the backbone learns"
        }

        // Catches: AveragePatches averaging the CLS token in (the poster's z̄ = avg(Z) over the patches).
        test "the average-pooled image vector is the mean of the patch tokens, without the CLS" {
            use _ = torch.NewDisposeScope()
            let tokens = tensorOf [| 1L; 3L; 2L |] [| 100.; 100.; 1.; 2.; 3.; 6. |]
            let out : Vit.VitOutput = { Cls = tokens.select(1L, 0L); Tokens = tokens; Last = None }
            Expect.sequenceEqual (valuesOf (Croc.pool Croc.AveragePatches out)) [| 2.0; 4.0 |] "mean of tokens 1..N"
        }
    ]
