using System.Collections.Concurrent;
using System.Diagnostics;
using TorchSharp;

namespace CrOC.Data;

public sealed record LoaderOptions(int Batch, int Workers = 2, int Prefetch = 4, long Seed = 0, int Rank = 0, int World = 1)
{
    /// <summary>The batches train's loader (and bench-data's, timing it) holds ready with <paramref name="workers"/> workers.</summary>
    public static int PrefetchFor(int workers) => System.Math.Max(2, 2 * workers);
}

/// <summary>A batch as CPU tensors, ready for CrOC.Math. Rows are view-major: the first B rows of
/// <see cref="Globals"/> are view 1, the next B view 2 (the teacher's and student's input).</summary>
public sealed class Batch : IDisposable
{
    /// <summary>(2B, 3, S, S) normalised pixels.</summary>
    public required torch.Tensor Globals { get; init; }
    /// <summary>(2B, N, 2) original-image (x, y) patch centres.</summary>
    public required torch.Tensor GlobalPositions { get; init; }
    /// <summary>(L·B, 3, s, s) local crops, local-crop-major, or null.</summary>
    public torch.Tensor? Locals { get; init; }
    public torch.Tensor? LocalPositions { get; init; }
    /// <summary>Dataset indices of the B samples (after replacing undecodable files).</summary>
    public required int[] Indices { get; init; }

    public void Dispose()
    {
        Globals.Dispose();
        GlobalPositions.Dispose();
        Locals?.Dispose();
        LocalPositions?.Dispose();
    }
}

/// <summary>Counters of a loader, safe to read while it runs.</summary>
public sealed class DataStats
{
    readonly ConcurrentDictionary<string, string> skipped = new(StringComparer.Ordinal);
    long waitTicks;

    /// <summary>Undecodable files (path → reason), each counted once.</summary>
    public IReadOnlyDictionary<string, string> Skipped => skipped;
    /// <summary>Time the consumer spent waiting for batches.</summary>
    public TimeSpan DataWait => TimeSpan.FromTicks(Interlocked.Read(ref waitTicks));

    internal bool AddSkipped(string path, string reason) => skipped.TryAdd(path, reason);
    internal void AddWait(TimeSpan t) => Interlocked.Add(ref waitTicks, t.Ticks);
}

/// <summary>
/// Turns image files into batches of augmented views and patch positions. Worker threads build
/// whole batches ahead of the consumer within a bounded window (<see cref="LoaderOptions.Prefetch"/>
/// batches), so memory stays bounded whatever the dataset size. Every sample's augmentation is
/// seeded by (seed, epoch, index), so the batches are identical with any number of workers. A file
/// that fails to decode is skipped, counted once, and replaced by the next sample of the epoch order.
/// </summary>
public sealed class ImageLoader
{
    const int MaxReplacements = 64;
    readonly IReadOnlyList<ImageEntry> files;
    readonly MultiCropSpec spec;
    readonly LoaderOptions options;
    readonly ImageDecoder decoder;
    readonly Action<string> warn;
    /// <summary>By file index: decoded earlier in this process. A row of failures that are all missing files (or
    /// the storage's), one of them found by the search or read before, is the storage's failure (an unmounted
    /// or deleted dataset), not the data's (exit 2, "is this an image dataset?", once). A list's file never
    /// read here cannot be told from one that was never there (a list naming /nonexistent/a.jpg).</summary>
    readonly bool[] decodedOnce;

    public DataStats Stats { get; } = new();
    public EpochOrder Order { get; }

    /// <summary>Batches of <paramref name="files"/>' views; a skipped file is reported once to
    /// <paramref name="warn"/> (called from the workers; default: stderr).</summary>
    public ImageLoader(IReadOnlyList<ImageEntry> files, MultiCropSpec spec, LoaderOptions options, ImageDecoder? decoder = null, Action<string>? warn = null)
    {
        this.warn = warn ?? (line => Console.Error.WriteLine($"croc-data: {line}"));
        if (files.Count == 0) throw new DatasetException("the dataset is empty");
        if (options.Batch < 1) throw new ArgumentException("batch must be >= 1");
        this.files = files;
        decodedOnce = new bool[files.Count];
        this.spec = spec;
        this.options = options;
        this.decoder = decoder ?? new ImageDecoder();
        Order = new EpochOrder(files.Count, options.Batch, options.Rank, options.World);
        if (Order.BatchesPerEpoch == 0)
            throw new DatasetException($"{Counted.Of(files.Count, "image gives", "images give")} no full batch of {options.Batch} per process (world size {options.World})");
    }

    public int BatchesPerEpoch => Order.BatchesPerEpoch;

