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

/// x·Wᵀ + b over the last dimension.
let linear (p: Linear) (x: Tensor) : Tensor =
    match p.Bias with
    | Some b -> torch.nn.functional.linear(x, p.Weight, b)
    | None -> torch.nn.functional.linear(x, p.Weight)

let layerNorm (p: LayerNorm) (x: Tensor) : Tensor =
    torch.nn.functional.layer_norm(x, [| p.Weight.shape.[0] |], p.Weight, p.Bias, p.Eps)

/// The exact (erf) GELU.
let gelu (x: Tensor) : Tensor = torch.nn.functional.gelu(x)

/// W = g·v/‖v‖ (row norms); differentiable in g and v.
let weightNormedWeight (p: WeightNormed) : Tensor = p.G * p.V / p.V.norm(1, keepdim = true)

let weightNormed (p: WeightNormed) (x: Tensor) : Tensor = torch.nn.functional.linear(x, weightNormedWeight p)

/// Initialisers (DINO/timm): Linear weights ~ truncated normal (std 0.02), biases 0; LayerNorm
/// weight 1, bias 0; PyTorch's default Linear/Conv init U(±1/√fan_in) where DINO keeps it.
module Init =
    let private leaf (t: Tensor) = t.requires_grad_(true)

    /// Φ, the standard normal CDF.
    let private normalCdf (x: float) = 0.5 * (1.0 + toFloat (torch.erf(torch.tensor(x / sqrt 2.0, dtype = torch.float64))))

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
