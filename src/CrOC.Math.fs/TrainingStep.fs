/// One optimiser step of CrOC (spec §2, §8) with the recipe's rules, shared by `train` and `bench`:
/// for each micro-batch `Croc.step` and backward (loss / accum) in its own dispose scope; then, over
/// all ranks, the mean gradients, the mean metrics and the summed centre statistics; the centre
/// update, per-tensor clipping, the last-layer freeze, AdamW and the EMA teacher. The host gives the
/// data (micro-batches with their random streams) and the collective; everything else is here.
module CrOC.Math.TrainingStep

open System.Collections.Generic
open TorchSharp
open CrOC.Math.Tensors

/// The collective operations of a data-parallel step; the host implements them (MPI, or the
/// identity for one process). Every rank calls them in the same order with the same shapes.
type ICollective =
    abstract Rank: int
    abstract World: int
    /// Element-wise sum over all ranks, in place.
    abstract AllReduceSum: Tensor -> unit
    /// Each parameter's gradient replaced by its mean over all ranks, in place.
    abstract AverageGradients: Tensor seq -> unit

/// The values of the schedules at one iteration.
type Schedule = { Epoch: int; Lr: float; WeightDecay: float; Momentum: float; TeacherTemp: float; TeacherTempC: float }

/// The recipe settings a step reads.
type Settings =
    { /// Micro-batches per optimiser step (gradient accumulation).
      Accum: int
      /// Images per micro-batch (metrics per image).
      Batch: int
      /// Per-tensor gradient clipping norm.
      ClipGrad: float
      /// Epochs during which the last layers get no update.
      FreezeLastLayer: int }

/// One micro-batch: (2B, 3, S, S) views and (2B, N, 2) positions, with the random streams of its
/// stochastic depth and its clustering seeds.
type MicroBatch = { Views: Tensor; Positions: Tensor; DropPath: torch.Generator; Seeding: torch.Generator }

/// The recipe's collapse check on a step's mean teacher entropy H (after the first 20 steps): H
/// near ln L (uniform targets, > 98 %) or near 0 (one-hot targets, < 0.01).
let looksCollapsed (step: int64) (teacherEntropy: float) (outDim: int) : bool =
    step > 20L && (teacherEntropy > 0.98 * log (float outDim) || teacherEntropy < 0.01)

/// The metrics of a step, in this order, averaged over the micro-batches and the ranks.
let metricNames = [ "loss"; "loss_img"; "loss_obj"; "objects_per_image"; "objects_empty"; "mean_k_star"; "teacher_entropy"; "kl_teacher_student" ]

/// The step's metrics (in `metricNames` order) and its teacher rows for the image and object
/// centres, its tensors read back at once (on a GPU: one synchronisation).
let private metricsOf (r: Croc.StepResult) (batch: int) : float list * float * float =
    use _ = torch.NewDisposeScope()
    let read =
        torch.stack([| for t in [ r.Loss; r.LossImg; r.LossObj; r.ValidObjects; r.MeanKStar; r.TeacherEntropy; r.KlTeacherStudent
                                  r.CentreStats.Count; r.CentreStatsC.Count ] -> t.detach().to_type(torch.float64) |])
            .cpu().data<float>().ToArray()
    [ read.[0]; read.[1]; read.[2]; read.[3] / float batch; (if read.[3] = 0.0 then 1.0 else 0.0); read.[4]; read.[5]; read.[6] ], read.[7], read.[8]

let private allReduced (collective: ICollective) (values: float list) : float list =
    if collective.World = 1 then values
    else
        use all = torch.tensor(Array.ofList values, torch.float64)
        collective.AllReduceSum all
        List.ofArray (all.data<float>().ToArray())

/// The two (1, n) sums all-reduced as one buffer.
let private allReducedPair (collective: ICollective) (a: Tensor) (b: Tensor) : Tensor * Tensor =
    if collective.World = 1 then a, b
    else
        let joined = torch.cat([| a; b |], 1L)
        collective.AllReduceSum joined
        joined.narrow(1L, 0L, a.shape.[1]), joined.narrow(1L, a.shape.[1], b.shape.[1])

