/// What CrOC trains (spec §2): student, teacher, heads, centres and the loss of one step, in one
/// place. `TrainingStep.run` adds the backward, the optimiser step (`optimiserStep`), the EMA
/// teacher and the new centres (`updateCentres`); the host's loop only iterates, logs and checkpoints.
module CrOC.Math.Croc

open TorchSharp
open CrOC.Math.Tensors
open CrOC.Math.Clustering

/// The image-level vector: the CLS output (the official code) or the mean of the patch tokens
/// (the poster's z̄ = avg(Z)).
type GlobalPool =
    | ClsToken
    | AveragePatches

/// What the joint clustering runs on: the last block's per-head keys (official, S = B·h) or the
/// final output tokens (the poster's Z_cat, S = B).
type FeatureSpace =
    | LastBlockKeys
    | OutputTokens

type CrocConfig =
    { Network: Network.NetworkConfig
      Clustering: ClusteringConfig
      Features: FeatureSpace
      /// α, the weight of L_obj (`alpha_s` = 1); 0 gives DINO-only training and skips the clustering.
      Alpha: float
      GlobalPool: GlobalPool
      /// τ_s of the image level (0.1, hard-coded in the official code).
      StudentTemp: float
      /// τ_sc of the object level (`student_temp_c` = 0.1).
      StudentTempC: float
      /// Momentum of both centres (0.9).
      CentreMomentum: float
      /// The student's largest stochastic-depth rate (0.1).
      DropPath: float
      /// Fp32, or Bf16 mixed precision for both networks' matmuls (losses, centres, EMA and the
      /// clustering stay float32).
      Precision: Layers.Precision }

type CrocState =
    { Student: Network.NetworkParams
      Teacher: Network.NetworkParams
      /// κ (1, L)
      Centre: Tensor
      /// κ_c (1, L_c)
      CentreC: Tensor }

/// The network with its tensors moved into one arena (`Arena.adopt`: same names, shapes, values and
/// requires_grad); `p`'s own tensors are freed.
let inArena (cfg: Network.NetworkConfig) (p: Network.NetworkParams) : Network.NetworkParams =
    let named = Network.named p
    let views = Arena.adopt named |> dict
    for _, t in named do t.Dispose()
    Network.ofNamed cfg (fun n -> views.[n])

/// A copy of the network's tensors that builds no graph (the teacher), in its own arena.
let frozenCopy (cfg: Network.NetworkConfig) (p: Network.NetworkParams) : Network.NetworkParams =
    let detached = [ for n, t in Network.named p -> n, t.detach() ]
    let views = Arena.adopt detached |> dict
    for _, t in detached do t.Dispose()
    Network.ofNamed cfg (fun n -> views.[n])

/// The state on `device`, each network in its own arena (the student's tensors stay leaves that
/// require a gradient).
let toDevice (cfg: Network.NetworkConfig) (device: torch.Device) (state: CrocState) : CrocState =
    let move (p: Network.NetworkParams) = inArena cfg (Network.ofNamed cfg (movedTo device (Network.named p)))
    { Student = move state.Student
      Teacher = move state.Teacher
      Centre = state.Centre.``to``(device)
      CentreC = state.CentreC.``to``(device) }

/// Student initialised, teacher = a copy of the student, centres 0; each network in an arena.
let init (cfg: CrocConfig) (generator: torch.Generator) : CrocState =
    let student = inArena cfg.Network (Network.init cfg.Network generator)
    { Student = student
      Teacher = frozenCopy cfg.Network student
      Centre = torch.zeros(1L, int64 cfg.Network.Head.OutDim)
      CentreC = torch.zeros(1L, int64 cfg.Network.Head.OutDimC) }

type StepInput =
    { /// (2B, 3, S, S): view 1 of the B images, then view 2; the same pixels for both networks.
      Views: Tensor
      /// (2B, N, 2): patch centres in original-image pixels.
      Positions: Tensor
      /// τ_t and τ_tc for this epoch.
      TeacherTemp: float
      TeacherTempC: float
      Seeding: Seeding
      DropPathGenerator: torch.Generator
      /// Called with a phase name when that phase of the step is done ("teacher forward",
      /// "clustering", "student forward", "heads + losses"): the benchmark's timer; null: nobody listens.
      Mark: System.Action<string> | null }

