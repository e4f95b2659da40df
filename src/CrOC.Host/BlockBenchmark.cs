using CrOC.Host.CommandLine;
using CrOC.Host.Distributed;
using CrOC.Host.Runtime;
using CrOC.Math;
using TorchSharp;
using static TorchSharp.torch;

namespace CrOC.Host;

/// <summary>`croc-host bench-block`'s command line.</summary>
[Command("bench-block", "time each operation of one ViT block's forward alone, and the attention's forward + backward")]
public sealed record BlockBenchmarkOptions : BackboneBenchmarkOptions
{
    [Option("images per pass (the official step at --batch 8 runs its two views of 8 images: 16)", Min = 1, Max = 100000)]
    public int Images { get; init; } = 16;
    [Option("timed repetitions after 3 warm-ups", Min = 1, Max = 100000)]
    public int Repeats { get; init; } = 15;
    [Option("bf16: mixed precision (matmuls in bfloat16); auto: bf16 where it is faster than fp32, as train")]
    public PrecisionChoice Precision { get; init; } = PrecisionChoice.Auto;
}

/// <summary>`croc-host bench-block`: where a block's time goes. Every operation of the first block's
/// forward runs alone, on inputs made once as `Vit.forward` makes them (random weights and images,
/// no graph); the medians are listed with their share of the sum. The bf16 attention on the CPU is
/// also split into the steps `Vit.attention` takes. Then the attention's forward + backward with a
/// graph, as the student runs it.</summary>
public static class BlockBenchmark
{
    const int Warmups = 3;

    public static int Run(BlockBenchmarkOptions o)
    {
        int threads = o.CheckedThreads();
        var resolved = Precisions.Resolve(o.Precision, "cpu");
        var precision = Precisions.ToLayers(resolved);
        torch.set_num_threads(threads);
        var cfg = Training.CrocSetup.Published(o.Arch, o.Patch, o.Size);
        MemoryFit.Check(cfg, o.Images, training: false, resolved, $"--size {o.Size} with --patch {o.Patch}"); // one block
        var generator = new Generator(0UL, CPU);
        var p = Vit.init(cfg, generator);
        var block = p.Blocks[0];
        int heads = cfg.Heads;
        using var noGrad = no_grad();
        using var images = randn([o.Images, 3, o.Size, o.Size], generator: generator);
        var x = Vit.embed(cfg, precision, p, images);                                   // (n, T, D) float32
        long n = x.shape[0], tokens = x.shape[1];
        var normed = Layers.compute(precision, Layers.layerNorm(block.Norm1, x));
        var (q, k, v) = Vit.splitHeads(heads, Layers.linearAs(precision, block.Qkv, normed));
        var attended = Vit.attention(precision, q, k, v);
        var merged = attended.transpose(1, 2).reshape(n, tokens, -1);
        var branch = Layers.linearAs(precision, block.Proj, merged);
        var hidden = Layers.linearAs(precision, block.Fc1, normed);
        var activated = Layers.gelu(hidden);
        Console.WriteLine($"ViT-{o.Arch.Word()}/{o.Patch} block 1 of {cfg.Depth}, {o.Size} px, {o.Images} images ({tokens} tokens each), "
                          + $"{(precision.IsBf16 ? "bf16" : "fp32")}, {threads} threads; medians of {o.Repeats} runs after {Warmups} warm-ups");
        if (Collectives.Oversubscription(threads, 1) is { } warning) Console.WriteLine(warning);

        // (name, how often a block runs it, the operation)
        var operations = new (string Name, int Uses, Action Run)[]
        {
            ("LayerNorm (float32)", 2, () => Layers.layerNorm(block.Norm1, x)),
            ("cast to the compute dtype", 2, () => Layers.compute(precision, x)),
            ("qkv linear (D → 3D, bias)", 1, () => Layers.linearAs(precision, block.Qkv, normed)),
            ("attention (Vit.attention)", 1, () => Vit.attention(precision, q, k, v)),
            ("heads merged (transpose + reshape)", 1, () => attended.transpose(1, 2).reshape(n, tokens, -1)),
            ("proj linear (D → D, bias)", 1, () => Layers.linearAs(precision, block.Proj, merged)),
            ("residual add (float32 + branch)", 2, () => _ = x + branch),
            ("fc1 linear (D → 4D, bias)", 1, () => Layers.linearAs(precision, block.Fc1, normed)),
            ("GELU", 1, () => Layers.gelu(hidden)),
            ("fc2 linear (4D → D, bias)", 1, () => Layers.linearAs(precision, block.Fc2, activated)),
        };
        var times = operations.Select(op => MedianMs(o.Repeats, op.Run)).ToArray();
        double sum = operations.Select((op, i) => op.Uses * times[i]).Sum();
        Console.WriteLine($"{"operation",-40} {"ms",8} {"share",7}");
        for (int i = 0; i < operations.Length; i++)
        {
            var (name, uses, _) = operations[i];
            Console.WriteLine($"{name + (uses > 1 ? $" ×{uses}" : ""),-40} {times[i],8:F3} {100 * uses * times[i] / sum,6:F1}%");
        }
        Console.WriteLine($"{"sum (a block's forward, op by op)",-40} {sum,8:F3}");

        if (precision.IsBf16)
        {
            // The steps of Vit.attention's bf16 CPU path, each alone.
            var scaled = q / System.Math.Sqrt(q.shape[3]);
            var keys = k.contiguous();
            var scores = Tensors.batchMatmul(scaled, keys.transpose(-2, -1));
            var weights = scores.softmax(-1);
            foreach (var (name, run) in new (string, Action)[]
                     {
                         ("  q / √d_h", () => _ = q / System.Math.Sqrt(q.shape[3])),
                         ("  k made contiguous", () => k.contiguous()),
                         ("  q·kᵀ (kᵀ a view)", () => Tensors.batchMatmul(scaled, keys.transpose(-2, -1))),
                         ("  q·kᵀ if k stays strided (for scale)", () => Tensors.batchMatmul(scaled, k.transpose(-2, -1))),
                         ("  softmax (bf16, rows of T)", () => scores.softmax(-1)),
                         ("  ·v (v a strided view)", () => Tensors.batchMatmul(weights, v)),
                     })
                Console.WriteLine($"{name,-40} {MedianMs(o.Repeats, run),8:F3}");
        }

        using var enableGrad = enable_grad();
        var qkvLeaf = Layers.linearAs(precision, block.Qkv, normed).detach().requires_grad_(true);
        using var upstream = randn_like(attended);
        double both = MedianMs(o.Repeats, () =>
        {
            var (lq, lk, lv) = Vit.splitHeads(heads, qkvLeaf);
            Vit.attention(precision, lq, lk, lv).backward([upstream]);
            qkvLeaf.grad = null;
        });
        Console.WriteLine($"{"attention forward + backward (graph)",-40} {both,8:F3}");
        return 0;
    }

    /// <summary>The median wall time of `run` in ms; the tensors it makes are freed after each run.</summary>
    static double MedianMs(int repeats, Action run) =>
        Timing.MedianOf(Timing.TimedRuns(Warmups, repeats, () =>
        {
            using var scope = NewDisposeScope();
            run();
            return "";
        }));
}
