using System.Runtime.InteropServices;

namespace CrOC.Host.Distributed;

/// <summary>
/// Bounds the time a blocking collective may take: MPI waits forever for a rank that hangs or whose
/// machine vanished, so each collective runs under a guard that, when <see cref="Timeout"/> passes,
/// reports what it was waiting for and ends the process (exit code 3); the launcher then stops the
/// other ranks. The timeout is a constructor argument, as what happens then (for tests).
/// </summary>
public sealed class Watchdog(TimeSpan timeout, Action<string> onTimeout)
{
    /// <summary>Guards one operation until the returned object is disposed; <paramref name="why"/>: the likely cause.</summary>
    public IDisposable Guard(string what, string why = "another rank has probably died or hangs") =>
        new Timer(_ => onTimeout($"{what} did not complete within {timeout.TotalSeconds:F0} s: {why}"),
            null, timeout, System.Threading.Timeout.InfiniteTimeSpan);

    [DllImport("libc", EntryPoint = "_exit")] static extern void ExitNow(int code);

    static volatile string? runLog;

    /// <summary>The run's log (train.log), which the exit's reason is appended to as well: the
    /// process ends without unwinding, so no other handler writes it there.</summary>
    public static void AlsoLogTo(string path) => runLog = path;

    /// <summary>The production action: the reason in the run's log and on stderr, then an immediate
    /// exit (the main thread is blocked inside MPI and cannot unwind).</summary>
    public static Action<string> ExitProcess(string rank) => message =>
    {
        CommandLine.ExitCodes.Say($"croc-host [{rank}]: {message}; exiting (code {CommandLine.ExitCodes.Hung})", runLog); // Console.Error flushes each line
        ExitNow(CommandLine.ExitCodes.Hung);
    };
}
