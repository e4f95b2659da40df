/// The optimiser side of a step (spec §8, §10): per-tensor gradient clipping and AdamW with two
/// weight-decay groups and per-iteration lr/wd. Parameters and moments are mutated in place here,
/// under no_grad, and nowhere else.
module CrOC.Math.Optim

open System.Collections.Generic
open TorchSharp
open CrOC.Math.Tensors

/// Whether `t` is float32, contiguous CPU memory that the native kernels (`AdamWKernel`,
/// `SquaredNorms`) may read and write.
let private kernelReady (t: Tensor) = t.dtype = torch.float32 && t.device_type = DeviceType.CPU && t.is_contiguous()

/// DINO's `clip_gradients` as factors: a gradient whose own L2 norm exceeds `maxNorm` is to be
/// scaled by maxNorm / (‖g‖ + 1e-6) (when that is < 1), the others by 1; `maxNorm` 0 turns
/// clipping off (DINO's `if args.clip_grad`). Returns name → factor for the parameters with a
/// gradient, which stay untouched: AdamW applies the factor as it reads them (one pass less over
/// every clipped gradient; the same float32 product as scaling them first). The norms of float32
/// CPU gradients come from one `SquaredNorms` pass, the others' from `norm()`, read back at once.
let clipFactors (maxNorm: float) (parameters: (string * Tensor) seq) : Map<string, float> =
    use _ = torch.no_grad()
    use _ = torch.NewDisposeScope() // the .grad wrappers and norms
    let gradients = [ for name, p in parameters do match p.grad with null -> () | g -> yield name, g ]
    if maxNorm <= 0.0 then Map.ofList [ for name, _ in gradients -> name, 1.0 ]
    else
        let factor norm = min (maxNorm / (norm + 1e-6)) 1.0
        let native, other = gradients |> List.partition (fun (_, g) -> kernelReady g)
        let nativeNorms =
            SquaredNorms.compute (torch.get_num_threads()) [ for _, g in native -> { Address = Arena.address g; Count = g.numel() } ]
            |> Array.map sqrt
        let otherNorms = // one read back for all of them (on a GPU: one synchronisation, not one per tensor)
            match other with
            | [] -> [||]
            | _ -> torch.stack([| for _, g in other -> g.norm().to_type(torch.float64) |]).cpu().data<float>().ToArray()
        Map.ofList (List.map2 (fun (name, _) norm -> name, factor norm) (native @ other) (List.ofArray (Array.append nativeNorms otherNorms)))

/// Drops the gradients before a new backward (PyTorch's `zero_grad(set_to_none=True)`): the next
/// backward stores its gradient instead of adding it to zeros, one pass less over every gradient.
let clearGradients (parameters: Tensor seq) : unit =
    for p in parameters do
        p.grad <- null

/// An EMA teacher moved inside AdamW's pass (issue 16): right after a parameter's update its
/// teacher copy becomes t + (1 − Momentum)·(p − t), the value `Ema.ema` would give it next, for
/// one read and write of t and no second read of p. `Teacher name` is that copy (None: no teacher).
type Follower = { Momentum: float; Teacher: string -> Tensor option }

/// First and second moments of one parameter, and how many updates it has had.
type Moments = { M: Tensor; V: Tensor; mutable Steps: int }