type StepResult =
    { /// L = L_img + α·L_obj, attached to the student's graph.
      Loss: Tensor
      LossImg: Tensor
      LossObj: Tensor
      /// |V|, the matched objects of the batch (0 with α = 0; with none L_obj = 0 carries no signal).
      /// This and the next three metrics are 0-d float64 tensors on the step's device, read by the
      /// caller after backward: no host synchronisation mid-step.
      ValidObjects: Tensor
      /// Mean K* over the problems (NaN with α = 0).
      MeanKStar: Tensor
      /// Mean entropy of the teacher's image-level targets (collapse: → 0 or → ln L).
      TeacherEntropy: Tensor
      /// KL(teacher ‖ student) of the cross-view pairs = L_img − H(teacher).
      KlTeacherStudent: Tensor
      /// Σ and count of this batch's teacher rows for the image and object centres: the caller sums
      /// them over micro-batches and processes, then calls `updateCentres` once per optimiser step.
      CentreStats: Losses.RowSum
      CentreStatsC: Losses.RowSum
      /// The batch's clustering (None with α = 0).
      Clusters: Clusters option }

/// The image-level vector of a forward pass, (B, D).
let pool (how: GlobalPool) (out: Vit.VitOutput) : Tensor =
    match how with
    | ClsToken -> out.Cls
    | AveragePatches -> out.Tokens.narrow(1L, 1L, out.Tokens.shape.[1] - 1L).mean([| 1L |])

/// The clustering features of the teacher's forward: (2S, 1+N, d), rows (view, image, head).
let private clusteringFeatures (features: FeatureSpace) (out: Vit.VitOutput) : Tensor =
    match features, out.Last with
    | LastBlockKeys, Some last -> last.Keys.reshape(-1L, last.Keys.shape.[2], last.Keys.shape.[3])
    | LastBlockKeys, None -> invalidOp "the teacher forward did not keep the last block"
    | OutputTokens, _ -> out.Tokens

/// Tells `listener` (the benchmark's phase timer; null: nobody listens) that `phase` has ended.
let markPhase (listener: System.Action<string> | null) (phase: string) : unit =
    match listener with null -> () | m -> m.Invoke phase

