/// AdamW by tensor operations, for the memory `AdamWKernel` cannot touch (GPU, float64), with the
/// same arithmetic per element as PyTorch's single-tensor AdamW:
///   g ← g·clip;  p ← p·decay;  m ← lerp(m, g, w₁);  v ← v·β₂ + w₂·g·g;  p ← p + s·m / (√v / √c₂ + eps).
/// Parameters that tile one span of their arena, and whose moments tile spans of theirs (the
/// layout `Optim.AdamW` gives them), are updated together: one kernel per operation over the span
/// instead of one per tensor, the per-tensor clip and decay spread over the span's elements
/// (issue 16), and no host synchronisation on a GPU beyond two small uploads per span (the
/// factors and their tensors' lengths).
module CrOC.Math.AdamWTensors

open TorchSharp
open CrOC.Math.Tensors

/// One parameter's update: its tensors (same shape; g its gradient) and its scalars.
type Part =
    { P: Tensor; G: Tensor; M: Tensor; V: Tensor
      /// The gradient's clipping factor (1: none).
      Clip: float
      /// 1 − lr·wd.
      Decay: float
      /// √(1 − β₂ᵗ) for this parameter's update count t.
      SqrtCorrection2: float
      /// −lr / (1 − β₁ᵗ).
      StepSize: float }

/// The scalars every part shares.
type Shared = { FirstWeight: float; Beta2: float; SecondWeight: float; Eps: float }

/// The update of tensors of one shape: `clip` and `decay` either scalars of the whole tensor or
/// tensors of its elements' factors. `firstWeight` is w₁ as a 0-d tensor (lerp_ takes a tensor).
let private apply (s: Shared) (firstWeight: Tensor) (p: Tensor) (g: Tensor) (m: Tensor) (v: Tensor)
                  (clip: Tensor -> Tensor) (decay: Tensor -> unit) (sqrtCorrection2: float) (stepSize: float) =
    use _ = torch.NewDisposeScope()
    let g = clip g
    decay p
    m.lerp_(g, firstWeight) |> ignore
    withScalar s.Beta2 (fun b -> withScalar s.SecondWeight (fun w -> v.mul_(b).addcmul_(g, g, value = w))) |> ignore
    let denominator = addScalarInPlace (over (v.sqrt()) sqrtCorrection2) s.Eps
    withScalar stepSize (fun step -> p.addcdiv_(m, denominator, value = step)) |> ignore

/// Whether `next` continues `run` in memory (p, m and v each right after the run's last) and in
/// the scalars a span shares.
let private continues (run: Part list) (next: Part) =
    match run with
    | [] -> false
    | last :: _ ->
        Arena.adjacent last.P next.P && Arena.adjacent last.M next.M && Arena.adjacent last.V next.V
        && last.SqrtCorrection2 = next.SqrtCorrection2 && last.StepSize = next.StepSize

/// Maximal runs of consecutive parts that `continues` joins, in order: the spans `update` makes.
let spans (parts: Part list) : Part list list =
    parts
    |> List.fold (fun acc part ->
        match acc with
        | run :: rest when continues run part -> (part :: run) :: rest
        | _ -> [ part ] :: acc) []
    |> List.map List.rev
    |> List.rev

/// One span: the flat views of its p, m and v, the gradients concatenated, and each part's clip
/// and decay repeated over its elements (one upload of 2 × parts values, one repeat).
let private updateSpan (s: Shared) (firstWeight: Tensor) (run: Part list) =
    use _ = torch.NewDisposeScope()
    let flat (pick: Part -> Tensor) = (Arena.spanning (List.map pick run)).Value
    let p, m, v = flat _.P, flat _.M, flat _.V
    let g = torch.cat([| for part in run -> part.G.reshape(-1L) |])
    let values : float[] = Array.append [| for part in run -> part.Clip |] [| for part in run -> part.Decay |]
    let factors = torch.tensor(values, dtype = p.dtype).view(2L, int64 run.Length)
    let counts = torch.tensor([| for part in run -> part.P.numel() |])
    let perElement : Tensor = factors.``to``(p.device).repeat_interleave(counts.``to``(p.device), dim = 1L, output_size = p.numel())
    let first = run.Head
    apply s firstWeight p g m v (fun g -> g * perElement.[0L]) (fun p -> p.mul_(perElement.[1L]) |> ignore) first.SqrtCorrection2 first.StepSize

/// Updates every part in place (under no_grad), spans of several parts together.
let update (s: Shared) (parts: Part list) : unit =
    use _ = torch.no_grad()
    use _ = torch.NewDisposeScope()
    let firstWeight = lerpWeight s.FirstWeight // one per dtype and device, freed on return
    for run in spans parts do
        let w1 = firstWeight run.Head.P
        match run with
        | [ part ] ->
            let clip g = if part.Clip = 1.0 then g else times part.Clip g
            let decay (p: Tensor) = if part.Decay <> 1.0 then withScalar part.Decay (fun d -> p.mul_(d)) |> ignore
            apply s w1 part.P part.G part.M part.V clip decay part.SqrtCorrection2 part.StepSize
        | _ -> updateSpan s w1 run
