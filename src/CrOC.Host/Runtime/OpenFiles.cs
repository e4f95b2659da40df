namespace CrOC.Host.Runtime;

/// <summary>An open-files limit (`ulimit -n`) below what a command holds open.</summary>
public sealed class OpenFilesException(string message) : Exception(message), CommandLine.IBadInput;

/// <summary>
/// The open-files limit (RLIMIT_NOFILE, `ulimit -n`). The runtime keeps each loaded assembly open: about
/// 100 descriptors before a training step (measured: train's defaults, 2 cores), more with data workers
/// and MPI. Below that a command failed wherever the descriptors ran out: as an image skipped, a library
/// that did not load, or a native abort (eval-knn at `ulimit -n` 80: "PAL_SEHException", exit 134; 82: a
/// segmentation fault).
/// </summary>
public static class OpenFiles
{
    /// <summary>The least limit a command is started under (the usual default is 1024).</summary>
    public const long Needed = 256;

    /// <summary>Throws <see cref="OpenFilesException"/> (exit 2) when <paramref name="limit"/> is below <see cref="Needed"/>.</summary>
    public static void Check(long? limit)
    {
        if (limit is long files && files < Needed)
            throw new OpenFilesException($"the open-files limit (ulimit -n) is {files}: croc-host holds about 100 files open before any work (the runtime's libraries) and more while it works; it needs at least {Needed}: raise it (ulimit -n 1024)");
    }
}
