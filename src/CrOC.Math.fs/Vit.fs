/// The Vision Transformer of DINO/CrOC (spec §3) as parameters-as-data plus pure functions:
/// `forward cfg p options x`. Shapes: images (B, 3, H, W); tokens (B, 1+N, D), token 0 is CLS,
/// tokens 1..N the patches row-major; per-head features (B, h, 1+N, D/h).
module CrOC.Math.Vit

open TorchSharp

open CrOC.Math.Tensors
open CrOC.Math.Layers

type VitConfig =
    { /// The training image side; position embeddings exist for (ImageSize/Patch)² patches.
      ImageSize: int
      Patch: int
      /// D, the embedding width.
      Dim: int
      Depth: int
      Heads: int
      /// The MLP's hidden width is MlpRatio·D.
      MlpRatio: int
      /// LayerNorm eps (1e-6 in DINO).
      Eps: float }

    member c.Grid = c.ImageSize / c.Patch
    member c.Tokens = c.Grid * c.Grid
    member c.HeadDim = c.Dim / c.Heads

    static member private Of(dim, heads, patch, imageSize) =
        { ImageSize = imageSize; Patch = patch; Dim = dim; Depth = 12; Heads = heads; MlpRatio = 4; Eps = 1e-6 }
    /// ViT-Tiny: D = 192, 3 heads, depth 12.
    static member Tiny(patch, imageSize) = VitConfig.Of(192, 3, patch, imageSize)
    /// ViT-Small (CrOC's backbone): D = 384, 6 heads, depth 12.
    static member Small(patch, imageSize) = VitConfig.Of(384, 6, patch, imageSize)
    /// ViT-Base: D = 768, 12 heads, depth 12.
    static member Base(patch, imageSize) = VitConfig.Of(768, 12, patch, imageSize)

type Block =
    { Norm1: LayerNorm
      /// (3D, D): rows are q, k, v, each head-major.
      Qkv: Linear
      Proj: Linear
      Norm2: LayerNorm
      Fc1: Linear
      Fc2: Linear }

type VitParams =
    { /// The patch-embedding convolution: weight (D, 3, p, p), bias (D).
      PatchEmbed: Linear
      /// (1, 1, D)
      ClsToken: Tensor
      /// (1, 1 + N, D) at the training size.
      PosEmbed: Tensor
      Blocks: Block[]
      Norm: LayerNorm }

/// The last block's per-head projections, for clustering and pictures (`clsAttention` computes
/// the CLS attention from them).
type LastBlock =
    { /// (B, h, 1+N, D/h) each, from LN1 of the last block's input, before any scaling.
      Queries: Tensor
      Keys: Tensor
      Values: Tensor }

type VitOutput =
    { /// The CLS output after the final LayerNorm, (B, D).
      Cls: Tensor
      /// All tokens after the final LayerNorm, (B, 1+N, D).
      Tokens: Tensor
      /// Present when asked for with `ForwardOptions.LastBlock`.
      Last: LastBlock option }

/// Where stochastic depth's masks come from.
type DropPathSource =
    /// Each residual's (B, 1, 1) mask drawn with this CPU generator when its block runs, then sent
    /// to the images' device.
    | Drawn of torch.Generator
    /// Every residual's mask drawn beforehand (`drawDropPathMasks`), (2·depth, B, 1, 1) on the
    /// images' device: on a GPU one upload before the step instead of one per residual mid-forward.
    | Predrawn of Tensor

type ForwardOptions =
    { /// The largest stochastic-depth rate (the last block's); rates rise linearly from 0 over the
      /// blocks (a single block gets 0, as in DINO). 0 disables it (the teacher, evaluation).
      DropPath: float
      /// The masks of stochastic depth (required when DropPath > 0).
      DropPathSource: DropPathSource option
      /// Keep the last block's q/k/v.
      LastBlock: bool
      /// Fp32, or Bf16 mixed precision (matmuls, attention and MLPs in bfloat16).
      Precision: Precision }

    static member Inference = { DropPath = 0.0; DropPathSource = None; LastBlock = false; Precision = Fp32 }

    /// Inference in `precision`.
    static member InferenceAs(precision: Precision) = { ForwardOptions.Inference with Precision = precision }

