using System.Runtime.InteropServices;
using TorchSharp;

namespace CrOC.Host.Distributed;

/// <summary>How a process finds its collective, and the operations a data-parallel step is made of.</summary>
public static class Collectives
{
    /// <summary>Variables an MPI launcher sets in each process it starts (Open MPI's mpirun, PMIx launchers such as srun).</summary>
    static readonly string[] LauncherVariables = ["OMPI_COMM_WORLD_SIZE", "PMIX_RANK"];

    /// <summary>The rank a launcher gives each process it starts: Open MPI's, PMIx's, PMI's (in that order of trust).</summary>
    static readonly string[] RankVariables = ["OMPI_COMM_WORLD_RANK", "PMIX_RANK", "PMI_RANK"];

    /// <summary>Whether a launcher (Open MPI's, PMIx's, PMI's, one process or several) started this process.</summary>
    public static bool StartedByLauncher => RankVariables.Any(v => Environment.GetEnvironmentVariable(v) is not null);

    /// <summary>"rank R/W" as the launcher numbers this process (Open MPI's, else PMIx's, else PMI's variables; W
    /// Open MPI's, else the count <see cref="LaunchedProcesses"/> reads), known before MPI_Init: the same as MPI's rank
    /// and size once it returns.</summary>
    public static string LauncherRank()
    {
        string? Variable(string name) => Environment.GetEnvironmentVariable(name);
        var rank = RankVariables.Select(Variable).FirstOrDefault(v => v is not null) ?? "?";
        var size = Variable("OMPI_COMM_WORLD_SIZE") ?? (LaunchedProcesses() is var n and > 1 ? n.ToString(System.Globalization.CultureInfo.InvariantCulture) : null);
        return size is not null ? $"rank {rank}/{size}" : $"rank {rank}";
    }

    public static bool LaunchedByMpi => LauncherVariables.Any(v => Environment.GetEnvironmentVariable(v) is not null);

    /// <summary>The process count the launcher gave this job: Open MPI's variable, else under a PMIx
    /// launch (srun --mpi=pmix) Slurm's task count, else PMI's (MPICH, srun --mpi=pmi2); 1 where none is known.</summary>
    public static int LaunchedProcesses()
    {
        string? Variable(string name) => Environment.GetEnvironmentVariable(name);
        var size = Variable("OMPI_COMM_WORLD_SIZE") ?? (Variable("PMIX_RANK") is not null ? Variable("SLURM_STEP_NUM_TASKS") : null) ?? Variable("PMI_SIZE");
        return int.TryParse(size, out int n) && n > 1 ? n : 1;
    }

    /// <summary>Whether an environment variable is a launcher's (Open MPI's, PMIx's, PMI's): a child
    /// process this one starts must not inherit them, or it would start MPI as a copy of this rank.</summary>
    public static bool IsLauncherVariable(string name) =>
        name.StartsWith("OMPI_", StringComparison.Ordinal) || name.StartsWith("PMIX_", StringComparison.Ordinal) || name.StartsWith("PMI_", StringComparison.Ordinal);

    /// <summary>MPI when the process was started by an MPI launcher, else the single process
    /// (which needs no MPI library installed).</summary>
    public static ICollective FromEnvironment(TimeSpan timeout) =>
        LaunchedByMpi ? MpiCollective.Start(timeout) : new SingleProcess();

    [DllImport("libc", EntryPoint = "sysconf")] static extern long SysConf(int name);
    const int OnlineProcessors = 84; // _SC_NPROCESSORS_ONLN (glibc)

    /// <summary>The machine's online cores (all of them, whatever this process is bound to).</summary>
    static int MachineCores()
    {
        long online = SysConf(OnlineProcessors);
        return online > 0 ? (int)online : Environment.ProcessorCount;
    }

    /// <summary>torch threads for one process: the machine's cores shared among its processes,
    /// but no more than the cores this process may run on (mpirun binds each process to one core
    /// when it starts one or two; .NET's ProcessorCount already counts only the allowed ones).</summary>
    public static int DefaultThreads(ICollective c) =>
        System.Math.Max(1, System.Math.Min(Environment.ProcessorCount, MachineCores() / c.LocalWorld));

    /// <summary>The warning for <paramref name="localWorld"/> processes of <paramref name="threads"/>
    /// threads each on a machine of <paramref name="cores"/> (default: this one's) cores, when
    /// they ask for more threads than there are cores; else null.</summary>
    public static string? Oversubscription(int threads, int localWorld, int? cores = null)
    {
        int available = cores ?? MachineCores();
        return threads * localWorld <= available ? null
            : $"warning: {localWorld} process(es) × {threads} threads ask for more than this machine's {available} cores: the threads then wait on each other (--threads 0 shares the cores)";
    }

    /// <summary>Average over ranks, in place.</summary>
    public static void AllReduceMean(this ICollective c, torch.Tensor tensor)
    {
        if (c.World == 1) return;
        c.AllReduceSum(tensor);
        using (torch.no_grad()) Math.Tensors.divInPlace(tensor, c.World);
    }

    /// <summary>One value per rank, in rank order.</summary>
    public static double[] AllGatherValues(this ICollective c, double value)
    {
        using var scope = torch.NewDisposeScope();
        return c.AllGather(torch.tensor(new[] { value }, torch.float64)).data<double>().ToArray();
    }

    /// <summary>Replaces every rank's tensors by rank 0's (the same starting point everywhere).</summary>
    public static void BroadcastFromRoot(this ICollective c, IEnumerable<torch.Tensor> tensors)
    {
        if (c.World == 1) return;
        foreach (var t in tensors) c.Broadcast(t);
    }

    /// <summary>Bucket size of the gradient all-reduce (as PyTorch DDP's 25 MB).</summary>
    public const long BucketBytes = 25L << 20;

    /// <summary>
    /// Averages the gradients of <paramref name="parameters"/> over the ranks: each bucket of
    /// ≤ <paramref name="bucketBytes"/> of gradients (one larger gradient alone) is packed into one flat buffer, all-reduced in one
    /// call, divided by W and unpacked. Parameters without a gradient are skipped (every rank has
    /// the same ones).
    /// </summary>
    public static void AverageGradients(this ICollective c, IEnumerable<torch.Tensor> parameters, long bucketBytes = BucketBytes)
    {
        if (c.World == 1) return;
        using var scope = torch.NewDisposeScope(); // the .grad wrappers
        using var noGrad = torch.no_grad();
        var gradients = parameters.Select(p => p.grad).OfType<torch.Tensor>().ToList();
        foreach (var bucket in Buckets(gradients, bucketBytes))
        {
            using var bucketScope = torch.NewDisposeScope(); // one flat buffer alive at a time
            var flat = torch.cat(bucket.Select(g => g.flatten()).ToList());
            c.AllReduceMean(flat);
            long offset = 0;
            foreach (var g in bucket)
            {
                g.copy_(flat.narrow(0, offset, g.numel()).view_as(g));
                offset += g.numel();
            }
        }
    }

    static IEnumerable<List<torch.Tensor>> Buckets(List<torch.Tensor> gradients, long bucketBytes)
    {
        var bucket = new List<torch.Tensor>();
        long bytes = 0;
        foreach (var g in gradients)
        {
            long size = g.numel() * g.ElementSize;
            if (bucket.Count > 0 && (bytes + size > bucketBytes || g.dtype != bucket[0].dtype))
            {
                yield return bucket;
                (bucket, bytes) = ([], 0);
            }
            bucket.Add(g);
            bytes += size;
        }
        if (bucket.Count > 0) yield return bucket;
    }
}
