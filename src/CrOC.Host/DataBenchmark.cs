using CrOC.Host.CommandLine;
using System.Diagnostics;
using CrOC.Data;
using CrOC.Host.Runtime;

namespace CrOC.Host;

/// <summary>`croc-host bench-data`'s command line.</summary>
[Command("bench-data", "images/s of the data pipeline (decode + two views + augmentation + positions) per worker count", Notes = "Also times 96 px views of the 128 px synthetic scenes (the tiny preset trains at 64 px).")]
public sealed record DataBenchmarkOptions
{
    [Option("images to read (folders, archives, patterns, lists; comma-separated as train's --data)", Value = "ROOT[,ROOT…]", Default = "64 synthetic 640x480 scenes in a temporary folder")]
    public string? Data { get; init; }
    [Option("global view size (a multiple of --patch)", Min = 1, Max = 4096)]
    public int Size { get; init; } = 224;
    [Option("patch size", Min = 1, Max = 1024)]
    public int Patch { get; init; } = 16;
    [Option("images per batch", Min = 1, Max = 100000)]
    public int Batch { get; init; } = 16;
    [Option("batches timed per run", Min = 1, Max = 100000)]
    public int Batches { get; init; } = 6;
    [Option("worker counts to time", Min = 0, Max = 256)]
    public int[] Workers { get; init; } = [1, 2];
}

/// <summary>`croc-host bench-data`: images/s of decode + views + augmentation, per worker count.</summary>
public static class DataBenchmark
{
    /// <summary>Scenes the size of a 640×480 photo, standing in for real JPEGs.</summary>
    static readonly SyntheticScenes.SceneOptions Photos = new(640, 480, 3, 6);

    public static int Run(DataBenchmarkOptions o)
    {
        var (data, size, patch, batch, batches, workers) = (o.Data, o.Size, o.Patch, o.Batch, o.Batches, o.Workers);
        if (size % patch != 0) throw new OptionException($"--size {size} is not a multiple of --patch {patch}");
        CheckMemory(size, batch, workers.Max());

        string? temporary = data is null ? WriteScenes("bench-data", 64, Photos, 90) : null;
        string? tiny = null;
        try
        {
            data ??= temporary!;
            var files = ImageSources.Find(Arguments.PathList(data, "--data"));
            Console.WriteLine($"{Counted.Of(files.Count, "image")} from {data}; batch {batch}, {batches} batches per run");
            var reported = new System.Collections.Concurrent.ConcurrentDictionary<string, bool>();
            Action<string> warnOnce = line => { if (reported.TryAdd(line, true)) Console.Error.WriteLine($"croc-data: {line}"); }; // not per run and worker count
            foreach (var w in workers)
                Measure($"{size}px views, {w} worker(s)", files, MultiCropSpec.Croc(size, patch), batch, batches, w, warnOnce);
            tiny = WriteScenes("bench-tiny", 64, null, 92);
            foreach (var w in workers)
                Measure($"synthetic scenes (96px views of 128px scenes), {w} worker(s)", ImageSources.Find([tiny]), MultiCropSpec.Croc(96, 8), batch, batches, w);
        }
        finally
        {
            foreach (var folder in new[] { temporary, tiny }) if (folder is not null) Directory.Delete(folder, true); // the tiny set was left behind by a failure once
        }
        return 0;
    }

    /// <summary>A new temporary folder of <paramref name="count"/> synthetic scenes as JPEGs of <paramref name="quality"/>
    /// (the default 128 px scenes, or <paramref name="scene"/>); the caller removes it, this when writing fails.</summary>
    static string WriteScenes(string name, int count, SyntheticScenes.SceneOptions? scene, int quality)
    {
        var folder = Path.Combine(Path.GetTempPath(), $"croc-{name}-{Guid.NewGuid():N}");
        Directory.CreateDirectory(folder);
        try
        {
            for (int i = 0; i < count; i++)
                SyntheticScenes.SaveJpeg(SyntheticScenes.Generate(1, i, scene).Image, Path.Combine(folder, $"scene_{i:D3}.jpg"), quality);
            return folder;
        }
        catch
        {
            Directory.Delete(folder, true); // a full or limited disk left it behind once
            throw;
        }
    }

    /// <summary>Images/s of two-worker loading of 32 synthetic 640×480 JPEGs into two views of <paramref name="size"/> px.</summary>
    public static double ImagesPerSecond(int size, int patch, int batch)
    {
        var folder = WriteScenes("bench-step-data", 32, Photos, 90);
        try
        {
            return Measure(null, ImageSources.Find([folder]), MultiCropSpec.Croc(size, patch), System.Math.Min(batch, 16), 32 / System.Math.Min(batch, 16), 2);
        }
        finally
        {
            Directory.Delete(folder, true);
        }
    }

    /// <summary>Refuses, before any work, views that cannot fit in memory (the kernel ended such a run
    /// without a word: --size 4096 --batch 4 peaked at 16.8 GB). Peak resident memory measured at about
    /// 4 × (prefetch + workers) batches of views, each image's two views 2 × 3 × S² float32 (Emerald Rapids
    /// guest: 2048 and 4096 px, batches of 2 to 4, 1 and 2 workers: 10 to 23 batches).</summary>
    static void CheckMemory(int size, int batch, int workers)
    {
        double views = 2.0 * 3 * size * (double)size * sizeof(float) * batch;
        double bytes = 4.0 * (LoaderOptions.PrefetchFor(workers) + System.Math.Max(1, workers)) * views;
        MemoryFit.CheckBytes(bytes, $"--size {size} views of --batch {batch} images with {workers} worker(s)", "use a smaller --size or --batch, or fewer --workers", share: MemoryFit.PassShare);
    }

    static double Measure(string? label, IReadOnlyList<ImageEntry> files, MultiCropSpec spec, int batch, int batches, int workers, Action<string>? warn = null)
    {
        var runs = new List<double>();
        int images = 0;
        for (int run = -1; run < 3; run++) // run −1 warms up (the JIT's optimised code, the file cache), untimed
        {
            var loader = new ImageLoader(files, spec, new LoaderOptions(batch, workers, LoaderOptions.PrefetchFor(workers), Seed: run), warn: warn);
            var watch = Stopwatch.StartNew();
            images = 0;
            foreach (var b in Enumerable.Range(0, int.MaxValue).SelectMany(epoch => loader.Epoch(epoch)).Take(batches)) { images += b.Indices.Length; b.Dispose(); } // past one epoch: --batches 300 of 64 images timed 8 once
            double seconds = watch.Elapsed.TotalSeconds;
            if (label is not null) Console.WriteLine($"  {label} run {run + 2}{(run < 0 ? " (warm-up)" : "")}: {Counted.Of(images, "image")} in {seconds * 1e3:F1} ms");
            if (run >= 0) runs.Add(images / seconds);
        }
        double median = Timing.MedianOf(runs);
        if (label is not null) Console.WriteLine($"{label}: {median:F1} images/s (median of 3 runs of {Counted.Of(images, "image")}; min {runs.Min():F1}, max {runs.Max():F1})");
        return median;
    }
}