/// Parameters with DINO's initialisation (spec §3): cls/pos ~ trunc-normal(0.02), Linear weights
/// trunc-normal(0.02) with zero biases, LayerNorm (1, 0), the patch convolution PyTorch's default.
let init (cfg: VitConfig) (generator: torch.Generator) : VitParams =
    let d = int64 cfg.Dim
    let p = int64 cfg.Patch
    let hidden = d * int64 cfg.MlpRatio
    let fanIn = 3L * p * p
    { PatchEmbed =
        { Weight = Init.defaultUniform generator fanIn [| d; 3L; p; p |]
          Bias = Some(Init.defaultUniform generator fanIn [| d |]) }
      ClsToken = Init.truncNormal generator 0.02 [| 1L; 1L; d |]
      PosEmbed = Init.truncNormal generator 0.02 [| 1L; int64 cfg.Tokens + 1L; d |]
      Blocks =
        Array.init cfg.Depth (fun _ ->
            { Norm1 = Init.layerNorm d cfg.Eps
              Qkv = Init.linear generator d (3L * d)
              Proj = Init.linear generator d d
              Norm2 = Init.layerNorm d cfg.Eps
              Fc1 = Init.linear generator d hidden
              Fc2 = Init.linear generator hidden d })
      Norm = Init.layerNorm d cfg.Eps }

/// The number of values `init` makes for `cfg`, counted without making them (a weights file's
/// shapes are checked against it before a model is allocated). Checked: OverflowException beyond int64.
let parameterCount (cfg: VitConfig) : int64 =
    let (*), (+) = Checked.(*), Checked.(+)
    let d, p, hidden = int64 cfg.Dim, int64 cfg.Patch, int64 cfg.Dim * int64 cfg.MlpRatio
    let block = 2L * d + (d * 3L * d + 3L * d) + (d * d + d) + 2L * d + (d * hidden + hidden) + (hidden * d + d)
    d * 3L * p * p + d + d + (int64 cfg.Tokens + 1L) * d + int64 cfg.Depth * block + 2L * d

/// Position embeddings for an input of gridH × gridW patches: the stored ones at the native grid,
/// otherwise the patch part resized bicubically with DINO's scale factors (g + 0.1)/√N.
/// (1, 1+N, D) → (1, 1 + gridH·gridW, D).
let positionEmbedding (p: VitParams) (gridH: int) (gridW: int) : Tensor =
    let stored = int p.PosEmbed.shape.[1] - 1
    if gridH * gridW = stored && gridH = gridW then p.PosEmbed
    else
        let side = int (round (sqrt (float stored)))
        let d = p.PosEmbed.shape.[2]
        let cls = p.PosEmbed.narrow(1L, 0L, 1L)
        let grid = p.PosEmbed.narrow(1L, 1L, int64 stored).reshape(1L, int64 side, int64 side, d).permute(0L, 3L, 1L, 2L) // (1, D, s, s)
        let scale = [| (float gridH + 0.1) / float side; (float gridW + 0.1) / float side |]
        let resized = torch.nn.functional.interpolate(grid, scale_factor = scale, mode = torch.InterpolationMode.Bicubic, align_corners = false)
        if resized.shape.[2] <> int64 gridH || resized.shape.[3] <> int64 gridW then
            failwithf "position-embedding interpolation gave %A for a %dx%d grid" resized.shape gridH gridW
        torch.cat([| cls; resized.permute(0L, 2L, 3L, 1L).reshape(1L, -1L, d) |], 1L)

/// Stochastic depth's rate for block i of `depth`: DINO's linspace(0, r, depth) ([0] for one block).
let dropPathRate (dropPath: float) (depth: int) (i: int) : float =
    if depth = 1 then 0.0 else dropPath * float i / float (depth - 1)

/// One residual's stochastic-depth mask (B, 1, 1) float32 on the CPU: 0 with probability `rate`,
/// else 1/(1 − rate), drawn with `generator`.
let private drawMask (rate: float) (generator: torch.Generator) (batch: int64) : Tensor =
    over (torch.empty([| batch; 1L; 1L |], dtype = torch.float32).bernoulli_(1.0 - rate, generator)) (1.0 - rate)

/// Every residual's mask of a forward over `batch` images through `depth` blocks, drawn with
/// `generator` in the order a `Drawn` forward draws them (block by block, attention then MLP; none
/// for a rate of 0, whose rows are 1), sent to `device` at once → (2·depth, B, 1, 1).
let drawDropPathMasks (dropPath: float) (depth: int) (generator: torch.Generator) (batch: int64) (device: torch.Device) : Tensor =
    let masks =
        [| for i in 0 .. depth - 1 do
               let rate = dropPathRate dropPath depth i
               for _ in 1 .. 2 -> if rate > 0.0 then drawMask rate generator batch else torch.ones(batch, 1L, 1L) |]
    torch.stack(masks).``to``(device)

