using System.Diagnostics;

namespace CrOC.Host.Runtime;

/// <summary>Repeated timings with warm-up, reported as medians (these machines are noisy).</summary>
public static class Timing
{
    /// <summary>Runs <paramref name="action"/> <paramref name="warmups"/> + <paramref name="repeats"/>
    /// times, prints each run, and returns the median milliseconds of the timed runs.</summary>
    public static double Median(string label, int warmups, int repeats, Func<string> action)
    {
        var times = TimedRuns(warmups, repeats, action, (i, ms, detail) =>
            Console.WriteLine($"  {label} run {i + 1}{(i < warmups ? " (warm-up)" : "")}: {ms:F1} ms{detail}"));
        double median = MedianOf(times);
        Console.WriteLine($"{label}: median {median:F1} ms over {times.Count} runs (min {times.Min():F1}, max {times.Max():F1})");
        return median;
    }

    /// <summary>Runs <paramref name="action"/> <paramref name="warmups"/> + <paramref name="repeats"/>
    /// times and returns the milliseconds of the timed (last <paramref name="repeats"/>) runs;
    /// <paramref name="eachRun"/> (run index, ms, the action's detail) hears of every run.</summary>
    public static List<double> TimedRuns(int warmups, int repeats, Func<string> action, Action<int, double, string>? eachRun = null)
    {
        var times = new List<double>();
        for (int i = 0; i < warmups + repeats; i++)
        {
            var watch = Stopwatch.StartNew();
            var detail = action();
            double ms = watch.Elapsed.TotalMilliseconds;
            if (i >= warmups) times.Add(ms);
            eachRun?.Invoke(i, ms, detail);
        }
        return times;
    }

    /// <summary>The median of the values (the mean of the middle two for an even count).</summary>
    public static double MedianOf(IEnumerable<double> values)
    {
        var sorted = values.Order().ToList();
        return sorted.Count % 2 == 1 ? sorted[sorted.Count / 2] : (sorted[sorted.Count / 2 - 1] + sorted[sorted.Count / 2]) / 2;
    }
}
