module CrOC.Tests.VitTests

open Expecto
open TorchSharp
open CrOC.Math
open CrOC.Math.Tensors
open CrOC.Math.Vit
open CrOC.Tests.TestUtil

let generator (seed: int) = new torch.Generator(uint64 seed, torch.CPU)

let backboneCount (cfg: VitConfig) =
    use _ = torch.NewDisposeScope()
    named (init cfg (generator 0)) |> List.sumBy (fun (_, t) -> t.numel())

let tests =
    testList "ViT and head" [
        test "parameter counts match the published backbones (ViT-S/16 21.67 M, ViT-Ti/16 5.52 M)" {
            Expect.equal (backboneCount (VitConfig.Small(16, 224))) 21_665_664L "ViT-S/16 backbone (timm: 22.05 M with its 1000-class head)"
            Expect.equal (backboneCount (VitConfig.Tiny(16, 224))) 5_524_416L "ViT-Ti/16 backbone (timm: 5.72 M with its head)"
            for cfg in [ VitConfig.Small(16, 224); VitConfig.Tiny(8, 32); { VitConfig.Tiny(8, 64) with Depth = 2; MlpRatio = 2 } ] do
                Expect.equal (Vit.parameterCount cfg) (backboneCount cfg) "counted without making them"
            Expect.throwsT<System.OverflowException> (fun () -> Vit.parameterCount { VitConfig.Tiny(8, 32) with Dim = System.Int32.MaxValue } |> ignore) "beyond int64: an overflow, not a wrapped count"
        }

        test "initialisation: trunc-normal(0.02) Linear weights and tokens, zero biases, unit LayerNorms" {
            use _ = torch.NewDisposeScope()
            let p = init (VitConfig.Small(16, 224)) (generator 10)
            let weights = p.Blocks.[3].Fc1.Weight
            Expect.floatClose { absolute = 5e-4; relative = 0.0 } (toFloat (weights.std())) 0.02 "std 0.02 (TorchSharp's trunc_normal_ left zeros)"
            Expect.floatClose { absolute = 5e-4; relative = 0.0 } (toFloat (weights.mean())) 0.0 "mean 0"
            Expect.isLessThanOrEqual (toFloat (weights.abs().max())) 2.0 "truncated to [-2, 2]"
            Expect.floatClose { absolute = 2e-3; relative = 0.0 } (toFloat (p.PosEmbed.std())) 0.02 "pos_embed std 0.02"
            Expect.equal (toFloat (p.Blocks.[0].Qkv.Bias.Value.abs().sum())) 0.0 "zero biases"
            Expect.equal (toFloat (p.Norm.Weight.mean())) 1.0 "LayerNorm weight 1"
        }

        test "forward shapes: CLS (B, D), tokens (B, 1+N, D), per-head q/k/v (B, h, 1+N, D/h), CLS attention (B, h, N)" {
            use _ = torch.NewDisposeScope()
            let cfg = { VitConfig.Tiny(8, 32) with Depth = 2 }
            let p = init cfg (generator 1)
            let out = forward cfg p { ForwardOptions.Inference with LastBlock = true } (torch.randn(3L, 3L, 32L, 32L))
            Expect.equal out.Cls.shape [| 3L; 192L |] "CLS"
            Expect.equal out.Tokens.shape [| 3L; 17L; 192L |] "tokens"
            let last = out.Last.Value
            Expect.equal last.Keys.shape [| 3L; 3L; 17L; 64L |] "keys"
            let attention = clsAttention last
            Expect.equal attention.shape [| 3L; 3L; 16L |] "CLS attention over the patches"
            Expect.isTrue ((valuesOf (attention.sum(-1L))) |> Array.forall (fun s -> s > 0.0 && s <= 1.0 + 1e-6)) "a sub-distribution (CLS column removed)"
        }

        test "position-embedding interpolation is the identity at the native size" {
            use _ = torch.NewDisposeScope()
            let cfg = { VitConfig.Tiny(8, 32) with Depth = 1 }
            let p = init cfg (generator 2)
            Expect.isTrue (obj.ReferenceEquals(positionEmbedding p 4 4, p.PosEmbed)) "the stored tensor itself"
            Expect.equal (positionEmbedding p 6 5).shape [| 1L; 31L; 192L |] "resized for 6x5 patches"
        }

        test "matches the PyTorch golden file to 1e-4 (tokens, q/k/v, CLS attention, resized positions, both heads)" {
            use _ = torch.NewDisposeScope()
            let g = Fixtures.golden ()
            let net = Fixtures.network g
            let cfg = Fixtures.config
            let out = forward cfg.Vit net.Backbone { ForwardOptions.Inference with LastBlock = true } g.["fixture.images"]
            let last = out.Last.Value
            let large = forward cfg.Vit net.Backbone ForwardOptions.Inference g.["fixture.images_large"]
            let checks =
                [ "tokens", out.Tokens, g.["fixture.tokens"]
                  "queries", last.Queries, g.["fixture.queries"]
                  "keys", last.Keys, g.["fixture.keys"]
                  "values", last.Values, g.["fixture.values"]
                  "CLS attention", clsAttention last, g.["fixture.cls_attention"]
                  "tokens at 48x40 (bicubic positions)", large.Tokens, g.["fixture.tokens_large"]
                  "image head", Heads.image net.Head out.Cls, g.["fixture.head_image"]
                  "object head", Heads.objects net.Head g.["fixture.objects_in"], g.["fixture.head_objects"] ]
            for name, ours, theirs in checks do
                Expect.isLessThanOrEqual (maxAbsDiff ours theirs) 1e-4 name
        }

        test "gradients reach every trainable student parameter; frozen g gets none" {
            use _ = torch.NewDisposeScope()
            let cfg : Network.NetworkConfig =
                { Vit = { VitConfig.Tiny(8, 32) with Depth = 2; Dim = 48; Heads = 3 }
                  Head = { InDim = 48; Hidden = 32; Bottleneck = 8; OutDim = 16; OutDimC = 12; NormLastLayer = true } }
            let net = Network.init cfg (generator 3)
            let options = { DropPath = 0.1; DropPathSource = Some(Drawn(generator 4)); LastBlock = true; Precision = Layers.Fp32 }
            let out = forward cfg.Vit net.Backbone options (torch.randn(2L, 3L, 32L, 32L))
            let loss = (Heads.image net.Head out.Cls).square().mean() + (Heads.objects net.Head (out.Tokens.narrow(1L, 1L, 4L).reshape(-1L, 48L))).square().mean()
            loss.backward()
            for name, t in Network.named net do
                if t.requires_grad then
                    Expect.isGreaterThan (toFloat ((gradOf t).abs().sum())) 0.0 (sprintf "%s has a gradient" name)
                else
                    Expect.isTrue (name.EndsWith "weight_g" && isNull t.grad) (sprintf "%s is frozen (norm_last_layer)" name)
        }

        test "norm_last_layer: both last layers' g stay 1 without gradient and out of the optimiser's tensors; without it they train" {
            use _ = torch.NewDisposeScope()
            let vit = { VitConfig.Tiny(8, 16) with Depth = 1; Dim = 16; Heads = 2 }
            let head : Heads.HeadConfig = { InDim = 16; Hidden = 8; Bottleneck = 4; OutDim = 6; OutDimC = 5; NormLastLayer = true }
            let gNames = set [ "head.last_layer.weight_g"; "head.last_layer_c.weight_g" ]
            for normLastLayer in [ true; false ] do
                let net = Network.init { Vit = vit; Head = { head with NormLastLayer = normLastLayer } } (generator 5)
                let named = Map.ofList (Network.named net)
                for name in gNames do
                    Expect.sequenceEqual (valuesOf named.[name]) (Array.create (if name.Contains "_c." then 5 else 6) 1.0) (sprintf "%s is 1" name)
                    Expect.equal named.[name].requires_grad (not normLastLayer) (sprintf "%s takes a gradient only without norm_last_layer (%b)" name normLastLayer)
                let trainable = Network.trainable net |> List.map fst |> Set.ofList
                Expect.equal (Set.intersect trainable gNames) (if normLastLayer then Set.empty else gNames) (sprintf "g trained only without norm_last_layer (%b)" normLastLayer)
                Expect.equal (Set.count trainable) (named.Count - (if normLastLayer then 2 else 0)) "every other tensor is trained"
        }

        test "PyTorch's default init U(±1/√fan_in): the patch embedding (fan_in 3·p²) and the last layers' v (fan_in the bottleneck)" {
            use _ = torch.NewDisposeScope()
            let net =
                Network.init { Vit = { VitConfig.Tiny(8, 16) with Depth = 1; Dim = 64; Heads = 2 }
                               Head = { InDim = 64; Hidden = 16; Bottleneck = 64; OutDim = 400; OutDimC = 300; NormLastLayer = true } } (generator 6)
            for name, t, fanIn in [ "patch_embed weight", net.Backbone.PatchEmbed.Weight, 192.0
                                    "last_layer v", net.Head.LastLayer.V, 64.0
                                    "last_layer_c v", net.Head.LastLayerC.V, 64.0 ] do
                let bound = 1.0 / sqrt fanIn
                let values = valuesOf t
                Expect.isLessThanOrEqual (values |> Array.map abs |> worstError) bound (sprintf "%s within ±1/√%g" name fanIn)
                Expect.isGreaterThan (values |> Array.map abs |> worstError) (0.95 * bound) (sprintf "%s reaches near the bound" name)
                // U(−b, b) has std b/√3; over ≥ 12288 draws the sample std is within 2 %
                Expect.floatClose { absolute = 0.0; relative = 0.02 } (toFloat (t.std())) (bound / sqrt 3.0) (sprintf "%s: std b/√3" name)
        }

        test "the network's tensors in the official state dict's order: the backbone's, then the head's" {
            use _ = torch.NewDisposeScope()
            let net =
                Network.init { Vit = { VitConfig.Tiny(8, 16) with Depth = 1; Dim = 16; Heads = 2 }
                               Head = { InDim = 16; Hidden = 8; Bottleneck = 4; OutDim = 6; OutDimC = 5; NormLastLayer = false } } (generator 7)
            let names = Network.named net |> List.map fst
            let backbone = names |> List.takeWhile (fun n -> n.StartsWith "backbone.")
            Expect.isNonEmpty backbone "backbone first"
            Expect.all (List.skip backbone.Length names) (fun n -> n.StartsWith "head.") "then only the head"
            Expect.equal (List.length names - backbone.Length) 10 "the head's 10 tensors (3 Linear layers, two (g, v) pairs)"
        }

        test "the teacher path (no_grad) builds no graph" {
            use _ = torch.NewDisposeScope()
            let cfg = { VitConfig.Tiny(8, 32) with Depth = 1 }
            let p = init cfg (generator 5)
            use _ = torch.no_grad()
            let out = forward cfg p ForwardOptions.Inference (torch.randn(1L, 3L, 32L, 32L))
            Expect.isFalse out.Tokens.requires_grad "no graph"
        }

        test "a forward frees each block's input as it goes: the tensors it leaves alive do not grow with depth" {
            let liveAfterForward (depth: int) (grad: bool) =
                use _ = torch.NewDisposeScope()
                let cfg = { VitConfig.Tiny(8, 32) with Depth = depth }
                let p = init cfg (generator 1)
                let images = torch.randn(2L, 3L, 32L, 32L)
                let before = liveTensors ()
                let out =
                    if grad then forward cfg p ForwardOptions.Inference images
                    else (use _ = torch.no_grad() in forward cfg p ForwardOptions.Inference images)
                let alive = torch.Tensor.TotalCount - before
                if grad then out.Cls.sum().backward() // the graph still reaches every block
                Expect.isTrue (p.Blocks |> Array.forall (fun b -> b.Fc1.Weight.grad <> null) || not grad) "every block gets a gradient"
                alive
            for grad in [ false; true ] do
                Expect.equal (liveAfterForward 6 grad) (liveAfterForward 2 grad) (sprintf "live tensors after a forward, 6 blocks vs 2 (grad %b)" grad)
        }

        test "stochastic depth changes training outputs, never inference ones" {
            use _ = torch.NewDisposeScope()
            let cfg = { VitConfig.Tiny(8, 32) with Depth = 4 }
            let p = init cfg (generator 6)
            let x = torch.randn(8L, 3L, 32L, 32L)
            let inference = forward cfg p ForwardOptions.Inference x
            let again = forward cfg p ForwardOptions.Inference x
            Expect.equal (maxAbsDiff inference.Tokens again.Tokens) 0.0 "deterministic without drop-path"
            let training = forward cfg p { ForwardOptions.Inference with DropPath = 0.5; DropPathSource = Some(Drawn(generator 7)) } x
            Expect.isGreaterThan (maxAbsDiff inference.Tokens training.Tokens) 1e-3 "some residual branches dropped"
            // One block: DINO's rates linspace(0, r, 1) = [0], so no branch is ever dropped.
            let one = { cfg with Depth = 1 }
            let q = init one (generator 6)
            let drawn seed = (forward one q { ForwardOptions.Inference with DropPath = 0.5; DropPathSource = Some(Drawn(generator seed)) } x).Tokens
            Expect.equal (maxAbsDiff (drawn 1) (drawn 2)) 0.0 "a single block keeps its branches"
            // Masks drawn beforehand (one upload on a GPU) are the draws a forward makes block by block.
            let predrawn = drawDropPathMasks 0.5 cfg.Depth (generator 7) 8L torch.CPU
            Expect.equal predrawn.shape [| 8L; 8L; 1L; 1L |] "(2·depth, B, 1, 1)"
            let fromMasks = forward cfg p { ForwardOptions.Inference with DropPath = 0.5; DropPathSource = Some(Predrawn predrawn) } x
            Expect.sequenceEqual (valuesOf fromMasks.Tokens) (valuesOf training.Tokens) "bit for bit the forward that drew them"
            Expect.sequenceEqual (valuesOf (predrawn.narrow(0L, 0L, 2L))) (Array.create 16 1.0) "block 0 (rate 0) drops nothing"
        }

        test "bf16 mixed precision tracks float32 and keeps float32 outputs and gradients" {
            use _ = torch.NewDisposeScope()
            let g = Fixtures.golden ()
            let net = Fixtures.network g
            let cfg = Fixtures.config
            let bf16 = { Vit.ForwardOptions.Inference with LastBlock = true; Precision = Layers.Bf16 }
            let out = forward cfg.Vit net.Backbone bf16 g.["fixture.images"]
            Expect.equal out.Tokens.dtype torch.float32 "tokens stay float32 (final LayerNorm)"
            let reference = g.["fixture.tokens"]
            let relative = maxAbsDiff out.Tokens reference / toFloat (reference.abs().max())
            Expect.isLessThan relative 0.05 (sprintf "tokens within 5%% of float32 (got %.3f)" relative)
            let logits = Heads.imageAs Layers.Bf16 net.Head out.Cls
            Expect.equal logits.dtype torch.float32 "head logits float32"
            Expect.isLessThan (maxAbsDiff logits g.["fixture.head_image"]) 0.05 "head close to float32"
            let student = Network.init Fixtures.config (generator 12)
            let o = forward cfg.Vit student.Backbone { bf16 with LastBlock = false } (torch.randn(2L, 3L, 32L, 32L))
            (Heads.imageAs Layers.Bf16 student.Head o.Cls).square().mean().backward()
            let qkv = student.Backbone.Blocks.[0].Qkv.Weight
            Expect.equal (gradOf qkv).dtype torch.float32 "float32 master weights receive float32 gradients"
            Expect.isGreaterThan (toFloat ((gradOf qkv).abs().sum())) 0.0 "and the gradients are not zero"
        }

        test "attention: fp32 (fused kernel) and bf16 (bf16 matmuls and softmax, as CPU autocast) match softmax(q·kᵀ/√d)·v in float64, with a graph and without, with gradients" {
            use _ = torch.NewDisposeScope()
            let rng = System.Random 21
            let make () = torch.tensor(normal rng (2 * 3 * 9 * 16), dtype = f64).reshape(2L, 3L, 9L, 16L)
            let q, k, v = make (), make (), make ()
            let reference = torch.matmul((torch.matmul(q, k.transpose(-2L, -1L)) / 4.0).softmax(-1L), v)
            for precision, tolerance in [ Layers.Fp32, 1e-5; Layers.Bf16, 0.05 ] do
                let noGraph =
                    use _ = torch.no_grad()
                    Vit.attention precision (Layers.compute precision (q.to_type(f32))) (Layers.compute precision (k.to_type(f32))) (Layers.compute precision (v.to_type(f32)))
                Expect.isLessThan (maxAbsDiff (noGraph.to_type(f64)) reference) tolerance (sprintf "%A output without a graph" precision)
                let leaf (t: Tensor) = t.to_type(f32).requires_grad_(true)
                let q32, k32, v32 = leaf q, leaf k, leaf v
                let out = Vit.attention precision (Layers.compute precision q32) (Layers.compute precision k32) (Layers.compute precision v32)
                Expect.isLessThan (maxAbsDiff (out.to_type(f64)) reference) tolerance (sprintf "%A output" precision)
                out.to_type(f32).sum().backward()
                let q64 = q.clone().requires_grad_(true)
                torch.matmul((torch.matmul(q64, k.transpose(-2L, -1L)) / 4.0).softmax(-1L), v).sum().backward()
                Expect.isLessThan (maxAbsDiff ((gradOf q32).to_type(f64)) (gradOf q64)) (2.0 * tolerance) (sprintf "%A gradient of q" precision)
        }

        test "q, k, v split by unbind, k made contiguous: the bf16 attention and its gradient are bit-identical to three selects and a strided k where bfloat16 is native (no arithmetic change), within bf16 rounding elsewhere" {
            // Without AVX512-BF16 / AMX, libtorch's fallback bf16 GEMM sums a transposed operand in
            // another order (measured on an AVX2 Zen 1); `--precision auto` takes fp32 there.
            let native = CrOC.Host.Runtime.CpuBf16.OfThisCpu <> CrOC.Host.Runtime.CpuBf16.Rate.Emulated
            use _ = torch.NewDisposeScope()
            // ViT-S's 6 heads of d_h = 64 over 50 tokens; the real-photo suite's ViT-Ti/8 at 64 px: 3 heads, 65 tokens
            for heads, tokens in [ 6L, 50L; 3L, 65L ] do
                let width = 3L * heads * 64L
                let qkv = torch.tensor(normal (System.Random 4) (int (2L * tokens * width)), dtype = f32).reshape(2L, tokens, width).to_type(torch.bfloat16)
                let run (split: Tensor -> Tensor * Tensor * Tensor) (attention: Tensor -> Tensor -> Tensor -> Tensor) =
                    let leaf = qkv.clone().requires_grad_(true)
                    let q, k, v = split leaf
                    let out = attention q k v
                    (out.to_type(f32) * torch.linspace(-1.0, 1.0, out.numel()).reshape(out.shape)).sum().backward()
                    out, gradOf leaf
                let viaSelects (x: Tensor) =
                    let parts = x.reshape(2L, tokens, 3L, heads, -1L).permute(2L, 0L, 3L, 1L, 4L)
                    parts.[0], parts.[1], parts.[2]
                let out, grad = run (Vit.splitHeads (int heads)) (Vit.attention Layers.Bf16)
                let outRef, gradRef = run viaSelects (fun q k v -> torch.matmul(torch.matmul(q / 8.0, k.transpose(-2L, -1L)).softmax(-1L), v))
                let same (a: Tensor) (b: Tensor) what =
                    let gap = (maxAbsDiff a b) / (b.abs().max().to_type(f32).item<float32>() |> float)
                    if native then Expect.isTrue (a.equal(b).all().item<bool>()) (sprintf "%d heads, %d tokens: %s" heads tokens what)
                    else Expect.isLessThanOrEqual gap (1.0 / 128.0) (sprintf "%d heads, %d tokens: %s within a bf16 rounding of the largest (%g)" heads tokens what gap)
                same out outRef "outputs"
                same grad gradRef "gradients of q, k, v"
        }

        test "batchMatmul is matmul over batch dimensions, bit for bit, and a libtorch error in it is an exception (matmul's aborted the process)" {
            use _ = torch.NewDisposeScope()
            let a = torch.randn(2L, 3L, 5L, 4L)
            let b = torch.randn(2L, 3L, 7L, 4L).transpose(-2L, -1L) // a strided operand, as kᵀ
            Expect.isTrue ((Tensors.batchMatmul a b).equal(torch.matmul(a, b)).all().item<bool>()) "4-D, the same bits"
            Expect.isTrue ((Tensors.batchMatmul a.[0] b.[0]).equal(torch.matmul(a.[0], b.[0])).all().item<bool>()) "3-D"
            Expect.throwsT<System.Runtime.InteropServices.ExternalException> (fun () -> Tensors.batchMatmul a a |> ignore) "shapes that do not chain"
        }

        test "AdamW matches PyTorch's update rule in float64 over 3 steps; a cleared or skipped gradient means no update" {
            use _ = torch.NewDisposeScope()
            let rng = System.Random 5
            let initial = normal rng 6
            let p = torch.tensor(initial, dtype = f64).requires_grad_(true)
            let frozen = torch.tensor(normal rng 2, dtype = f64).requires_grad_(true)
            let frozenBefore = valuesOf frozen
            use optimiser = new Optim.AdamW()
            let lr, wd, b1, b2, eps = 0.01, 0.04, 0.9, 0.999, 1e-8
            let mutable expected = Array.copy initial
            let m, v = Array.zeroCreate 6, Array.zeroCreate 6
            for step in 1 .. 3 do
                let grads = normal rng 6
                Optim.clearGradients [ p; frozen ]
                (p * torch.tensor(grads, dtype = f64)).sum().backward()
                (frozen * 3.0).sum().backward()
                optimiser.Step([ "w", p; "frozen", frozen ], lr, (fun _ _ -> wd), (fun name -> name = "frozen"))
                for i in 0 .. 5 do
                    expected.[i] <- expected.[i] * (1.0 - lr * wd)
                    m.[i] <- b1 * m.[i] + (1.0 - b1) * grads.[i]
                    v.[i] <- b2 * v.[i] + (1.0 - b2) * grads.[i] * grads.[i]
                    let mHat, vHat = m.[i] / (1.0 - b1 ** float step), v.[i] / (1.0 - b2 ** float step)
                    expected.[i] <- expected.[i] - lr * mHat / (sqrt vHat + eps)
                Expect.isLessThan (Array.map2 (fun a b -> abs (a - b)) (valuesOf p) expected |> worstError) 1e-12 (sprintf "step %d" step)
            Optim.clearGradients [ p; frozen ]
            Expect.isTrue (isNull p.grad) "cleared: no gradient"
            optimiser.Step([ "w", p; "frozen", frozen ], lr, (fun _ _ -> wd), (fun _ -> false))
            Expect.isLessThan (Array.map2 (fun a b -> abs (a - b)) (valuesOf p) expected |> worstError) 1e-12 "no gradient, no update (not even weight decay)"
            Expect.sequenceEqual (valuesOf frozen) frozenBefore "a skipped parameter never moved"
        }

        test "AdamW groups: biases and 1-D tensors are not decayed" {
            use _ = torch.NewDisposeScope()
            let net = Network.init Fixtures.config (generator 8)
            let noDecay = Network.named net |> List.filter (fun (n, t) -> not (Network.decays n t)) |> List.map fst
            Expect.contains noDecay "backbone.blocks.0.norm1.weight" "LayerNorm weight"
            Expect.contains noDecay "backbone.blocks.1.attn.qkv.bias" "bias"
            Expect.isFalse (List.contains "backbone.pos_embed" noDecay) "pos_embed is decayed, as in DINO"
            Expect.isFalse (List.contains "head.last_layer.weight_v" noDecay) "weight_v is decayed"
        }

        // Catches: rates linspace(0, r, depth) off by one, kept residuals not rescaled by 1/(1 − rate).
        test "stochastic depth (spec §3): rates linspace(0, r, depth); a residual is dropped (0) with its rate, else scaled by 1/(1 − rate)" {
            use _ = torch.NewDisposeScope()
            for i in 0 .. 11 do
                Expect.floatClose Accuracy.veryHigh (Vit.dropPathRate 0.1 12 i) (0.1 * float i / 11.0) (sprintf "block %d of 12" i)
            let masks = valuesOf (Vit.drawDropPathMasks 0.5 3 (new torch.Generator(9UL)) 4000L torch.CPU)
            for block, rate in [ 0, 0.0; 1, 0.25; 2, 0.5 ] do
                for residual in 0 .. 1 do
                    let values = Array.sub masks ((2 * block + residual) * 4000) 4000
                    Expect.all values (fun v -> v = 0.0 || abs (v - 1.0 / (1.0 - rate)) < 1e-6) (sprintf "block %d: 0 or 1/(1 − %g)" block rate)
                    let dropped = values |> Array.filter (fun v -> v = 0.0) |> Array.length
                    Expect.floatClose { absolute = 0.03; relative = 0.0 } (float dropped / 4000.0) rate (sprintf "block %d: dropped fraction" block)
        }
    ]
