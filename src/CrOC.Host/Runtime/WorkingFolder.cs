namespace CrOC.Host.Runtime;

/// <summary>The process's working folder, which a shell keeps after the folder is deleted: libtorch's
/// MKL then ends the process at load ("Cannot load libtorch_cpu.so", exit 2), and relative paths
/// name nothing.</summary>
public static class WorkingFolder
{
    /// <summary>One line saying the working folder is gone, or null while it exists.</summary>
    public static string? Gone()
    {
        try { return Directory.Exists(Directory.GetCurrentDirectory()) ? null : Line; }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { return Line; }
    }

    const string Line = "croc-host: the working folder no longer exists (deleted while this shell was in it): cd to an existing folder and run again";
}
