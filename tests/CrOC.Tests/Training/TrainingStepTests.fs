/// One training step (`TrainingStep.run`, spec §2, §5, §7, §8) on a tiny network: its losses, metrics,
/// centres, accumulation, stochastic depth, EMA and weight decay against independent computations.
module CrOC.Tests.TrainingStepTests

open System
open Expecto
open TorchSharp
open CrOC.Math
open CrOC.Math.Tensors
open CrOC.Math.Clustering
open CrOC.Tests.TestUtil

/// The tests' tiny configuration (a 2-block ViT at 32 px, patch 8: N = 16) as a CrOC configuration, with `extra` settings.
let private tinyCroc (extra: (string * string) list) =
    let config = TrainingTests.tinyConfig (DataTests.tempDir "step") extra
    IO.Directory.Delete(config.Output, true)
    CrOC.Host.Training.CrocSetup.Croc config

/// One process: the collectives do nothing.
type private Single() =
    interface TrainingStep.ICollective with
        member _.Rank = 0
        member _.World = 1
        member _.AllReduceSum _ = ()
        member _.AverageGradients _ = ()

/// One micro-batch of 4 images: views (8, 3, 32, 32) ~ N(0, 1) and patch positions (8, 16, 2) in
/// [0, 200), the same values at every call, with fresh generators for drop-path (6) and seeds (7).
let private drawBatch () : TrainingStep.MicroBatch =
    let rng = Random 5
    { Views = (tensorOf [| 8L; 3L; 32L; 32L |] (normal rng (8 * 3 * 32 * 32))).to_type(f32)
      Positions = (tensorOf [| 8L; 16L; 2L |] (uniform rng 0.0 200.0 (8 * 16 * 2))).to_type(f32)
      DropPath = new torch.Generator(6UL)
      Seeding = new torch.Generator(7UL) }

/// The object level's teacher temperature differs from the image level's: a swap shows.
let private schedule : TrainingStep.Schedule = { Epoch = 1; Lr = 1e-3; WeightDecay = 0.04; Momentum = 0.996; TeacherTemp = 0.04; TeacherTempC = 0.05 }

let private settings (accum: int) : TrainingStep.Settings = { Accum = accum; Batch = 4; ClipGrad = 3.0; FreezeLastLayer = 0 }

/// Offsets of 0.05·N(0, 1) for every tensor of `network`, in its order, from generator 4: a teacher
/// that differs from the student.
let private teacherOffsets (network: Network.NetworkParams) =
    let noise = new torch.Generator(4UL)
    [ for name, t in Network.named network -> name, torch.randn(t.shape, generator = noise) * 0.05 ]

/// A fresh state whose teacher differs from its student and whose centres are not 0 (drop-path 0).
let private freshState (croc: Croc.CrocConfig) =
    let state = Croc.init croc (new torch.Generator(3UL))
    use _ = torch.no_grad()
    for (_, t), (_, offset) in List.zip (Network.named state.Teacher) (teacherOffsets state.Teacher) do t.add_(offset) |> ignore
    let noise = new torch.Generator(5UL)
    { state with Centre = torch.randn(state.Centre.shape, generator = noise); CentreC = torch.randn(state.CentreC.shape, generator = noise) }

/// One step of `TrainingStep.run` on one process with a fresh optimiser.
let private runStep (croc: Croc.CrocConfig) (accum: int) (state: Croc.CrocState) (batches: TrainingStep.MicroBatch list) (schedule: TrainingStep.Schedule) =
    TrainingStep.run croc (settings accum) (Single() :> TrainingStep.ICollective) (new Optim.AdamW()) state (Seq.ofList batches) schedule null

