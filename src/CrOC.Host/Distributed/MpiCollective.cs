using TorchSharp;

namespace CrOC.Host.Distributed;

/// <summary>
/// The collectives over Open MPI's COMM_WORLD. Buffers are passed to MPI by address: a contiguous
/// CPU tensor directly, any other tensor (a CUDA one, a strided view) through a contiguous host copy.
/// The start (MPI_Init and the ranks' first exchange) and each call but <see cref="AwaitLocalWork"/>
/// (also what <see cref="AwaitRootWork"/> is on ranks other than 0: a slow disk is no hung rank) runs
/// under a <see cref="Watchdog"/>.
/// </summary>
public sealed class MpiCollective : ICollective
{
    /// <summary>MPI counts are int: larger buffers go in chunks of this many elements.</summary>
    const long ChunkElements = 1L << 28;

    readonly OpenMpi mpi;
    readonly Watchdog watchdog;
    bool finalized;

    public int Rank { get; }
    public int World { get; }
    public int LocalWorld { get; }
    public int LocalRank { get; }

    /// <summary>The least time MPI_Init may wait for the other processes, whatever a short collective timeout says.</summary>
    public static readonly TimeSpan StartAtLeast = TimeSpan.FromSeconds(30);

    MpiCollective(OpenMpi mpi, TimeSpan timeout)
    {
        this.mpi = mpi;
        // MPI_Init and the split wait for every process of the run: one that never starts MPI (it failed
        // or exited first, or waits for its input) would hold this one there forever. The limit also
        // covers the processes' start-up gap (a loaded or cold machine): the collectives' timeout, StartAtLeast at least.
        var starting = new Watchdog(timeout > StartAtLeast ? timeout : StartAtLeast, Watchdog.ExitProcess(Collectives.LauncherRank()));
        using (starting.Guard("the start of the run (MPI_Init)", "another process of the run has not joined (it ended or failed before starting MPI, or is still waiting for its input)"))
        {
            mpi.Init();
            Rank = mpi.Rank();
            World = mpi.Size();
            (LocalRank, LocalWorld) = mpi.OnThisMachine();
        }
        watchdog = new Watchdog(timeout, Watchdog.ExitProcess($"rank {Rank}/{World}"));
    }

    /// <summary>Initialises MPI (the process must have been started by mpirun or another launcher).</summary>
    public static MpiCollective Start(TimeSpan timeout) => new(OpenMpi.Load(), timeout);

    IntPtr TypeOf(torch.Tensor t) => t.dtype switch
    {
        torch.ScalarType.Float32 => mpi.Float,
        torch.ScalarType.Float64 => mpi.Double,
        _ => throw new ArgumentException($"collectives take float32 or float64 tensors, not {t.dtype}"),
    };

    /// <summary>Runs <paramref name="op"/> on (address, count) chunks of a contiguous host copy
    /// of <paramref name="tensor"/> (the tensor itself when it is one), then copies back.</summary>
    void OnHostBuffer(torch.Tensor tensor, string what, Action<IntPtr, int> op)
    {
        using var scope = torch.NewDisposeScope();
        bool direct = tensor.device_type == DeviceType.CPU && tensor.is_contiguous();
        var buffer = direct ? tensor : tensor.detach().cpu().contiguous();
        long elements = buffer.numel(), itemSize = buffer.ElementSize;
        var start = CrOC.Math.Arena.address(buffer);
        using (watchdog.Guard($"{what} of {elements * itemSize / 1e6:F1} MB"))
            for (long offset = 0; offset < elements; offset += ChunkElements)
                op(start + (nint)(offset * itemSize), (int)System.Math.Min(ChunkElements, elements - offset));
        if (!direct)
            using (torch.no_grad()) tensor.copy_(buffer);
    }

    public void AllReduceSum(torch.Tensor tensor)
    {
        var type = TypeOf(tensor);
        OnHostBuffer(tensor, "all-reduce", (p, n) => mpi.AllReduceInPlace(p, n, type, mpi.Sum));
    }

    public void Broadcast(torch.Tensor tensor, int root = 0)
    {
        var type = TypeOf(tensor);
        OnHostBuffer(tensor, "broadcast", (p, n) => mpi.Broadcast(p, n, type, root));
    }

    public torch.Tensor AllGather(torch.Tensor tensor)
    {
        var type = TypeOf(tensor);
        var send = tensor.detach().cpu().contiguous().flatten();
        if (send.numel() > int.MaxValue / World) throw new ArgumentException("all-gather of a buffer this large is not supported");
        var gathered = torch.empty(World * send.numel(), dtype: send.dtype);
        using (watchdog.Guard($"all-gather of {send.numel()} values"))
            mpi.AllGather(CrOC.Math.Arena.address(send), (int)send.numel(), type, CrOC.Math.Arena.address(gathered));
        return gathered.to(tensor.device);
    }

    public void Barrier()
    {
        using (watchdog.Guard("barrier")) mpi.Barrier();
    }

    public void AwaitLocalWork() => mpi.SleepingBarrier(TimeSpan.FromMilliseconds(50));

    public void AwaitRootWork()
    {
        if (Rank != 0) { AwaitLocalWork(); return; }
        using (watchdog.Guard("barrier after rank 0's work")) AwaitLocalWork(); // the same MPI barrier on every rank
    }

    /// <summary>Ends the whole job from this rank (all ranks exit).</summary>
    public void Abort(int code) => mpi.Abort(code);

    public void Dispose()
    {
        if (finalized) return;
        finalized = true;
        mpi.FinalizeMpi();
    }
}
