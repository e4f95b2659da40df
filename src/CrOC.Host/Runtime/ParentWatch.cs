using System.Runtime.InteropServices;
using CrOC.Host.CommandLine;

namespace CrOC.Host.Runtime;

/// <summary>
/// A job of the real-photo suite stops as the suite would ask it (<see cref="StopRequest"/>) once the suite is gone:
/// a suite killed outright (SIGKILL, the OOM killer) left its jobs training and evaluating on as orphans, beside its
/// rerun's own, once. The suite names its process in <see cref="Variable"/>; the watch sends this process the stop
/// signal when that process is no longer its parent (the orphan adopted) — or, where it was not the parent at the
/// start (a `dotnet` wrapper that forks), when it no longer exists — unless the suite's own stop came first (a second
/// SIGUSR1 ends a training job at once, without its checkpoint).
/// </summary>
public static class ParentWatch
{
    public const string Variable = "CROC_SUITE_PROCESS";

    static readonly TimeSpan Interval = TimeSpan.FromMilliseconds(500);

    /// <summary>Starts the watch when <see cref="Variable"/> names a process (and removes it, so that no process
    /// this one starts inherits it).</summary>
    public static void StartFromEnvironment()
    {
        var named = Environment.GetEnvironmentVariable(Variable);
        if (named is null || !OperatingSystem.IsLinux()) return;
        Environment.SetEnvironmentVariable(Variable, null);
        if (!int.TryParse(named, out int suite) || suite <= 1) return;
        new Thread(() => Watch(suite)) { IsBackground = true, Name = "suite watch" }.Start();
    }

    static void Watch(int suite)
    {
        try
        {
            bool parent = Native.getppid() == suite;
            while (parent ? Native.getppid() == suite : ProcessSignals.Exists(suite)) Thread.Sleep(Interval);
            if (!SignalStop.TakenInProcess("SIGUSR1")) ProcessSignals.Send(Environment.ProcessId, StopRequest.Signal);
        }
        catch (Exception e) when (e is DllNotFoundException or EntryPointNotFoundException) { /* no watch where libc cannot be called */ }
    }

    static class Native
    {
        [DllImport("libc")] public static extern int getppid();
    }
}
