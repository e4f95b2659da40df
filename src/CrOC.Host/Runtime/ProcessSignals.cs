using System.Globalization;
using System.Runtime.InteropServices;

namespace CrOC.Host.Runtime;

/// <summary>
/// Signals whose default action would end the process without a word: SIGXFSZ (a write past
/// `ulimit -f`) is ignored, so that the write fails with EFBIG — an I/O error reported in one line,
/// exit 1, the atomic writer's temporary file removed; and whether a signal was ignored when the
/// process started (SIGHUP under nohup: a handler must not undo that).
/// </summary>
public static class ProcessSignals
{
    const int SigXfsz = 25, SigHup = 1; // Linux's numbers (x86-64 and arm64 alike)

    /// <summary>Ignores SIGXFSZ (Linux only; elsewhere nothing is done).</summary>
    public static void IgnoreFileSizeLimit()
    {
        if (!OperatingSystem.IsLinux()) return;
        try { Native.signal(SigXfsz, 1 /* SIG_IGN */); }
        catch (Exception e) when (e is DllNotFoundException or EntryPointNotFoundException) { /* not glibc: the default stays */ }
    }

    /// <summary>Whether SIGHUP is ignored (started under nohup), read from /proc/self/status; false where unknown.</summary>
    public static bool HangUpIgnored() => IsIgnored(SigHup, StatusLine("SigIgn:"));

    /// <summary>Whether <paramref name="signal"/>'s bit is set in a /proc status mask (hex, bit n−1 for signal n).</summary>
    public static bool IsIgnored(int signal, string? hexMask) =>
        ulong.TryParse(hexMask, NumberStyles.HexNumber, CultureInfo.InvariantCulture, out var mask) && (mask >> (signal - 1) & 1) == 1;

    static string? StatusLine(string key)
    {
        try { return File.ReadLines("/proc/self/status").FirstOrDefault(l => l.StartsWith(key, StringComparison.Ordinal))?[key.Length..].Trim(); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { return null; }
    }

    static class Native
    {
        [DllImport("libc.so.6")] public static extern IntPtr signal(int signal, IntPtr handler);
    }
}