/// AdamW as PyTorch's (decoupled weight decay, bias-corrected moments), betas (0.9, 0.999), eps 1e-8.
/// The moments of all parameters live in two arenas (one buffer each, laid out as the parameters
/// of the first `Step`); float32 CPU parameters are updated by `AdamWKernel` in one pass, others
/// (float64, CUDA) by `AdamWTensors` with the same arithmetic, a span of the arenas at a time.
type AdamW(beta1: float, beta2: float, eps: float) =
    /// Every parameter's moments once the arenas exist; before, the restored ones only.
    let moments = Dictionary<string, Moments>()
    let mutable arenasMade = false

    /// Allocates the arenas for `parameters` (zeros), keeping the values of restored moments (whose
    /// own tensors are then disposed).
    let makeArenas (parameters: (string * Tensor) list) =
        use _ = torch.no_grad()
        for (name, m), (_, v) in List.zip (Arena.zerosLike parameters) (Arena.zerosLike parameters) do
            let steps =
                match moments.TryGetValue name with
                | true, restored ->
                    m.copy_(restored.M) |> ignore
                    v.copy_(restored.V) |> ignore
                    restored.M.Dispose()
                    restored.V.Dispose()
                    restored.Steps
                | _ -> 0
            moments.[name] <- { M = m; V = v; Steps = steps }
        arenasMade <- true

    /// The update of p as tensor operations (`AdamWTensors`), for memory the kernel cannot touch.
    let tensorPart (p: Tensor) (g: Tensor) (scale: float) (state: Moments) (lr: float) (wd: float) : AdamWTensors.Part =
        { P = p; G = g; M = state.M; V = state.V; Clip = scale; Decay = 1.0 - lr * wd
          SqrtCorrection2 = sqrt (1.0 - beta2 ** float state.Steps); StepSize = -lr / (1.0 - beta1 ** float state.Steps) }

    let kernelSlice (p: Tensor) (g: Tensor) (scale: float) (state: Moments) (lr: float) (wd: float) : AdamWKernel.Slice =
        { P = Arena.address p; G = Arena.address g; M = Arena.address state.M; V = Arena.address state.V; Count = p.numel()
          Coefficients =
            { GradientScale = float32 scale; Decay = float32 (1.0 - lr * wd); FirstWeight = float32 (1.0 - beta1); Beta2 = float32 beta2
              SecondWeight = float32 (1.0 - beta2); SqrtCorrection2 = float32 (sqrt (1.0 - beta2 ** float state.Steps))
              Eps = float32 eps; StepSize = float32 (-lr / (1.0 - beta1 ** float state.Steps)); TeacherWeight = 0.0f }
          Teacher = 0n }

    let fusable (p: Tensor) (g: Tensor) = kernelReady p && kernelReady g

    /// The slice moving `follower`'s teacher copy of p too, when the kernel can write that copy.
    let following (follower: Follower option) (name: string) (p: Tensor) (slice: AdamWKernel.Slice) =
        match follower |> Option.bind (fun f -> f.Teacher name |> Option.map (fun t -> t, f.Momentum)) with
        | Some(t, momentum) when kernelReady t && t.shape = p.shape ->
            { slice with Teacher = Arena.address t; Coefficients = { slice.Coefficients with TeacherWeight = float32 (1.0 - momentum) } }
        | _ -> slice

    /// Updates the parameters (see `Step`); returns the names whose teacher copy was moved.
    let update (parameters: (string * Tensor) seq) lr (weightDecay: string -> Tensor -> float) (skip: string -> bool) (scaleOf: string -> float) (follower: Follower option) =
        let parameters = List.ofSeq parameters
        if not arenasMade then makeArenas parameters
        use _ = torch.no_grad()
        use _ = torch.NewDisposeScope() // the .grad wrappers
        let updates =
            [ for name, p in parameters do
                match p.grad with
                | null -> ()
                | _ when skip name -> ()
                | g ->
                    let state = moments.[name]
                    state.Steps <- state.Steps + 1
                    let wd = weightDecay name p
                    if fusable p g then yield Choice1Of2(name, kernelSlice p g (scaleOf name) state lr wd |> following follower name p)
                    else yield Choice2Of2(tensorPart p g (scaleOf name) state lr wd) ]
        let fused = updates |> List.choose (function Choice1Of2 slice -> Some slice | _ -> None)
        AdamWKernel.update (torch.get_num_threads()) (List.map snd fused)
        AdamWTensors.update { FirstWeight = 1.0 - beta1; Beta2 = beta2; SecondWeight = 1.0 - beta2; Eps = eps }
            (updates |> List.choose (function Choice2Of2 part -> Some part | _ -> None))
        set [ for name, slice in fused do if slice.Teacher <> 0n then name ]

    new() = new AdamW(0.9, 0.999, 1e-8)

    /// Frees the moments (the arenas' views, or restored ones not yet copied into arenas).
    interface System.IDisposable with
        member _.Dispose() =
            for state in moments.Values do
                state.M.Dispose()
                state.V.Dispose()
            moments.Clear()

    /// The moments by parameter name, of the parameters updated at least once (for checkpoints).
    member _.Moments : IReadOnlyDictionary<string, Moments> =
        moments |> Seq.filter (fun kv -> kv.Value.Steps > 0) |> Seq.map (fun kv -> kv.Key, kv.Value) |> dict |> Dictionary :> _

    /// Restores moments saved from `Moments`, taking `m` and `v` over: copied into the arenas when
    /// they exist (and disposed), else kept until the arenas are made.
    member _.Restore(name: string, m: Tensor, v: Tensor, steps: int) =
        match moments.TryGetValue name with
        | true, state when arenasMade ->
            use _ = torch.no_grad()
            state.M.copy_(m) |> ignore
            state.V.copy_(v) |> ignore
            m.Dispose()
            v.Dispose()
            state.Steps <- steps
        | _ -> moments.[name] <- { M = m; V = v; Steps = steps }

    /// One update of every named parameter that has a gradient and is not `skip`ped (a skipped
    /// parameter, like one whose gradient PyTorch set to None, gets no moment update and no weight
    /// decay). `weightDecay name p` is the decay of that parameter for this step; `gradientScale`
    /// (default 1) multiplies its gradient as it is read (the clipping factor). The parameters are
    /// the same, in the same order, at every call.
    member _.Step(parameters: (string * Tensor) seq, lr: float, weightDecay: string -> Tensor -> float, skip: string -> bool, ?gradientScale: string -> float) : unit =
        update parameters lr weightDecay skip (defaultArg gradientScale (fun _ -> 1.0)) None |> ignore

    /// `Step`, moving `follower`'s EMA teacher in the same pass wherever the fused kernel updates a
    /// parameter (float32 CPU memory, teacher copy included). Returns the names of the parameters
    /// whose teacher copy moved; the caller moves the others' (`Ema.ema`): skipped ones, ones
    /// without a gradient, non-float32 or GPU ones.
    member _.StepFollowing(parameters: (string * Tensor) seq, lr: float, weightDecay: string -> Tensor -> float, skip: string -> bool, gradientScale: string -> float, follower: Follower) : Set<string> =
        update parameters lr weightDecay skip gradientScale (Some follower)

/// SGD with momentum and (coupled) weight decay, as PyTorch's: d = g + wd·p; buf = μ·buf + d
/// (buf = d at the first step); p ← p − lr·buf. Used by the linear segmentation probe. Disposing it
/// frees the momentum buffers (no dispose scope holds them).
type Sgd(momentum: float, weightDecay: float) =
    let buffers = Dictionary<Tensor, Tensor>(HashIdentity.Reference)

    interface System.IDisposable with
        member _.Dispose() =
            for b in buffers.Values do b.Dispose()
            buffers.Clear()

    member _.Step(parameters: Tensor seq, lr: float) =
        use _ = torch.no_grad()
        use _ = torch.NewDisposeScope()
        for p in parameters do
            match p.grad with
            | null -> ()
            | g ->
                let d = if weightDecay <> 0.0 then plus g (times weightDecay p) else g.clone()
                let buffer =
                    match buffers.TryGetValue p with
                    | true, b -> withScalar momentum (fun m -> addInPlace (b.mul_(m)) d)
                    | _ ->
                        let b = d.clone().DetachFromDisposeScope()
                        buffers.[p] <- b
                        b
                subInPlace p (times lr buffer) |> ignore