/// Runs the step on `model` (its student and teacher updated in place; its centres replaced and
/// freed) and returns the model with the new centres and the metrics by name. When the loss is not
/// finite on the ranks (which all see the same mean) nothing is updated and `model` is returned.
/// `mark` (may be null) hears each phase's end: data, the phases of `Croc.step`, backward,
/// all-reduce, optimiser, EMA.
let run (croc: Croc.CrocConfig) (settings: Settings) (collective: ICollective) (optimiser: Optim.AdamW)
        (model: Croc.CrocState) (microBatches: IEnumerable<MicroBatch>) (schedule: Schedule) (mark: System.Action<string> | null)
        : Croc.CrocState * Dictionary<string, float> =
    let hear = Croc.markPhase mark
    use _ = torch.NewDisposeScope()
    let trainable = Network.trainable model.Student
    let tensors = List.map snd trainable
    Optim.clearGradients tensors
    let sums = Array.zeroCreate metricNames.Length
    let imageSum, objectSum = torch.zeros_like(model.Centre), torch.zeros_like(model.CentreC)
    let mutable imageRows, objectRows, count = 0.0, 0.0, 0
    use batches = microBatches.GetEnumerator()
    while count < settings.Accum do
        if not (batches.MoveNext()) then invalidOp "the loader ran out of batches inside an epoch"
        let batch = batches.Current
        hear "data"
        use _ = torch.NewDisposeScope()
        let input : Croc.StepInput =
            { Views = batch.Views; Positions = batch.Positions; TeacherTemp = schedule.TeacherTemp; TeacherTempC = schedule.TeacherTempC
              Seeding = Clustering.Seeding.Sampled batch.Seeding; DropPathGenerator = batch.DropPath; Mark = mark }
        let result = Croc.step croc model input
        (over result.Loss (float settings.Accum)).backward()
        hear "backward"
        let values, rows, rowsC = metricsOf result settings.Batch
        values |> List.iteri (fun i v -> sums.[i] <- sums.[i] + v / float settings.Accum)
        addInPlace imageSum result.CentreStats.Sum |> ignore
        addInPlace objectSum result.CentreStatsC.Sum |> ignore
        imageRows <- imageRows + rows
        objectRows <- objectRows + rowsC
        count <- count + 1
    // Over the ranks: one all-reduce of the metric sums and the two row counts, then (unless the
    // loss diverged, which every rank sees alike) the gradients and the two centre sums.
    let totals = allReduced collective (List.ofArray sums @ [ imageRows; objectRows ])
    let metrics = Dictionary<string, float>()
    List.iteri (fun i name -> metrics.[name] <- totals.[i] / float collective.World) metricNames
    if not (System.Double.IsFinite metrics.["loss"]) then model, metrics
    else
        collective.AverageGradients tensors
        let image, objects = allReducedPair collective imageSum objectSum
        hear "all-reduce"
        let countOf i = filledOn image.device torch.float64 totals.[metricNames.Length + i]
        let centre, centreC = Croc.updateCentres croc model { Sum = image; Count = countOf 0 } { Sum = objects; Count = countOf 1 }
        let clip = Optim.clipFactors settings.ClipGrad trainable
        let teacher = Network.named model.Teacher
        let follower: Optim.Follower = { Momentum = schedule.Momentum; Teacher = (Map.ofList teacher).TryFind }
        let moved = Croc.optimiserStep optimiser trainable schedule.Lr schedule.WeightDecay settings.FreezeLastLayer schedule.Epoch clip follower
        hear "optimiser"
        // the EMA of the teacher copies the optimiser's pass did not move (all of them on a GPU)
        let rest = List.zip teacher (Network.named model.Student) |> List.filter (fun ((name, _), _) -> not (moved.Contains name))
        Ema.ema schedule.Momentum [ for (_, t), _ in rest -> t ] [ for _, (_, s) in rest -> s ]
        hear "EMA"
        model.Centre.Dispose()
        model.CentreC.Dispose()
        { model with Centre = centre.DetachFromDisposeScope(); CentreC = centreC.DetachFromDisposeScope() }, metrics