/// Residual `index` (2i: block i's attention, 2i + 1: its MLP) of stochastic depth at `rate` over
/// `batch` images: None for a rate of 0, else its (B, 1, 1) float32 mask on `device`.
let private dropPathMask (source: DropPathSource option) (rate: float) (index: int) (batch: int64) (device: torch.Device) : Tensor option =
    if rate <= 0.0 then None
    else
        match source with
        | Some(Drawn g) -> Some((drawMask rate g batch).``to``(device))
        | Some(Predrawn masks) -> Some(masks.[int64 index])
        | None -> invalidArg "options" "stochastic depth needs a DropPathSource"

/// x + drop_path(branch), float32 (x float32, branch in the compute dtype): a dropped sample's
/// branch is zeroed, a kept one scaled by 1/(1 − rate) (the mask).
let private residual (mask: Tensor option) (x: Tensor) (branch: Tensor) : Tensor =
    match mask with
    | None -> plus x branch
    | Some m -> plus x (branch * m) // float32 mask: bf16·float32 is float32 (addcmul in one pass: no faster, A/B)

/// (B, T, 3D) → q, k, v each (B, h, T, D/h), views. By `unbind`: its backward stacks the three
/// gradients in one pass, where three `select`s would each fill a zero (3, B, h, T, D/h) tensor
/// and sum them (bf16, ViT-S/16, 16 images: an attention's forward + backward 29–32 → 25–27 ms).
let splitHeads (heads: int) (qkv: Tensor) : Tensor * Tensor * Tensor =
    let b, t = qkv.shape.[0], qkv.shape.[1]
    let parts = qkv.reshape(b, t, 3L, int64 heads, -1L).permute(2L, 0L, 3L, 1L, 4L).unbind(0L) // (3, B, h, T, dh)
    parts.[0], parts.[1], parts.[2]

/// softmax(q·kᵀ/√d_h)·v over (B, h, T, d_h). Float32, and bf16 on a GPU: the fused kernel
/// (flash attention there). Bf16 on the CPU: as PyTorch's CPU autocast runs it, two bfloat16
/// matmuls and a bfloat16 softmax (libtorch accumulates it in float32); measured A/B on ViT-S/16,
/// B = 8: the fused CPU kernel 1.60 s per step, float32 softmax 1.42 s, this 1.34–1.38 s.
let attention (precision: Precision) (q: Tensor) (k: Tensor) (v: Tensor) : Tensor =
    match precision with
    | Bf16 when q.device_type = DeviceType.CPU ->
        // q is scaled instead of the (T×T) scores: one pass over B·h·T·d_h values instead of
        // B·h·T², and exact when 1/√d_h is a power of two (d_h = 64).
        // k made contiguous first: kᵀ is then a view oneDNN reads as it is, where a strided k made
        // libtorch transpose-copy it (q·kᵀ 4.3–4.8 → 3.3–3.9 ms with the copy; the same bits).
        let scores = batchMatmul (over q (sqrt (float q.shape.[3]))) (k.contiguous().transpose(-2L, -1L))
        batchMatmul (scores.softmax(-1L)) v
    | _ -> torch.nn.functional.scaled_dot_product_attention(q, k, v)

/// One pre-norm block; returns the new tokens (float32 residual stream) and the block's q, k, v
/// (in the compute dtype).
let private block (cfg: VitConfig) (options: ForwardOptions) (index: int) (rate: float) (p: Block) (x: Tensor) =
    let b, t = x.shape.[0], x.shape.[1]
    let lin = linearAs options.Precision
    let mask residualIndex = dropPathMask options.DropPathSource rate (2 * index + residualIndex) b x.device
    let q, k, v = layerNorm p.Norm1 x |> lin p.Qkv |> splitHeads cfg.Heads
    let attended = (attention options.Precision q k v).transpose(1, 2).reshape(b, t, -1L) // (B, T, D)
    // float32 x + a bf16 branch is float32: the cast happens inside the add
    let x = residual (mask 0) x (lin p.Proj attended)
    let x = residual (mask 1) x (layerNorm p.Norm2 x |> lin p.Fc1 |> gelu |> lin p.Fc2)
    x, (q, k, v)

/// Patch embedding + CLS + position embeddings: (B, 3, H, W) → (B, 1+N, D), float32.
let embed (cfg: VitConfig) (precision: Precision) (p: VitParams) (images: Tensor) : Tensor =
    expectRank "images" 4 images
    let stride = int64 cfg.Patch
    let c = compute precision
    let weight, bias = c p.PatchEmbed.Weight, p.PatchEmbed.Bias |> Option.map c
    let patches =
        match bias with
        | Some bb -> torch.nn.functional.conv2d(c images, weight, bb, strides = [| stride; stride |]) |> toFloat32
        | None -> torch.nn.functional.conv2d(c images, weight, strides = [| stride; stride |]) |> toFloat32
    let gridH, gridW = int patches.shape.[2], int patches.shape.[3]
    let tokens = patches.flatten(2).transpose(1, 2)                                   // (B, N, D)
    let cls = p.ClsToken.expand(images.shape.[0], -1L, -1L)
    plus (torch.cat([| cls; tokens |], 1L)) (positionEmbedding p gridH gridW)

