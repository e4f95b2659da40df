namespace CrOC.Data;

/// <summary>
/// Which samples a process sees in an epoch and in which batches, as PyTorch's DistributedSampler
/// with shuffle and drop_last: one permutation per (seed, epoch) shared by all ranks, padded by
/// wrapping to a multiple of the world size, rank r taking positions r, r+W, …; then consecutive
/// batches of B with the incomplete last one dropped.
/// </summary>
public sealed record EpochOrder(int DatasetSize, int Batch, int Rank = 0, int World = 1, bool Shuffle = true)
{
    /// <summary>Sample indices of this rank for <paramref name="epoch"/>.</summary>
    public int[] Indices(long seed, long epoch)
    {
        if (DatasetSize <= 0) throw new DatasetException("the dataset is empty");
        if (World < 1 || Rank < 0 || Rank >= World) throw new ArgumentException($"rank {Rank} of world {World}");
        var order = Shuffle ? new SampleRandom(seed, epoch, -1).Permutation(DatasetSize) : Enumerable.Range(0, DatasetSize).ToArray();
        int perRank = (DatasetSize + World - 1) / World;
        return Enumerable.Range(0, perRank).Select(i => order[(Rank + i * World) % DatasetSize]).ToArray();
    }

    /// <summary>Batches per epoch on this rank (drop_last).</summary>
    public int BatchesPerEpoch => (DatasetSize + World - 1) / World / Batch;

    /// <summary>The sample indices of batch <paramref name="batch"/> of <paramref name="epoch"/>.</summary>
    public int[] BatchIndices(long seed, long epoch, int batch) => Indices(seed, epoch).Skip(batch * Batch).Take(Batch).ToArray();
}
