namespace CrOC.Host.Distributed;

/// <summary>A command that runs as one process, started as one of several by an MPI launcher.</summary>
public sealed class NotDataParallelException(string message) : Exception(message), CommandLine.IBadInput;

/// <summary>Which commands run data-parallel under mpirun; the others are refused there, since each of
/// the processes would do the whole work and write the same outputs (two exports racing for one set of
/// files, benchmarks timing each other).</summary>
public static class DataParallelCommands
{
    public static readonly IReadOnlySet<string> Names = new HashSet<string>(StringComparer.Ordinal) { "train", "bench", "bench-allreduce" };

    /// <summary>The process count the launcher gave this job (Open MPI's, else PMI's variable), or 1
    /// where none is known.</summary>
    public static int LaunchedProcesses() =>
        int.TryParse(Environment.GetEnvironmentVariable("OMPI_COMM_WORLD_SIZE") ?? Environment.GetEnvironmentVariable("PMI_SIZE"), out int n) && n > 1 ? n : 1;

    /// <summary>Refuses <paramref name="command"/> when it does not run data-parallel and a launcher
    /// started more than one process of it.</summary>
    public static void CheckLaunch(string command)
    {
        if (!Names.Contains(command) && LaunchedProcesses() is var n and > 1)
            throw new NotDataParallelException($"runs as one process, and mpirun started {n} of it ({Collectives.LauncherRank()}): start it without mpirun (only {string.Join(", ", Names)} run data-parallel)");
    }
}