/// The forward pass. Images (B, 3, H, W) with H, W multiples of the patch size.
let forward (cfg: VitConfig) (p: VitParams) (options: ForwardOptions) (images: Tensor) : VitOutput =
    if images.shape.[2] % int64 cfg.Patch <> 0L || images.shape.[3] % int64 cfg.Patch <> 0L then
        invalidArg "images" (sprintf "image size %dx%d is not a multiple of the patch size %d" images.shape.[2] images.shape.[3] cfg.Patch)
    let depth = p.Blocks.Length
    let throughBlock (x: Tensor, last) i =
        let keepQkv = i = depth - 1 && options.LastBlock
        let next, (q, k, v) =
            scoped (fun (n, (q, k, v)) -> if keepQkv then [ n; q; k; v ] else [ n ]) (fun () -> block cfg options i (dropPathRate options.DropPath depth i) p.Blocks.[i] x)
        x.Dispose() // this handle only: what autograd saved of x lives on in the graph (no graph: freed now)
        next, (if keepQkv then Some(q, k, v) else last)
    let x, last = Seq.fold throughBlock (embed cfg options.Precision p images, None) (seq { 0 .. depth - 1 })
    let tokens = layerNorm p.Norm x
    { Cls = tokens.select(1L, 0L)
      Tokens = tokens
      Last = last |> Option.map (fun (q, k, v) -> { Queries = q; Keys = k; Values = v }) }

/// The last block's CLS attention over the patches, softmax(q_cls·kᵀ/√d_h) without the CLS
/// column: (B, h, N).
let clsAttention (last: LastBlock) : Tensor =
    let dh = float last.Queries.shape.[3]
    let q = toFloat32 (last.Queries.narrow(2L, 0L, 1L))                                // (B, h, 1, dh)
    let weights = (over (batchMatmul q ((toFloat32 last.Keys).transpose(2, 3))) (sqrt dh)).softmax(-1L) // (B, h, 1, 1+N)
    weights.squeeze(2L).narrow(2L, 1L, weights.shape.[3] - 1L)

/// The backbone's parameters with DINO/timm state-dict names (without the `backbone.` prefix),
/// in a fixed order.
let named (p: VitParams) : (string * Tensor) list =
    let lin name (l: Linear) = (name + ".weight", l.Weight) :: (l.Bias |> Option.map (fun b -> name + ".bias", b) |> Option.toList)
    let ln name (l: LayerNorm) = [ name + ".weight", l.Weight; name + ".bias", l.Bias ]
    [ "cls_token", p.ClsToken
      "pos_embed", p.PosEmbed
      yield! lin "patch_embed.proj" p.PatchEmbed
      for i, b in Array.indexed p.Blocks do
          let at = sprintf "blocks.%d." i
          yield! ln (at + "norm1") b.Norm1
          yield! lin (at + "attn.qkv") b.Qkv
          yield! lin (at + "attn.proj") b.Proj
          yield! ln (at + "norm2") b.Norm2
          yield! lin (at + "mlp.fc1") b.Fc1
          yield! lin (at + "mlp.fc2") b.Fc2
      yield! ln "norm" p.Norm ]

/// Rebuilds the parameters from named tensors (the names of `named`); `get` fails on a missing name.
let ofNamed (cfg: VitConfig) (get: string -> Tensor) : VitParams =
    let lin name = { Weight = get (name + ".weight"); Bias = Some(get (name + ".bias")) }
    let ln name = { Weight = get (name + ".weight"); Bias = get (name + ".bias"); Eps = cfg.Eps }
    { PatchEmbed = lin "patch_embed.proj"
      ClsToken = get "cls_token"
      PosEmbed = get "pos_embed"
      Blocks =
        Array.init cfg.Depth (fun i ->
            let at = sprintf "blocks.%d." i
            { Norm1 = ln (at + "norm1"); Qkv = lin (at + "attn.qkv"); Proj = lin (at + "attn.proj")
              Norm2 = ln (at + "norm2"); Fc1 = lin (at + "mlp.fc1"); Fc2 = lin (at + "mlp.fc2") })
      Norm = ln "norm" }

/// The backbone on `device`.
let toDevice (cfg: VitConfig) (device: torch.Device) (p: VitParams) : VitParams = ofNamed cfg (movedTo device (named p))
