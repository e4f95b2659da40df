using System.Runtime.InteropServices;

namespace CrOC.Host.Runtime;

/// <summary>A process resource limit below what every command needs.</summary>
public sealed class ProcessLimitException(string message) : Exception(message), CommandLine.IBadInput;

/// <summary>
/// This process's soft resource limits (getrlimit, Linux), checked before a command's work (not its --help):
/// <list type="bullet">
/// <item>the address space (`ulimit -v`): below about 4 GiB no command works (measured: a tiny export fails
/// under 5 GB, with a clean "out of memory" line only from 3.6 GB); loading libtorch failed as an internal
/// error, and TorchSharp's fallback loader then copied 478 MB of its libraries beside the tool on every try;</item>
/// <item>the open files (`ulimit -n`; the runtime raises the soft limit to the hard one as it starts): the runtime
/// keeps each loaded assembly open, about 100 descriptors before a training step (train's defaults, 2 cores), more
/// with data workers and MPI. Below that a command failed wherever they ran out: an image skipped, a library
/// that did not load, a native abort (eval-knn at 80: "PAL_SEHException", exit 134; at 82: a segmentation fault).</item>
/// </list>
/// </summary>
public static class ProcessLimits
{
    /// <summary>The least address-space limit a command is started under (its work needs more).</summary>
    public const long AddressSpaceNeeded = 4L << 30;

    /// <summary>The least open-files limit a command is started under (the usual default is 1024).</summary>
    public const long OpenFilesNeeded = 256;

    const int RlimitNoFile = 7, RlimitAs = 9; // Linux's RLIMIT_NOFILE, RLIMIT_AS (x86-64 and arm64)

    /// <summary>Throws <see cref="ProcessLimitException"/> (exit 2) when a limit is below what every command needs.</summary>
    public static void CheckBeforeWork()
    {
        CheckAddressSpace(Soft(RlimitAs));
        CheckOpenFiles(Soft(RlimitNoFile));
    }

    /// <summary>Refuses an address-space limit (bytes; null: none) below <see cref="AddressSpaceNeeded"/>.</summary>
    public static void CheckAddressSpace(long? limit)
    {
        if (limit is long bytes && bytes < AddressSpaceNeeded)
            throw new ProcessLimitException($"the address-space limit (ulimit -v) is {CommandLine.ByteSize.Describe(bytes)}: libtorch and the .NET runtime map about {CommandLine.ByteSize.Describe(AddressSpaceNeeded)} before any work, and the work needs more (a tiny export: 5 GB); raise it (ulimit -v unlimited)");
    }

    /// <summary>Refuses an open-files limit (null: none) below <see cref="OpenFilesNeeded"/>.</summary>
    public static void CheckOpenFiles(long? limit)
    {
        if (limit is long files && files < OpenFilesNeeded)
            throw new ProcessLimitException($"the open-files limit (ulimit -n) is {files}: croc-host holds about 100 files open before any work (the runtime's libraries) and more while it works; it needs at least {OpenFilesNeeded}: raise it (ulimit -n 1024)");
    }

    /// <summary>The soft limit of <paramref name="resource"/>, or null when there is none (or it cannot be read).</summary>
    static long? Soft(int resource)
    {
        if (!OperatingSystem.IsLinux()) return null;
        try { return Native.getrlimit(resource, out var limit) == 0 && limit.Current < long.MaxValue ? (long)limit.Current : null; }
        catch (Exception e) when (e is DllNotFoundException or EntryPointNotFoundException) { return null; }
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
