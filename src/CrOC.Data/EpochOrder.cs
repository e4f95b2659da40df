namespace CrOC.Data;

/// <summary>
/// Which samples a process sees in an epoch and in which batches: one permutation per (seed, epoch)
/// shared by all ranks, cut into global batches of W·B (the incomplete last one dropped, as
/// DistributedSampler's drop_last); rank r's batch j is the slice [(j·W + r)·B, (j·W + r + 1)·B).
/// Sharding by whole batches (not sample by sample, as DistributedSampler) keeps sub-batch g = j·W + r
/// the same images whatever W is: W ranks × B equal one rank accumulating W micro-batches of B.
/// </summary>
public sealed record EpochOrder(int DatasetSize, int Batch, int Rank = 0, int World = 1, bool Shuffle = true)
{
    /// <summary>The epoch's order of all samples, the same on every rank.</summary>
    public int[] Permutation(long seed, long epoch)
    {
        if (DatasetSize <= 0) throw new DatasetException("the dataset is empty");
        if (World < 1 || Rank < 0 || Rank >= World) throw new ArgumentException($"rank {Rank} of world {World}");
        return Shuffle ? new SampleRandom(seed, epoch, -1).Permutation(DatasetSize) : Enumerable.Range(0, DatasetSize).ToArray();
    }

    /// <summary>Where slot <paramref name="slot"/> of this rank's batch <paramref name="batch"/> sits in <see cref="Permutation"/>.</summary>
    public int GlobalPosition(int batch, int slot) => (batch * World + Rank) * Batch + slot;

    /// <summary>Sample indices of this rank for <paramref name="epoch"/>, batch after batch.</summary>
    public int[] Indices(long seed, long epoch)
    {
        var order = Permutation(seed, epoch);
        return Enumerable.Range(0, BatchesPerEpoch * Batch).Select(i => order[GlobalPosition(i / Batch, i % Batch)]).ToArray();
    }

    /// <summary>Batches per epoch on this rank (drop_last on the global batch W·B).</summary>
    public int BatchesPerEpoch => DatasetSize / (World * Batch);

    /// <summary>The sample indices of batch <paramref name="batch"/> of <paramref name="epoch"/>.</summary>
    public int[] BatchIndices(long seed, long epoch, int batch) => Indices(seed, epoch).Skip(batch * Batch).Take(Batch).ToArray();
}
