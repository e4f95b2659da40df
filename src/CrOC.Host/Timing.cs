using System.Diagnostics;

namespace CrOC.Host;

/// <summary>Repeated timings with warm-up, reported as medians (these machines are noisy).</summary>
public static class Timing
{
    /// <summary>Runs <paramref name="action"/> <paramref name="warmups"/> + <paramref name="repeats"/>
    /// times, prints each run, and returns the median milliseconds of the timed runs.</summary>
    public static double Median(string label, int warmups, int repeats, Func<string> action)
    {
        var times = new List<double>();
        for (int i = 0; i < warmups + repeats; i++)
        {
            var watch = Stopwatch.StartNew();
            var detail = action();
            double ms = watch.Elapsed.TotalMilliseconds;
            if (i >= warmups) times.Add(ms);
            Console.WriteLine($"  {label} run {i + 1}{(i < warmups ? " (warm-up)" : "")}: {ms:F1} ms{detail}");
        }
        times.Sort();
        double median = times.Count % 2 == 1 ? times[times.Count / 2] : (times[times.Count / 2 - 1] + times[times.Count / 2]) / 2;
        Console.WriteLine($"{label}: median {median:F1} ms over {times.Count} runs (min {times[0]:F1}, max {times[^1]:F1})");
        return median;
    }
}
