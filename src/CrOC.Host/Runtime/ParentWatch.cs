using System.Runtime.InteropServices;
using CrOC.Host.CommandLine;

namespace CrOC.Host.Runtime;

/// <summary>
/// A job of the real-photo suite stops as the suite would ask it (<see cref="StopRequest"/>) once the suite is gone:
/// a suite killed outright (SIGKILL, the OOM killer) left its jobs training and evaluating on as orphans, beside its
/// rerun's own, once. The suite names its process in <see cref="Variable"/>; when this process's parent is another
/// (the orphan is adopted), it sends itself the stop signal, which its handlers take as the suite's.
/// </summary>
public static class ParentWatch
{
    public const string Variable = "CROC_SUITE_PROCESS";

    static readonly TimeSpan Interval = TimeSpan.FromMilliseconds(500);

    /// <summary>Starts the watch when <see cref="Variable"/> names this process's parent (and removes it, so that
    /// no process this one starts inherits it).</summary>
    public static void StartFromEnvironment()
    {
        var named = Environment.GetEnvironmentVariable(Variable);
        if (named is null || !OperatingSystem.IsLinux()) return;
        Environment.SetEnvironmentVariable(Variable, null);
        if (!int.TryParse(named, out int suite)) return;
        new Thread(() =>
        {
            while (Native.getppid() == suite) Thread.Sleep(Interval);
            Native.kill(Environment.ProcessId, StopRequest.Signal);
        }) { IsBackground = true, Name = "suite watch" }.Start();
    }

    static class Native
    {
        [DllImport("libc")] public static extern int getppid();
        [DllImport("libc")] public static extern int kill(int pid, int signal);
    }
}
