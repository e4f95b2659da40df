using System.Runtime.InteropServices;

namespace CrOC.Host.Runtime;

/// <summary>This process's soft resource limits (getrlimit, Linux), checked before a command's work.</summary>
public static class ProcessLimits
{
    /// <summary>Linux's RLIMIT_NOFILE and RLIMIT_AS (x86-64 and arm64).</summary>
    public const int OpenFiles = 7, AddressSpace = 9;

    /// <summary>The soft limit of <paramref name="resource"/>, or null when there is none (or it cannot be read).
    /// The .NET runtime raises the open-files soft limit to the hard one as it starts.</summary>
    public static long? Soft(int resource)
    {
        if (!OperatingSystem.IsLinux()) return null;
        try { return Native.getrlimit(resource, out var limit) == 0 && limit.Current < long.MaxValue ? (long)limit.Current : null; }
        catch (Exception e) when (e is DllNotFoundException or EntryPointNotFoundException) { return null; }
    }

    /// <summary>Throws (exit 2) when a limit is below what every command needs; not for a command's --help.</summary>
    public static void CheckBeforeWork()
    {
        Runtime.AddressSpace.Check(Soft(AddressSpace));
        Runtime.OpenFiles.Check(Soft(OpenFiles));
    }

    [StructLayout(LayoutKind.Sequential)]
    struct Rlimit
    {
        public ulong Current, Maximum;
    }

    static class Native
    {
        [DllImport("libc", SetLastError = true)] public static extern int getrlimit(int resource, out Rlimit limit);
    }
}