let tests =
    testList "training step" [
        // Catches: student/teacher swapped in L_img, the image centre fed the student's rows, the
        // object centre fed the student's rows, the two centres' row counts swapped, the entropy
        // metric at τ_s, L_obj at the image-level τ_t.
        test "one training step: L_img, L_obj, teacher entropy and both centres follow spec §5 and §7 from an independent forward" {
            use _ = torch.NewDisposeScope()
            let croc = tinyCroc [ "drop-path", "0" ]
            let vit = croc.Network.Vit
            let state = freshState croc
            let batch = drawBatch ()
            // the step's seeds: noise drawn as the step draws it from the batch's seeding generator (7)
            let seeding = Noisy(seedNoise (new torch.Generator(7UL)) (batch.Views.shape.[0] / 2L * int64 vit.Heads) (2L * int64 vit.Tokens) f32 torch.CPU)
            let hand = using (torch.no_grad()) (fun _ -> StepByHand.forward croc.Network croc.Clustering state.Teacher state.Student seeding batch.Views batch.Positions)
            Expect.isGreaterThan hand.Clusters.ValidCount 0 "some objects"
            Expect.notEqual hand.Clusters.ValidCount (int batch.Views.shape.[0] / 2) "|V| ≠ B: the two centres' row counts differ, so a swap would show"
            let centre0, centreC0 = valuesOf state.Centre, valuesOf state.CentreC
            let after, metrics = runStep croc 1 state [ batch ] schedule
            let lossImg = Reference.crossViewLoss croc.StudentTemp schedule.TeacherTemp centre0 (rowsOf hand.StudentImage) (rowsOf hand.TeacherImage)
            Expect.floatClose { absolute = 1e-5; relative = 1e-5 } metrics.["loss_img"] lossImg "L_img: teacher view m against the student's other view"
            let lossObj = Reference.crossViewLoss croc.StudentTempC schedule.TeacherTempC centreC0 (rowsOf hand.StudentObjects) (rowsOf hand.TeacherObjects)
            Expect.floatClose { absolute = 1e-5; relative = 1e-5 } metrics.["loss_obj"] lossObj "L_obj: the student's objects pooled with the teacher's masks, τ_sc and τ_tc, centre κ_c"
            let entropy =
                rowsOf hand.TeacherImage
                |> Array.averageBy (fun g -> -(Reference.teacherTarget schedule.TeacherTemp centre0 g |> Array.sumBy (fun q -> if q > 0.0 then q * log q else 0.0)))
            Expect.floatClose { absolute = 1e-4; relative = 1e-4 } metrics.["teacher_entropy"] entropy "entropy of the teacher's targets at τ_t"
            let moved (before: float[]) (teacherRows: Tensor) = Array.mapi (fun i k -> 0.9 * k + 0.1 * (rowsOf teacherRows |> Array.averageBy (fun r -> r.[i]))) before
            Expect.isLessThan (maxAbsDiff after.Centre (tensorOf [| 1L; int64 centre0.Length |] (moved centre0 hand.TeacherImage))) 1e-5 "κ ← 0.9·κ + 0.1·mean of the 2B teacher rows"
            Expect.isLessThan (maxAbsDiff after.CentreC (tensorOf [| 1L; int64 centreC0.Length |] (moved centreC0 hand.TeacherObjects))) 1e-5 "κ_c ← 0.9·κ_c + 0.1·mean of the 2|V| teacher object rows"
        }

        // Catches: the loss not divided by the accumulation count.
        test "accumulation: a step over the same micro-batch twice has the gradient of one step over it" {
            use _ = torch.NewDisposeScope()
            let croc = tinyCroc [ "drop-path", "0" ]
            let gradients (s: Croc.CrocState) = [ for name, t in Network.trainable s.Student do match t.grad with null -> () | g -> yield name, g.clone() ]
            let once = gradients (fst (runStep croc 1 (freshState croc) [ drawBatch () ] schedule))
            let twice = gradients (fst (runStep croc 2 (freshState croc) [ drawBatch (); drawBatch () ] schedule))
            Expect.equal (List.map fst twice) (List.map fst once) "the same tensors have gradients"
            for (name, g1), (_, g2) in List.zip once twice do
                Expect.isLessThan (maxAbsDiff g2 g1) (1e-5 * (1.0 + toFloat (g1.abs().max()))) (sprintf "∂L/∂%s: the same batch twice = once" name)
        }

        // Catches: the student's forward in a step without stochastic depth (spec §2 step 4, §3).
        test "a step's student runs with stochastic depth: L_img equals the reference on a student forward with the batch's drop-path draws" {
            use _ = torch.NewDisposeScope()
            let croc = tinyCroc [ "drop-path", "0.5" ]
            let vit = croc.Network.Vit
            let state = Croc.init croc (new torch.Generator(3UL))
            let batch = drawBatch ()
            let views = batch.Views
            let centre = valuesOf state.Centre
            let studentWith (options: Vit.ForwardOptions) =
                use _ = torch.no_grad()
                Heads.image state.Student.Head (Vit.forward vit state.Student.Backbone options views).Cls
            let dropped = studentWith { Vit.ForwardOptions.Inference with DropPath = 0.5; DropPathSource = Some(Vit.Drawn(new torch.Generator(6UL))) }
            let whole = studentWith Vit.ForwardOptions.Inference
            let teacherImage = using (torch.no_grad()) (fun _ -> Heads.image state.Teacher.Head (Vit.forward vit state.Teacher.Backbone Vit.ForwardOptions.Inference views).Cls)
            let reference student = Reference.crossViewLoss croc.StudentTemp schedule.TeacherTemp centre (rowsOf student) (rowsOf teacherImage)
            let _, metrics = runStep croc 1 state [ batch ] schedule
            Expect.isGreaterThan (abs (reference dropped - reference whole)) 1e-3 "drop-path changes L_img here"
            Expect.floatClose { absolute = 1e-5; relative = 1e-5 } metrics.["loss_img"] (reference dropped) "L_img of the step = the reference with the student's drop-path draws"
        }

        // Catches: the EMA after the optimiser (for the teacher copies AdamW's pass cannot move: all of
        // them on a GPU) at 1 − m instead of m. Non-contiguous teacher matrices make the CPU take that path.
        test "EMA (spec §8): every teacher tensor becomes m·θ_t + (1 − m)·θ_s, those the optimiser's pass cannot move too" {
            use _ = torch.NewDisposeScope()
            let croc = tinyCroc [ "drop-path", "0" ]
            let state = Croc.init croc (new torch.Generator(3UL))
            let teacher =
                use _ = torch.no_grad()
                let perturbed = dict [ for (name, t), (_, offset) in List.zip (Network.named state.Teacher) (teacherOffsets state.Teacher) ->
                                         name, (let u = t + offset in if u.dim() = 2L then u.t().contiguous().t() else u) ]
                Network.ofNamed croc.Network (fun name -> perturbed.[name])
            Expect.exists (Network.named teacher) (fun (_, t) -> not (t.is_contiguous())) "some teacher tensors are not contiguous"
            let state = { state with Teacher = teacher }
            let before = [ for name, t in Network.named state.Teacher -> name, t.clone() ]
            let after, _ = runStep croc 1 state [ drawBatch () ] { schedule with Momentum = 0.9 }
            let student = dict (Network.named after.Student)
            for (name, t0), (_, t1) in List.zip before (Network.named after.Teacher) do
                Expect.isLessThan (maxAbsDiff t1 (t0 * 0.9 + student.[name] * 0.1)) 1e-6 (sprintf "teacher %s" name)
        }
    ]
