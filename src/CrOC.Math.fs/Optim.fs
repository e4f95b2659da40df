/// The optimiser side of a step (spec §8, §10): per-tensor gradient clipping and AdamW with two
/// weight-decay groups and per-iteration lr/wd. Parameters and moments are mutated in place here,
/// under no_grad, and nowhere else.
module CrOC.Math.Optim

open System.Collections.Generic
open TorchSharp
open CrOC.Math.Tensors

/// DINO's `clip_gradients`: each gradient's own L2 norm is brought down to `maxNorm`
/// (g ← g · maxNorm / (‖g‖ + 1e-6) when that factor is < 1). Returns the norms before clipping.
let clipPerTensor (maxNorm: float) (parameters: Tensor seq) : float list =
    use _ = torch.no_grad()
    use _ = torch.NewDisposeScope() // the .grad wrappers
    [ for p in parameters do
        match p.grad with
        | null -> ()
        | g ->
            let norm = toFloat (g.norm())
            let factor = maxNorm / (norm + 1e-6)
            if factor < 1.0 then withScalar factor (fun f -> g.mul_(f)) |> ignore
            yield norm ]

/// Drops the gradients before a new backward (PyTorch's `zero_grad(set_to_none=True)`): the next
/// backward stores its gradient instead of adding it to zeros, one pass less over every gradient.
let clearGradients (parameters: Tensor seq) : unit =
    for p in parameters do
        p.grad <- null

/// First and second moments of one parameter, and how many updates it has had.
type Moments = { M: Tensor; V: Tensor; mutable Steps: int }

/// AdamW as PyTorch's (decoupled weight decay, bias-corrected moments), betas (0.9, 0.999), eps 1e-8.
type AdamW(beta1: float, beta2: float, eps: float) =
    let moments = Dictionary<string, Moments>()

    new() = AdamW(0.9, 0.999, 1e-8)

    /// The moments by parameter name (for checkpoints).
    member _.Moments : IReadOnlyDictionary<string, Moments> = moments

    /// Restores moments saved from `Moments`.
    member _.Restore(name: string, m: Tensor, v: Tensor, steps: int) = moments.[name] <- { M = m; V = v; Steps = steps }

    /// One update of every named parameter that has a gradient and is not `skip`ped (a skipped
    /// parameter, like one whose gradient PyTorch set to None, gets no moment update and no weight
    /// decay). `weightDecay name p` is the decay of that parameter for this step.
    member _.Step(parameters: (string * Tensor) seq, lr: float, weightDecay: string -> Tensor -> float, skip: string -> bool) =
        use _ = torch.no_grad()
        use _ = torch.NewDisposeScope() // temporaries and .grad wrappers; the moments are detached from it
        let firstMomentWeight = lerpWeight (1.0 - beta1)
        for name, p in parameters do
            match p.grad with
            | null -> ()
            | _ when skip name -> ()
            | g ->
                let state =
                    match moments.TryGetValue name with
                    | true, s -> s
                    | _ ->
                        let s = { M = torch.zeros_like(p).DetachFromDisposeScope(); V = torch.zeros_like(p).DetachFromDisposeScope(); Steps = 0 }
                        moments.[name] <- s
                        s
                state.Steps <- state.Steps + 1
                let wd = weightDecay name p
                if wd <> 0.0 then withScalar (1.0 - lr * wd) (fun decay -> p.mul_(decay)) |> ignore
                state.M.lerp_(g, firstMomentWeight g) |> ignore // m ← β₁m + (1 − β₁)g in one pass
                withScalar beta2 (fun b -> withScalar (1.0 - beta2) (fun rest -> state.V.mul_(b).addcmul_(g, g, value = rest))) |> ignore
                let correction1 = 1.0 - beta1 ** float state.Steps
                let correction2 = 1.0 - beta2 ** float state.Steps
                let denominator = addScalarInPlace (over (state.V.sqrt()) (sqrt correction2)) eps
                withScalar (-lr / correction1) (fun step -> p.addcdiv_(state.M, denominator, value = step)) |> ignore

/// SGD with momentum and (coupled) weight decay, as PyTorch's: d = g + wd·p; buf = μ·buf + d
/// (buf = d at the first step); p ← p − lr·buf. Used by the linear segmentation probe.
type Sgd(momentum: float, weightDecay: float) =
    let buffers = Dictionary<Tensor, Tensor>(HashIdentity.Reference)

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
