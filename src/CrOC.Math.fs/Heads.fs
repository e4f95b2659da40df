/// The CrOC head (spec §4): one shared MLP (in → hidden → hidden → bottleneck, GELU, no BN),
/// L2-normalisation, then one of two weight-normalised bias-free last layers: `image` for the
/// CLS (or pooled) vector, `objects` for the object vectors.
module CrOC.Math.Heads

open TorchSharp
open CrOC.Math.Tensors
open CrOC.Math.Layers

type HeadConfig =
    { InDim: int
      Hidden: int
      Bottleneck: int
      /// L, the image head's output size (`out_dim`, 65536).
      OutDim: int
      /// L_c, the object head's output size (`out_dim_c`, 8192).
      OutDimC: int
      /// `norm_last_layer`: g stays fixed at 1 (no gradient).
      NormLastLayer: bool }

type HeadParams =
    { /// Linear layers 0, 2, 4 of the official `mlp` Sequential.
      Mlp: Linear[]
      LastLayer: WeightNormed
      LastLayerC: WeightNormed }

let init (cfg: HeadConfig) (generator: torch.Generator) : HeadParams =
    let fixG (w: WeightNormed) = if cfg.NormLastLayer then { w with G = w.G.requires_grad_(false) } else w
    { Mlp =
        [| Init.linear generator (int64 cfg.InDim) (int64 cfg.Hidden)
           Init.linear generator (int64 cfg.Hidden) (int64 cfg.Hidden)
           Init.linear generator (int64 cfg.Hidden) (int64 cfg.Bottleneck) |]
      LastLayer = Init.weightNormed generator (int64 cfg.Bottleneck) (int64 cfg.OutDim) |> fixG
      LastLayerC = Init.weightNormed generator (int64 cfg.Bottleneck) (int64 cfg.OutDimC) |> fixG }

/// The shared MLP and L2-normalisation: (R, in) → (R, bottleneck), unit rows (float32).
let bottleneckAs (precision: Precision) (p: HeadParams) (x: Tensor) : Tensor =
    let lin = linearAs precision
    x |> lin p.Mlp.[0] |> gelu |> lin p.Mlp.[1] |> gelu |> lin p.Mlp.[2] |> toFloat32 |> l2normalize

/// The image path (`forward`): (R, in) → (R, L), float32 logits.
let imageAs (precision: Precision) (p: HeadParams) (x: Tensor) : Tensor = bottleneckAs precision p x |> weightNormedAs precision p.LastLayer

/// The object path (`forward_c`): (R, in) → (R, L_c), float32 logits.
let objectsAs (precision: Precision) (p: HeadParams) (x: Tensor) : Tensor = bottleneckAs precision p x |> weightNormedAs precision p.LastLayerC

let image (p: HeadParams) (x: Tensor) : Tensor = imageAs Fp32 p x
let objects (p: HeadParams) (x: Tensor) : Tensor = objectsAs Fp32 p x

/// The head's parameters with the official names (without the `head.` prefix).
let named (p: HeadParams) : (string * Tensor) list =
    [ for i, l in Array.indexed p.Mlp do
          yield sprintf "mlp.%d.weight" (2 * i), l.Weight
          yield! l.Bias |> Option.map (fun b -> sprintf "mlp.%d.bias" (2 * i), b) |> Option.toList
      yield "last_layer.weight_g", p.LastLayer.G
      yield "last_layer.weight_v", p.LastLayer.V
      yield "last_layer_c.weight_g", p.LastLayerC.G
      yield "last_layer_c.weight_v", p.LastLayerC.V ]

/// Rebuilds the head from named tensors (the names of `named`).
let ofNamed (get: string -> Tensor) : HeadParams =
    { Mlp = Array.init 3 (fun i -> { Weight = get (sprintf "mlp.%d.weight" (2 * i)); Bias = Some(get (sprintf "mlp.%d.bias" (2 * i))) })
      LastLayer = { G = get "last_layer.weight_g"; V = get "last_layer.weight_v" }
      LastLayerC = { G = get "last_layer_c.weight_g"; V = get "last_layer_c.weight_v" } }
