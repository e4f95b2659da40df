/// One network of CrOC (the student or the teacher): a ViT backbone and the CrOC head, with the
/// official state-dict names `backbone.…` and `head.…`.
module CrOC.Math.Network

open TorchSharp
open CrOC.Math.Tensors

type NetworkConfig = { Vit: Vit.VitConfig; Head: Heads.HeadConfig }

type NetworkParams = { Backbone: Vit.VitParams; Head: Heads.HeadParams }

let init (cfg: NetworkConfig) (generator: torch.Generator) : NetworkParams =
    { Backbone = Vit.init cfg.Vit generator; Head = Heads.init cfg.Head generator }

/// Every tensor with its official name, backbone first, in a fixed order.
let named (p: NetworkParams) : (string * Tensor) list =
    [ for name, t in Vit.named p.Backbone -> "backbone." + name, t
      for name, t in Heads.named p.Head -> "head." + name, t ]

/// Rebuilds a network from named tensors (`get` receives the full names of `named`).
let ofNamed (cfg: NetworkConfig) (get: string -> Tensor) : NetworkParams =
    { Backbone = Vit.ofNamed cfg.Vit (fun name -> get ("backbone." + name))
      Head = Heads.ofNamed (fun name -> get ("head." + name)) }

/// AdamW's two groups (DINO's `get_params_groups`): biases and every 1-D tensor get no weight
/// decay; everything else (weights, cls_token, pos_embed, weight_v, weight_g) does.
let decays (name: string) (t: Tensor) : bool = not (name.EndsWith(".bias") || t.dim() = 1L)

/// The tensors an optimiser updates (those that require a gradient), with their names.
let trainable (p: NetworkParams) : (string * Tensor) list = named p |> List.filter (fun (_, t) -> t.requires_grad)
