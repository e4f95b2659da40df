using CrOC.Host.CommandLine;
using CrOC.Host.Distributed;
using CrOC.Math;
using TorchSharp;
using static TorchSharp.torch;
using CrOC.Host.Runtime;

namespace CrOC.Host;

/// <summary>`croc-host bench-vit`'s command line.</summary>
[Command("bench-vit", "time the ViT backbone's forward and forward+backward passes")]
public sealed record VitBenchmarkOptions : BackboneBenchmarkOptions
{
    [Option("images per pass", Min = 1, Max = 100000)]
    public int Batch { get; init; } = 8;
    [Option("timed repetitions after 2 warm-ups", Min = 1, Max = 100000)]
    public int Repeats { get; init; } = 5;
    [Option("bf16: mixed precision (matmuls in bfloat16); auto: bf16 where it is faster than fp32, as train")]
    public PrecisionChoice Precision { get; init; } = PrecisionChoice.Fp32;
}

/// <summary>`croc-host bench-vit`: median forward and forward+backward times of a ViT backbone.</summary>
public static class VitBenchmark
{
    public static int Run(VitBenchmarkOptions o)
    {
        var (arch, patch, size, batch, repeats) = (o.Arch, o.Patch, o.Size, o.Batch, o.Repeats);
        int threads = o.CheckedThreads();
        var resolved = Precisions.Resolve(o.Precision, "cpu");
        var precision = Precisions.ToLayers(resolved);

        torch.set_num_threads(threads);
        var cfg = Training.CrocSetup.Published(arch, patch, size);
        MemoryFit.Check(cfg, batch, training: true, resolved, $"--size {size} with --patch {patch}");
        var generator = new Generator(0UL, CPU);
        var parameters = Vit.init(cfg, generator);
        using var images = randn([batch, 3, size, size], generator: generator);
        var train = new Vit.ForwardOptions(0.1, Vit.DropPathSource.NewDrawn(generator), true, precision);
        var inference = new Vit.ForwardOptions(0.0, null, false, precision);
        Console.WriteLine($"ViT-{arch.Word()}/{patch}, {size} px, batch {batch}, {(precision.IsBf16 ? "bf16" : "fp32")}, {threads} threads");
        if (Collectives.Oversubscription(threads, 1) is { } warning) Console.WriteLine(warning);

        double forward = Timing.Median("forward (no grad)", 2, repeats, () =>
        {
            using var scope = NewDisposeScope();
            using var noGrad = no_grad();
            Vit.forward(cfg, parameters, inference, images);
            return "";
        });
        double both = Timing.Median("forward+backward", 2, repeats, () =>
        {
            using var scope = NewDisposeScope();
            var output = Vit.forward(cfg, parameters, train, images);
            output.Tokens.square().mean().backward();
            return "";
        });
        Console.WriteLine($"images/s: forward {batch * 1000 / forward:F1}, forward+backward {batch * 1000 / both:F1}");
        return 0;
    }
}
