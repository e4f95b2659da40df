/// The parameterised building blocks, as records of tensors (parameters as data) and pure
/// functions applying them. Weights follow PyTorch's layouts: a Linear weight is (out, in).
module CrOC.Math.Layers

open TorchSharp
open CrOC.Math.Tensors

type Linear = { Weight: Tensor; Bias: Tensor option }

type LayerNorm = { Weight: Tensor; Bias: Tensor; Eps: float }

/// A weight-normalised, bias-free Linear: row i of the weight is g_i · v_i / ‖v_i‖ (PyTorch's
/// `weight_norm(dim=0)`: g is (out, 1), v is (out, in)).
type WeightNormed = { G: Tensor; V: Tensor }

/// The dtype the matmuls, attention and MLPs run in. Bf16 is mixed precision: the weights stay
/// float32 (master copies, cast per use, so gradients reach them in float32), while LayerNorm,
/// the residual stream, losses and everything downstream stay float32; the attention's softmax
/// and GELU run in bfloat16, as under PyTorch's CPU autocast.
type Precision =
    | Fp32
    | Bf16

/// x in the compute dtype of `precision`. Bf16 first gives the calling thread, which runs the
/// bfloat16 matmuls (AMX tiles where the CPU has them), a large enough signal stack (`SignalStack`).
let compute (precision: Precision) (x: Tensor) : Tensor =
    match precision with
    | Fp32 -> x
    | Bf16 ->
        SignalStack.ensure ()
        x.to_type(torch.bfloat16)

/// Back to float32 (a no-op for float32 tensors).
let toFloat32 (x: Tensor) : Tensor = if x.dtype = torch.float32 then x else x.to_type(torch.float32)

/// x·Wᵀ + b over the last dimension, in `precision` (the result stays in that dtype).
let linearAs (precision: Precision) (p: Linear) (x: Tensor) : Tensor =
    let c = compute precision
    match p.Bias with
    | Some b -> torch.nn.functional.linear(c x, c p.Weight, c b)
    | None -> torch.nn.functional.linear(c x, c p.Weight)

/// LayerNorm, always computed in float32.
let layerNorm (p: LayerNorm) (x: Tensor) : Tensor =
    torch.nn.functional.layer_norm(toFloat32 x, [| p.Weight.shape.[0] |], p.Weight, p.Bias, p.Eps)

/// The exact (erf) GELU.
let gelu (x: Tensor) : Tensor = torch.nn.functional.gelu(x)

/// The weight-normalised layer in `precision`, logits in float32: x·Wᵀ with W_j = g_j·v_j/‖v_j‖ is
/// computed as (x·vᵀ)·(g/‖v‖)ᵀ, so the (out × in) W is never formed (for L = 65536 that halves the
/// head's forward + backward time); equal up to rounding.
let weightNormedAs (precision: Precision) (p: WeightNormed) (x: Tensor) : Tensor =
    let scale = (p.G / p.V.norm(1, keepdim = true)).transpose(0, 1)                     // (1, out)
    (torch.nn.functional.linear(compute precision x, compute precision p.V) |> toFloat32) * scale

/// Initialisers (DINO/timm): Linear weights ~ truncated normal (std 0.02), biases 0; LayerNorm
/// weight 1, bias 0; PyTorch's default Linear/Conv init U(±1/√fan_in) where DINO keeps it.
module Init =
    let private leaf (t: Tensor) = t.requires_grad_(true)

    /// Φ, the standard normal CDF.
    let private normalCdf (x: float) =
        use t = torch.tensor(x / sqrt 2.0, dtype = torch.float64)
        use erf = torch.erf t
        0.5 * (1.0 + toFloat erf)

    /// N(0, std²) truncated to [−2, 2] in absolute units, as timm's `trunc_normal_(std=.02)`, by
    /// the inverse CDF: u ~ U(2Φ(a/σ) − 1, 2Φ(b/σ) − 1), x = σ√2·erfinv(u), clamped to [a, b].
    /// (TorchSharp 0.107's `nn.init.trunc_normal_` leaves the tensor at zero.)
    let truncNormal (generator: torch.Generator) (std: float) (shape: int64[]) : Tensor =
        use _ = torch.no_grad()
        let low, high = -2.0, 2.0
        let t = torch.empty(shape).uniform_(2.0 * normalCdf (low / std) - 1.0, 2.0 * normalCdf (high / std) - 1.0, generator)
        t.erfinv_().mul_(scalar (std * sqrt 2.0)).clamp_(scalar low, scalar high) |> leaf

    /// U(−1/√fanIn, 1/√fanIn): PyTorch's default for Linear and Conv weights and biases.
    let defaultUniform (generator: torch.Generator) (fanIn: int64) (shape: int64[]) : Tensor =
        use _ = torch.no_grad()
        let bound = 1.0 / sqrt (float fanIn)
        torch.empty(shape).uniform_(-bound, bound, generator) |> leaf

    let linear (generator: torch.Generator) (inputs: int64) (outputs: int64) : Linear =
        { Weight = truncNormal generator 0.02 [| outputs; inputs |]; Bias = Some(torch.zeros(outputs).requires_grad_(true)) }

    let layerNorm (width: int64) (eps: float) : LayerNorm =
        { Weight = torch.ones(width).requires_grad_(true); Bias = torch.zeros(width).requires_grad_(true); Eps = eps }

    /// v with PyTorch's default Linear init, g = 1 (DINO fills weight_g with 1).
    let weightNormed (generator: torch.Generator) (inputs: int64) (outputs: int64) : WeightNormed =
        { G = torch.ones(outputs, 1L).requires_grad_(true); V = defaultUniform generator inputs [| outputs; inputs |] }
