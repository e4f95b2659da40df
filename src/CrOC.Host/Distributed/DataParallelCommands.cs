namespace CrOC.Host.Distributed;

/// <summary>A command that runs as one process, started as one of several by an MPI launcher.</summary>
public sealed class NotDataParallelException(string message) : Exception(message), CommandLine.IBadInput;

/// <summary>Which commands run under mpirun (train and bench data-parallel, bench-allreduce between the
/// processes); the others are refused there, since each of the processes would do the whole work and
/// write the same outputs (two exports racing for one set of files, benchmarks timing each other).</summary>
public static class DataParallelCommands
{
    static readonly string[] Names = ["train", "bench", "bench-allreduce"];

    /// <summary>Refuses <paramref name="command"/> when it runs as one process and a launcher
    /// started more than one copy of it.</summary>
    public static void CheckLaunch(string command)
    {
        if (!Names.Contains(command) && Collectives.LaunchedProcesses() is var n and > 1)
            throw new NotDataParallelException($"runs as one process, and mpirun started {n} copies of it ({Collectives.LauncherRank()}): start it without mpirun (only {string.Join(", ", Names)} run under mpirun)");
    }
}
