using CrOC.Math;
using TorchSharp;
using static TorchSharp.torch;

namespace CrOC.Host;

/// <summary>
/// `croc-host bench-clustering`: the median time of one joint-space clustering (official config,
/// sampled seeds) on random keys and positions of the official size.
/// </summary>
public static class ClusteringBenchmark
{
    const string Help = """
        croc-host bench-clustering: time Clustering.cluster at the official size.

        Options:
          --batch B     images per step (16)
          --heads h     attention heads, problems per image (6)
          --tokens N    patch tokens per view, a square (196)
          --dim d       per-head key width (64)
          --repeats R   timed repetitions after 2 warm-ups (10)
          --threads T   torch intra-op threads (all cores)
        Prints every timing and the median; the target is <= 5% of a ViT-S/16 step at the same batch.
        """;

    public static int Run(Options options)
    {
        if (options.Help) { Console.WriteLine(Help); return 0; }
        int batch = options.PositiveInt("batch", 16);
        int heads = options.PositiveInt("heads", 6);
        int tokens = options.PositiveInt("tokens", 196);
        int dim = options.PositiveInt("dim", 64);
        int repeats = options.PositiveInt("repeats", 10);
        int threads = options.PositiveInt("threads", Environment.ProcessorCount);
        options.RejectUnknown();
        int side = (int)System.Math.Round(System.Math.Sqrt(tokens));
        if (side * side != tokens) throw new OptionException($"--tokens must be a square number, got {tokens}");

        torch.set_num_threads(threads);
        int problems = batch * heads;
        var generator = new Generator(0UL, CPU);
        using var keys = randn([2L * problems, tokens + 1, dim], generator: generator);
        using var positions = (rand([2L * batch, tokens, 2], generator: generator) * 224f);
        var config = Clustering.ClusteringConfig.Official;

        Console.WriteLine($"clustering S = {problems} problems ({batch} images x {heads} heads), 2N = {2 * tokens} tokens, d = {dim}, {threads} threads");
        Timing.Median("clustering", 2, repeats, () =>
        {
            using var scope = NewDisposeScope();
            var clusters = Clustering.cluster(config, Clustering.Seeding.NewSampled(generator), keys, positions);
            return $", mean K* {clusters.KStar.to_type(ScalarType.Float32).mean().item<float>():F2}, {clusters.ValidCount} valid objects";
        });
        return 0;
    }
}
