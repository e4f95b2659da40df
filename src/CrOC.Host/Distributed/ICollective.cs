using TorchSharp;

namespace CrOC.Host.Distributed;

/// <summary>A distributed run cannot go on: MPI missing or failing (exit 1).</summary>
public sealed class DistributedException(string message) : Exception(message), CommandLine.IReportedFailure;

/// <summary>The processes of a run were started with different settings or datasets: bad input
/// (exit 2), met by every process at the same check.</summary>
public sealed class RanksDisagreeException(string message) : Exception(message), CommandLine.IBadInput;

/// <summary>
/// The processes of one run and the collective operations between them. Every rank must call the
/// same operations in the same order with tensors of the same shape and dtype (float32 or float64).
/// Operations change the tensor in place (wherever it lives: a CUDA tensor is staged through host
/// memory).
/// </summary>
public interface ICollective : IDisposable
{
    int Rank { get; }
    int World { get; }
    /// <summary>Processes of this run on this machine (threads are shared among them).</summary>
    int LocalWorld { get; }
    /// <summary>This process's index among them (its GPU with --device cuda).</summary>
    int LocalRank { get; }
    bool IsRoot => Rank == 0;

    /// <summary>Element-wise sum over all ranks, the result on every rank.</summary>
    void AllReduceSum(torch.Tensor tensor);
    /// <summary>Every rank receives <paramref name="root"/>'s values.</summary>
    void Broadcast(torch.Tensor tensor, int root = 0);
    /// <summary>(n) on each rank → (W·n) in rank order, on every rank.</summary>
    torch.Tensor AllGather(torch.Tensor tensor);
    void Barrier();
    /// <summary>A barrier without the collective timeout that sleeps while it waits: for a wait
    /// on the other ranks' local work, which ends but may outlast any timeout (generating the
    /// synthetic set). A rank that fails meanwhile aborts the job, or mpirun ends it.</summary>
    void AwaitLocalWork();
    /// <summary>A barrier after rank 0's own work (a checkpoint write, however slow its storage):
    /// the others wait without the collective timeout, rank 0 under it from the moment it arrives
    /// (a rank that hangs meanwhile is still caught).</summary>
    void AwaitRootWork();
    /// <summary>Ends every process of the run with <paramref name="code"/> (after an error on this
    /// rank: the others must not wait for it).</summary>
    void Abort(int code);
}

/// <summary>One process: every collective is the identity.</summary>
public sealed class SingleProcess : ICollective
{
    public int Rank => 0;
    public int World => 1;
    public int LocalWorld => 1;
    public int LocalRank => 0;
    public void AllReduceSum(torch.Tensor tensor) { }
    public void Broadcast(torch.Tensor tensor, int root = 0) { }
    public torch.Tensor AllGather(torch.Tensor tensor) => tensor.clone();
    public void Barrier() { }
    public void AwaitLocalWork() { }
    public void AwaitRootWork() { }
    public void Abort(int code) => Environment.Exit(code);
    public void Dispose() { }
}
