using CrOC.Host.CommandLine;
using CrOC.Host.Distributed;
using CrOC.Math;
using TorchSharp;
using static TorchSharp.torch;
using CrOC.Host.Runtime;

namespace CrOC.Host;

/// <summary>`croc-host bench-clustering`'s command line.</summary>
[Command("bench-clustering", "time the joint-space clustering at the official size (S = B·h problems of 2N tokens)", Notes = "Prints every timing and the median; the target is <= 5% of a ViT-S/16 step at the same batch.")]
public sealed record ClusteringBenchmarkOptions
{
    [Option("images per step", Min = 1, Max = 100000)]
    public int Batch { get; init; } = 16;
    [Option("attention heads: problems per image", Min = 1, Max = 1024)]
    public int Heads { get; init; } = 6;
    [Option("patch tokens per view (a square number)", Min = 1, Max = 1000000)]
    public int Tokens { get; init; } = 196;
    [Option("per-head key width", Min = 1, Max = 4096)]
    public int Dim { get; init; } = 64;
    [Option("timed repetitions after 2 warm-ups", Min = 1, Max = 100000)]
    public int Repeats { get; init; } = 10;
    [Option("torch intra-op threads (0: all cores)", Min = 0, Max = 4096)]
    public int Threads { get; init; }
}

/// <summary>
/// `croc-host bench-clustering`: the median time of one joint-space clustering (official config,
/// sampled seeds) on random keys and positions of the official size.
/// </summary>
public static class ClusteringBenchmark
{
    public static int Run(ClusteringBenchmarkOptions o)
    {
        var (batch, heads, tokens, dim, repeats) = (o.Batch, o.Heads, o.Tokens, o.Dim, o.Repeats);
        int threads = o.Threads > 0 ? o.Threads : Environment.ProcessorCount;
        int side = (int)System.Math.Round(System.Math.Sqrt(tokens));
        if (side * side != tokens) throw new OptionException($"--tokens must be a square number, got {tokens}");
        int k0 = Clustering.ClusteringConfig.Official.K0;
        if (2 * tokens < k0) throw new OptionException($"--tokens {tokens}: the two views' {2 * tokens} tokens are fewer than the clustering's {k0} initial clusters (use at least {(k0 + 1) / 2}, a square: 4)");

        long problems = (long)batch * heads;
        MemoryFit.CheckBytes(MemoryFit.ClusteringBytes(problems, tokens, dim), $"--batch {batch} x --heads {heads} problems of 2 x {tokens} tokens of width {dim}",
            "use fewer (about 2.4 + 0.024·d kB per token and problem)", share: 0.75);
        torch.set_num_threads(threads);
        var generator = new Generator(0UL, CPU);
        using var keys = randn([2L * problems, tokens + 1, dim], generator: generator);
        using var positions = (rand([2L * batch, tokens, 2], generator: generator) * 224f);
        var config = Clustering.ClusteringConfig.Official;

        Console.WriteLine($"clustering S = {problems} problems ({batch} images x {heads} heads), 2N = {2 * tokens} tokens, d = {dim}, {threads} threads");
        if (Collectives.Oversubscription(threads, 1) is { } warning) Console.WriteLine(warning);
        Timing.Median("clustering", 2, repeats, () =>
        {
            using var scope = NewDisposeScope();
            var clusters = Clustering.cluster(config, Clustering.Seeding.NewSampled(generator), keys, positions);
            return $", mean K* {clusters.KStar.to_type(ScalarType.Float32).mean().item<float>():F2}, {clusters.ValidCount} valid objects";
        });
        return 0;
    }
}
