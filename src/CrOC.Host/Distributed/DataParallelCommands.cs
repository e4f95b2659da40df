namespace CrOC.Host.Distributed;

/// <summary>A command that runs as one process, started as one of several by an MPI launcher.</summary>
public sealed class NotDataParallelException(string message) : Exception(message), CommandLine.IBadInput;

/// <summary>Which commands run under mpirun (train and bench data-parallel, bench-allreduce between the
/// processes); the others are refused there, since each of the processes would do the whole work and
/// write the same outputs (two exports racing for one set of files, benchmarks timing each other).
/// The data-parallel ones need Open MPI's launch (mpirun, or srun --mpi=pmix): under a PMI-only launch
/// (MPICH's mpiexec, srun --mpi=pmi2) no copy would know the others.</summary>
public static class DataParallelCommands
{
    static readonly string[] Names = ["train", "bench", "bench-allreduce"];

    /// <summary>Refuses <paramref name="command"/> when a launcher started more than one copy of it and
    /// either it runs as one process or the launch is not one its collective can join.</summary>
    public static void CheckLaunch(string command)
    {
        int n = Collectives.LaunchedProcesses();
        if (n == 1) return;
        if (!Names.Contains(command))
            throw new NotDataParallelException($"runs as one process, and mpirun started {n} copies of it ({Collectives.LauncherRank()}): start it without mpirun (only {string.Join(", ", Names)} run under mpirun)");
        if (!Collectives.LaunchedByMpi)
            throw new NotDataParallelException($"runs data-parallel under Open MPI's launch only (mpirun, or srun --mpi=pmix), and a PMI launcher (MPICH's mpiexec, srun --mpi=pmi2) started {n} copies of it ({Collectives.LauncherRank()}), each of which would run alone on the same outputs: start it with Open MPI's mpirun");
    }
}