/// One CrOC step's forward: teacher (no graph) → clustering → student → objects → heads → losses,
/// and the statistics the centre updates need (spec §2, §5–§7; `updateCentres` applies them).
let step (cfg: CrocConfig) (state: CrocState) (input: StepInput) : StepResult =
    let objectsOn = cfg.Alpha > 0.0
    let vit = cfg.Network.Vit
    let keepTeacher (image, clusters: (Clusters * Objects.ObjectRows) option, objects: Tensor option) =
        let rowsTensor = function Objects.Listed t | Objects.Weighted t -> t
        image :: (clusters |> Option.map (fun (c, rows) -> rowsTensor rows :: c.Tensors) |> Option.defaultValue []) @ Option.toList objects
    // The student's stochastic-depth masks and a sampled seeding's noise are drawn and sent to the
    // device before the teacher's forward is queued: on a GPU their uploads then wait for nothing.
    // The same draws as drawing them where they are used (the noise: for float32 features, as
    // the step's are).
    let dropPathSource =
        if cfg.DropPath > 0.0 then
            Some(Vit.Predrawn(Vit.drawDropPathMasks cfg.DropPath state.Student.Backbone.Blocks.Length input.DropPathGenerator input.Views.shape.[0] input.Views.device))
        else None
    let seeding =
        match input.Seeding with
        | Sampled generator when objectsOn ->
            let images, n = input.Positions.shape.[0] / 2L, input.Positions.shape.[1]
            let groups = match cfg.Features with LastBlockKeys -> int64 vit.Heads | OutputTokens -> 1L
            Noisy(seedNoise generator (images * groups) (2L * n) torch.float32 input.Views.device)
        | other -> other
    let teacherImage, clusters, teacherObjects =
        scoped keepTeacher <| fun () -> // the teacher's activations are freed before the student's forward
        use _ = torch.no_grad()
        let out = Vit.forward vit state.Teacher.Backbone { Vit.ForwardOptions.Inference with LastBlock = objectsOn && cfg.Features = LastBlockKeys; Precision = cfg.Precision } input.Views
        let image = Heads.imageAs cfg.Precision state.Teacher.Head (pool cfg.GlobalPool out)   // (2B, L)
        markPhase input.Mark "teacher forward"
        if objectsOn then
            let clusters = cluster cfg.Clustering seeding (clusteringFeatures cfg.Features out) input.Positions
            markPhase input.Mark "clustering"
            let rows = Objects.rowsOf clusters cfg.Clustering.Shapes
            let objects = Objects.objectVectorsOf rows clusters out.Tokens                      // (2, R, D)
            image, Some(clusters, rows), Some(Heads.objectsAs cfg.Precision state.Teacher.Head (objects.reshape(-1L, objects.shape.[2]))) // (2R, Lc)
        else image, None, None
    let studentOut =
        Vit.forward vit state.Student.Backbone { DropPath = cfg.DropPath; DropPathSource = dropPathSource; LastBlock = false; Precision = cfg.Precision } input.Views
    markPhase input.Mark "student forward"
    let studentImage = Heads.imageAs cfg.Precision state.Student.Head (pool cfg.GlobalPool studentOut)
    let imageTemps : Losses.Temperatures = { Student = cfg.StudentTemp; Teacher = input.TeacherTemp }
    let lossImg = Losses.lossGlob imageTemps state.Centre studentImage teacherImage
    let lossObj, statsC =
        match clusters, teacherObjects with
        | Some(c, rows), Some teacherObj ->
            let objects = Objects.objectVectorsOf rows c studentOut.Tokens
            let studentObj = Heads.objectsAs cfg.Precision state.Student.Head (objects.reshape(-1L, objects.shape.[2]))
            let temps : Losses.Temperatures = { Student = cfg.StudentTempC; Teacher = input.TeacherTempC }
            match rows with
            | Objects.Listed _ -> Losses.lossDense temps state.CentreC studentObj teacherObj, Losses.rowSum teacherObj
            | Objects.Weighted validity ->
                Losses.lossDenseWeighted validity temps state.CentreC studentObj teacherObj, Losses.weightedRowSum validity teacherObj
        | _ -> times 0.0 lossImg, { Sum = torch.zeros_like(state.CentreC); Count = filledOn state.CentreC.device torch.float64 0.0 }
    let entropy =
        use _ = torch.no_grad()
        (Losses.meanEntropy (Losses.teacherTargets input.TeacherTemp state.Centre teacherImage)).to_type(torch.float64)
    let loss = plus lossImg (times cfg.Alpha lossObj)
    markPhase input.Mark "heads + losses"
    { Loss = loss
      LossImg = lossImg
      LossObj = lossObj
      ValidObjects =
        match clusters with
        | Some(_, rows) -> Objects.validCount rows
        | None -> filledOn entropy.device torch.float64 0.0
      MeanKStar =
        match clusters with
        | Some(c, _) -> c.KStar.to_type(torch.float64).mean()
        | None -> filledOn entropy.device torch.float64 nan
      TeacherEntropy = entropy
      KlTeacherStudent = minus (lossImg.detach().to_type(torch.float64)) entropy
      CentreStats = Losses.rowSum teacherImage
      CentreStatsC = statsC
      Clusters = clusters |> Option.map fst }

/// The centres after an optimiser step (spec §5, §7, pitfall 13): momentum towards the mean teacher
/// row of the whole step, `image`/`objects` being the step's summed statistics (over micro-batches
/// and, in a distributed run, over all processes). Returns new tensors.
let updateCentres (cfg: CrocConfig) (state: CrocState) (image: Losses.RowSum) (objects: Losses.RowSum) : Tensor * Tensor =
    Losses.updateCentre cfg.CentreMomentum state.Centre image, Losses.updateCentre cfg.CentreMomentum state.CentreC objects

/// The last-layer freeze of the recipe (spec §2, pitfall 11): in the first `freezeEpochs` epochs
/// every parameter whose name contains `last_layer` (so `last_layer_c` too) gets no update.
let frozen (freezeEpochs: int) (epoch: int) (name: string) : bool = epoch < freezeEpochs && name.Contains "last_layer"

/// AdamW over the student's trainable tensors with the recipe's rules: weight decay `wd` for the
/// decayed group (`Network.decays`), none for biases and 1-D tensors, the last-layer freeze, and
/// each gradient scaled by its clipping factor (`Optim.clipFactors`; absent: 1); the EMA teacher
/// follows in the same pass where it can (`Optim.Follower`). Returns the names of the parameters
/// whose teacher copy moved.
let optimiserStep (optimiser: Optim.AdamW) (trainable: (string * Tensor) seq) (lr: float) (wd: float) (freezeEpochs: int) (epoch: int) (clipFactors: Map<string, float>) (follower: Optim.Follower) : Set<string> =
    optimiser.StepFollowing(trainable, lr, (fun name t -> if Network.decays name t then wd else 0.0), frozen freezeEpochs epoch,
                            (fun name -> clipFactors.TryFind name |> Option.defaultValue 1.0), follower)