    /// <summary>The batches of <paramref name="epoch"/> from <paramref name="firstBatch"/> on.
    /// Breaking out of the loop (or cancelling) stops the workers.</summary>
    public IEnumerable<Batch> Epoch(long epoch, int firstBatch = 0, CancellationToken cancel = default)
    {
        var order = Order.Permutation(options.Seed, epoch);
        int count = Order.BatchesPerEpoch;
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(cancel);
        if (options.Workers <= 0)
        {
            for (int b = firstBatch; b < count; b++)
            {
                stop.Token.ThrowIfCancellationRequested();
                var watch = Stopwatch.StartNew();
                var host = Build(order, epoch, b);
                Stats.AddWait(watch.Elapsed);
                yield return host.ToTensors();
            }
            yield break;
        }
        // slot b is cleared once the consumer has taken batch b: a finished slot would otherwise keep
        // that batch's pixels alive until the epoch ends
        var slots = Enumerable.Range(0, count).Select(_ => new TaskCompletionSource<HostBatch>(TaskCreationOptions.RunContinuationsAsynchronously)).ToArray<TaskCompletionSource<HostBatch>?>();
        var window = new SemaphoreSlim(System.Math.Max(1, options.Prefetch));
        int next = firstBatch - 1;
        var workers = Enumerable.Range(0, options.Workers).Select(w => new Thread(() =>
        {
            try
            {
                while (true)
                {
                    window.Wait(stop.Token);
                    int b = Interlocked.Increment(ref next);
                    if (b >= count) return;
                    var slot = slots[b]!; // not yet taken: the consumer clears it only after this sets it
                    try { slot.SetResult(Build(order, epoch, b)); }
                    catch (Exception e) { slot.SetException(e); }
                }
            }
            catch (OperationCanceledException) { }
        }) { IsBackground = true, Name = $"croc-data-{w}" }).ToList();
        workers.ForEach(t => t.Start());
        try
        {
            for (int b = firstBatch; b < count; b++)
            {
                var watch = Stopwatch.StartNew();
                var host = slots[b]!.Task.WaitAsync(stop.Token).GetAwaiter().GetResult();
                slots[b] = null;
                Stats.AddWait(watch.Elapsed);
                window.Release();
                yield return host.ToTensors();
            }
        }
        finally
        {
            stop.Cancel();
            foreach (var t in workers) t.Join();
            window.Dispose();
        }
    }

    HostBatch Build(int[] order, long epoch, int batch)
    {
        int size = options.Batch;
        var views = new AugmentedView[size][];
        var indices = new int[size];
        RgbImage? previous = null; // its buffer is reused for the next image of the same size
        for (int s = 0; s < size; s++)
        {
            int position = Order.GlobalPosition(batch, s);
            // every failure of this row was the storage's; or each was the storage's or a missing file, and some file seen earlier is gone
            bool storage = true, storageOrMissing = true, vanished = false;
            for (int attempt = 0; ; attempt++)
            {
                if (attempt >= System.Math.Min(MaxReplacements, order.Length))
                    throw storage || (storageOrMissing && vanished)
                        ? new IOException(vanished
                            ? $"{attempt} files in a row could not be read near position {position}, files found or read before among them: is the data's storage still there (unmounted, deleted)? ({Stats.Skipped.Count} skipped so far)"
                            : $"{attempt} files in a row could not be read near position {position}, each after {decoder.StorageRetryWaits.Count} retries: is the storage reachable? ({Stats.Skipped.Count} skipped so far)")
                        : new DatasetException($"{attempt} files in a row could not be decoded near position {position}{(attempt >= order.Length ? " (every file of the dataset)" : "")}: is this an image dataset? ({Stats.Skipped.Count} skipped so far)");
                int index = order[(position + attempt) % order.Length]; // the next sample of the epoch's global order (the same whatever the number of ranks)
                try
                {
                    var image = decoder.Decode(files[index], previous);
                    previous = image;
                    decodedOnce[index] = true;
                    // the views' stream is the position's, so a replacement is not a twin of the next slot's sample
                    views[s] = spec.Apply(image, options.Seed, epoch, order[position % order.Length]);
                    indices[s] = index;
                    break;
                }
                catch (DecodeException e)
                {
                    storage &= e.Storage;
                    storageOrMissing &= e.Storage || e.Missing;
                    vanished |= e.Missing && (decodedOnce[index] || !files[index].NamedOnly);
                    if (Stats.AddSkipped(e.Path, e.Reason)) warn($"skipped {e.Said}");
                }
            }
        }
        return new HostBatch(spec, views, indices);
    }

    /// <summary>A batch as plain arrays, built on a worker thread; tensors are made by the consumer.</summary>
    sealed record HostBatch(MultiCropSpec Spec, AugmentedView[][] Views, int[] Indices)
    {
        public Batch ToTensors()
        {
            var (globals, globalPositions) = Stack(Spec.Global1, Enumerable.Range(0, 2).SelectMany(v => Views.Select(s => s[v])).ToList());
            torch.Tensor? locals = null, localPositions = null;
            if (Spec.LocalCount > 0)
                (locals, localPositions) = Stack(Spec.Local!, Enumerable.Range(2, Spec.LocalCount).SelectMany(v => Views.Select(s => s[v])).ToList());
            return new Batch { Globals = globals, GlobalPositions = globalPositions, Locals = locals, LocalPositions = localPositions, Indices = Indices };
        }

        static (torch.Tensor Pixels, torch.Tensor Positions) Stack(ViewSpec view, List<AugmentedView> rows)
        {
            int pixels = 3 * view.Size * view.Size, tokens = view.Grid * view.Grid;
            var images = torch.empty([rows.Count, 3, view.Size, view.Size]);
            var positions = torch.empty([rows.Count, tokens, 2]);
            using var imageMemory = images.data<float>(); // each view copied once, into the tensor
            using var positionMemory = positions.data<float>();
            for (int r = 0; r < rows.Count; r++)
            {
                imageMemory.CopyFrom(rows[r].Pixels, 0, (long)r * pixels);
                positionMemory.CopyFrom(rows[r].Positions, 0, (long)r * tokens * 2);
            }
            return (images, positions);
        }
    }
}
