using System.Runtime.InteropServices;

namespace CrOC.Host.Runtime;

/// <summary>
/// Signals between processes (Linux's numbers). A signal whose default action would end the process without a
/// word: SIGXFSZ (a write past `ulimit -f`) is ignored, so that the write fails with EFBIG — an I/O error reported
/// in one line, exit 1, the atomic writer's temporary file removed.
/// </summary>
public static class ProcessSignals
{
    const int SigXfsz = 25; // Linux's number (x86-64 and arm64 alike)

    /// <summary>Ignores SIGXFSZ (Linux only; elsewhere nothing is done).</summary>
    public static void IgnoreFileSizeLimit()
    {
        if (!OperatingSystem.IsLinux()) return;
        try { Native.signal(SigXfsz, 1 /* SIG_IGN */); }
        catch (Exception e) when (e is DllNotFoundException or EntryPointNotFoundException) { /* not glibc: the default stays */ }
    }

    /// <summary>Sends <paramref name="signal"/> to <paramref name="process"/>: whether it was sent (kill(2)).</summary>
    public static bool Send(int process, int signal) => Native.kill(process, signal) == 0;

    const int NoSuchProcess = 3; // ESRCH

    /// <summary>Whether <paramref name="process"/> exists (one this process may not signal does).</summary>
    public static bool Exists(int process) => Send(process, 0) || Marshal.GetLastPInvokeError() != NoSuchProcess;

    static class Native
    {
        [DllImport("libc.so.6")] public static extern IntPtr signal(int signal, IntPtr handler);
        [DllImport("libc.so.6", SetLastError = true)] public static extern int kill(int pid, int signal);
    }
}
