using CrOC.Host.CommandLine;
using System.Diagnostics;
using System.Globalization;
using CrOC.Host.Distributed;
using CrOC.Host.Training;
using CrOC.Math;
using TorchSharp;
using CrOC.Host.Runtime;

namespace CrOC.Host;

/// <summary>`croc-host bench-allreduce`'s command line.</summary>
[Command("bench-allreduce", "all-reduce time per size between processes (under mpirun -np N, N ≥ 2) and the estimated step on 8 and 64 nodes", Notes = """
    Estimate: ring all-reduce of the official preset's gradients (S bytes) over N nodes,
    t = 2(N−1)/N · S / bandwidth + 2(N−1) · latency, added to the compute (no overlap).
    """)]
public sealed record AllReduceBenchmarkOptions
{
    [Option("buffer sizes in MB", Value = "MB,MB,…", Min = 1e-6, Max = 4096)]
    public double[] Sizes { get; init; } = [0.001, 0.1, 1, 8, 32, 128];
    [Option("timed all-reduces per size after 2 warm-ups", Min = 1, Max = 100000)]
    public int Repeats { get; init; } = 10;
    [Option("compute time of one ViT-S/16 step per node for the estimate (4.3: fp32, batch 8 here; see `croc-host bench`)", Min = 0, MinExclusive = true, Max = 86400)]
    public double StepSeconds { get; init; } = 4.3;
}

/// <summary>
/// `croc-host bench-allreduce` (under mpirun): the all-reduce's time per size on this machine, its
/// latency and cost per MB, and from them a ring all-reduce estimate of the data-parallel step of
/// ViT-S/16 on 8 and 64 nodes.
/// </summary>
public static class AllReduceBenchmark
{
    /// <summary>Assumed links for the estimate: name, bandwidth (bytes/s), latency (s).</summary>
    static readonly (string Name, double Bandwidth, double Latency)[] Links =
        [("10 GbE", 1.25e9, 50e-6), ("100 Gb/s InfiniBand", 12.5e9, 5e-6)];

    /// <summary>The ring model fitted to measured (bytes, seconds) of <paramref name="n"/> processes: the
    /// latency per ring step from the smallest size, the bandwidth (bytes/s) from the largest, in
    /// whatever order the sizes were given (the first and last given once, so an unsorted --sizes
    /// gave a wrong fit).</summary>
    public static (double Latency, double Bandwidth) FitRing(IReadOnlyList<(double Bytes, double Seconds)> results, int n)
    {
        double latency = results.MinBy(r => r.Bytes).Seconds / (2 * (n - 1));
        var (largest, largestTime) = results.MaxBy(r => r.Bytes);
        return (latency, 2.0 * (n - 1) / n * largest / System.Math.Max(largestTime - 2 * (n - 1) * latency, 1e-9));
    }

    /// <summary>The float32 elements of a buffer of <paramref name="mb"/> MB (one at least).</summary>
    static long Elements(double mb) => System.Math.Max(1, (long)(mb * 1e6 / 4));

    public static int Run(AllReduceBenchmarkOptions o)
    {
        var (sizes, repeats, stepSeconds) = (o.Sizes, o.Repeats, o.StepSeconds);
        if (sizes.Select(Elements).Distinct().Count() < 2) throw new OptionException($"--sizes needs two different sizes at least (the latency comes from the smallest, the bandwidth from the largest), got {string.Join(",", sizes)}{(sizes.Distinct().Count() > 1 ? $" (each rounds down to {Elements(sizes[0])} whole float32 element(s) of 4 bytes, one at least)" : "")}");
        using var ranks = Collectives.FromEnvironment(TimeSpan.FromSeconds(120));
        if (ranks.World < 2)
        {
            throw new OptionException("run it with several processes, e.g. mpirun -np 2 croc-host bench-allreduce");
        }
        ranks.AgreeOnSettings(Agreement.SettingsOf(o)); // the sizes and counts of the all-reduces below
        torch.set_num_threads(1);
        var print = ranks.IsRoot ? (Action<string>)Console.WriteLine : _ => { };
        int n = ranks.World;
        print($"all-reduce (sum, float32, in place) over {n} processes, medians of {repeats}");
        print($"{"MB",9} {"median ms",10} {"algbw GB/s",11} {"busbw GB/s",11}");
        var results = new List<(double Bytes, double Seconds)>();
        foreach (var mb in sizes)
        {
            using var scope = torch.NewDisposeScope();
            long elements = Elements(mb);
            var buffer = torch.ones(elements);
            var times = new List<double>();
            for (int i = 0; i < repeats + 2; i++)
            {
                ranks.Barrier();
                var watch = Stopwatch.StartNew();
                ranks.AllReduceSum(buffer);
                if (i >= 2) times.Add(watch.Elapsed.TotalSeconds);
            }
            double t = Timing.MedianOf(times), bytes = elements * 4.0;
            results.Add((bytes, t));
            print($"{bytes / 1e6,9:G4} {t * 1e3,10:F3} {bytes / t / 1e9,11:F2} {2.0 * (n - 1) / n * bytes / t / 1e9,11:F2}");
        }
        var (latency, bandwidth) = FitRing(results, n);
        var (largest, largestTime) = results.MaxBy(r => r.Bytes);
        print($"this machine: latency ≈ {latency * 1e6:F1} µs per ring step, bandwidth ≈ {bandwidth / 1e9:F2} GB/s, cost {largestTime / (largest / 1e6) * 1e3:F3} ms per MB at {n} processes");

        long parameters = GradientCount();
        double gradientBytes = parameters * 4.0;
        print($"estimate for ViT-S/16 + heads (official preset): {parameters / 1e6:F1} M trainable parameters = {gradientBytes / 1e6:F0} MB of float32 gradients per step; compute {stepSeconds} s per node and step");
        var links = Links.Prepend(("this machine's", bandwidth, latency)).ToArray();
        print($"{"nodes",6} " + string.Join(" ", links.Select(l => $"{l.Item1 + " link",28}")));
        foreach (int nodes in new[] { 2, 8, 64 })
        {
            var cells = links.Select(l =>
            {
                double reduce = 2.0 * (nodes - 1) / nodes * gradientBytes / l.Item2 + 2 * (nodes - 1) * l.Item3;
                double step = stepSeconds + reduce;
                return $"{step,6:F2} s ({100 * stepSeconds / step,3:F0}% eff.)".PadLeft(28);
            });
            print($"{nodes,6} " + string.Join(" ", cells));
        }
        return 0;
    }

    /// <summary>Trainable parameters of the official preset's student.</summary>
    static long GradientCount()
    {
        using var scope = torch.NewDisposeScope();
        var network = CrocSetup.Network(TrainConfig.Official);
        var student = Network.init(network, new torch.Generator(0UL, torch.CPU));
        return Network.trainable(student).Sum(t => t.Item2.numel());
    }
}
