using System.Diagnostics;

namespace CrOC.Host.Runtime;

/// <summary>
/// Progress of long work as plain log lines ("what: done/total (p%), elapsed, ETA"), at most one
/// every <c>interval</c> and always one at the end, so redirected output and logs read the same.
/// </summary>
public sealed class ProgressReport(string what, long total, Action<string> log, TimeSpan? interval = null)
{
    readonly Stopwatch watch = Stopwatch.StartNew();
    readonly TimeSpan every = interval ?? TimeSpan.FromSeconds(10);
    TimeSpan last = TimeSpan.Zero;
    long done;

    public void Advance(long count = 1)
    {
        done += count;
        var now = watch.Elapsed;
        if (done < total && now - last < every) return;
        last = now;
        double rate = done / System.Math.Max(now.TotalSeconds, 1e-9);
        var eta = done < total && rate > 0 ? $", ETA {Clock(TimeSpan.FromSeconds((total - done) / rate))}" : "";
        log($"{what}: {done}/{total} ({100.0 * done / System.Math.Max(total, 1):F0}%), {Clock(now)} elapsed{eta}");
    }

    /// <summary>A duration as hours:minutes:seconds, the hours not wrapped at a day (25:30:00).</summary>
    public static string Clock(TimeSpan t) => $"{(long)t.TotalHours:00}:{t:mm\\:ss}";
}
