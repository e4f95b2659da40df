using CrOC.Math;
using TorchSharp;
using static TorchSharp.torch;

namespace CrOC.Host;

/// <summary>`croc-host bench-vit`: median forward and forward+backward times of a ViT backbone.</summary>
public static class VitBenchmark
{
    const string Help = """
        croc-host bench-vit: time the ViT backbone's forward and forward+backward passes.

        Options:
          --arch tiny|small|base   backbone width (small = ViT-S, CrOC's)
          --patch P                patch size (16)
          --size S                 image side in pixels (224)
          --batch B                images per pass (8)
          --repeats R              timed repetitions after 2 warm-ups (5)
          --threads T              torch intra-op threads (all cores)
          --precision fp32|bf16    bf16: mixed precision (matmuls in bfloat16)
        """;

    public static int Run(Options options)
    {
        if (options.Help) { Console.WriteLine(Help); return 0; }
        var arch = options.Choice("arch", "small", ["tiny", "small", "base"]);
        int patch = options.PositiveInt("patch", 16);
        int size = options.PositiveInt("size", 224);
        int batch = options.PositiveInt("batch", 8);
        int repeats = options.PositiveInt("repeats", 5);
        int threads = options.PositiveInt("threads", Environment.ProcessorCount);
        var precision = Training.CrocSetup.PrecisionOf(options.Choice("precision", "fp32", ["fp32", "bf16"]));
        options.RejectUnknown();
        if (size % patch != 0) throw new OptionException($"--size {size} is not a multiple of --patch {patch}");

        torch.set_num_threads(threads);
        var cfg = arch switch
        {
            "tiny" => Vit.VitConfig.Tiny(patch, size),
            "base" => Vit.VitConfig.Base(patch, size),
            _ => Vit.VitConfig.Small(patch, size),
        };
        var generator = new Generator(0UL, CPU);
        var parameters = Vit.init(cfg, generator);
        using var images = randn([batch, 3, size, size], generator: generator);
        var train = new Vit.ForwardOptions(0.1, generator, true, precision);
        var inference = new Vit.ForwardOptions(0.0, null, false, precision);
        Console.WriteLine($"ViT-{arch}/{patch}, {size} px, batch {batch}, {(precision.IsBf16 ? "bf16" : "fp32")}, {threads} threads");

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
