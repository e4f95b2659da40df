using System.Globalization;
using System.Text.Json;
using CrOC.Data;
using CrOC.Host.CommandLine;
using CrOC.Host.Training;
using CrOC.Host.Weights;
using TorchSharp;
using CrOC.Host.Runtime;

namespace CrOC.Host.Evaluation;

/// <summary>`croc-host eval-seg`'s command line.</summary>
[Command("eval-seg", "linear segmentation mIoU of frozen patch tokens (Leopart's protocol, spec §12.1)", Notes = """
    Datasets: PVOC12 as shipped (palette masks; --train-split trainaug); COCO-Things/-Stuff and
    CamVid as 8-bit gray PNG masks of class indices, 255 = ignore.
    On a CPU the full protocol (448 px, 25 epochs with augmentation) takes hours for a ViT-S/16;
    a CPU-sized variant (the real-photo suite's): --size 128 --feature-size 64 --cache-features
    --standardize --epochs 60 --milestone 48 --lr 0.2 --batch 32 --probe-seeds 0,1,2 (features
    computed once, shared by every --probe-seeds probe).
    Example: croc-host eval-seg --weights run/checkpoints/step-00000128.safetensors --size 128 --feature-size 64 --cache-features
    """)]
public sealed record EvalSegOptions : FrozenBackboneOptions
{
    [Option("a Pascal VOC layout (JPEGImages/, SegmentationClass/, ImageSets/Segmentation/)", Value = "ROOT", Default = "the embedded synthetic scenes")]
    public string? Data { get; init; }
    [Option("split the probe is trained on", Value = "NAME")]
    public string TrainSplit { get; init; } = "train";
    [Option("split the probe is evaluated on", Value = "NAME")]
    public string ValSplit { get; init; } = "val";
    [Option("number of classes", Min = 1, Max = 255, Default = "the lines of ROOT/labels.txt, else 21")]
    public int? Classes { get; init; }
    [Option("input size in pixels (a multiple of the patch size)", Min = 1, Max = 4096)]
    public int Size { get; init; } = 448;
    [Option("side of the feature map the probe is trained on (bilinear upsampling)", Min = 1, Max = 4096)]
    public int FeatureSize { get; init; } = 100;
    [Option("probe training epochs", Min = 1, Max = 100000)]
    public int Epochs { get; init; } = 25;
    [Option("SGD learning rate", Min = 0, MinExclusive = true)]
    public double Lr { get; init; } = 0.01;
    [Option("images per probe batch (and per feature pass)", Min = 1, Max = 100000)]
    public int Batch { get; init; } = 60;
    [Option("epoch from which the lr is multiplied by 0.1", Min = 0)]
    public int Milestone { get; init; } = 20;
    [Option("no training augmentation: frozen features computed once (fast on CPUs)")]
    public bool CacheFeatures { get; init; }
    [Option("standardise each feature channel by the training features' mean and std (MAE's affine-free BatchNorm; a linear probe still; needs --cache-features)")]
    public bool Standardize { get; init; }
    [Option("use only the first N training images (0: all)", Min = 0)]
    public int MaxTrain { get; init; }
    [Option("probe on gray images (colour cannot name the class)")]
    public bool Grayscale { get; init; }
    [Option("seeds of the probe (its init, order, augmentation); one probe each on the same features, reported as mean ± sample std", Min = 0)]
    public int[] ProbeSeeds { get; init; } = [0];
    [Option("write the first --save-count predicted masks of the first probe seed (VOC-palette PNGs at --size²) into this folder", Value = "DIR")]
    public string? SavePredictions { get; init; }
    [Option("how many predicted masks --save-predictions writes", Min = 1, Max = 100000)]
    public int SaveCount { get; init; } = 8;
}

/// <summary>One probe's result per seed, and the network of the weights file they evaluated.</summary>
public sealed record SegmentationRuns(IReadOnlyList<SegmentationResult> Runs, string Network);

/// <summary>`croc-host eval-seg`: linear segmentation mIoU of a frozen backbone.</summary>
public static class EvalSegCommand
{
    /// <summary>The member that makes a JSON file this command's result (what a rerun may replace).</summary>
    const string ResultKey = "miou";
    /// <summary>The most bytes of a labels.txt read (at most 255 class names).</summary>
    const int LabelsLimit = 1 << 20;

    public static int Run(EvalSegOptions o)
    {
        var probe = new ProbeOptions(Size: o.Size, FeatureSize: o.FeatureSize, Epochs: o.Epochs, Lr: o.Lr, Batch: o.Batch,
            Milestone: o.Milestone, CacheFeatures: o.CacheFeatures, MaxTrain: o.MaxTrain, Grayscale: o.Grayscale, Standardize: o.Standardize,
            Precision: Precisions.Resolve(o.Precision, o.Device)).Checked();
        if (o.SavePredictions is null && o.SaveCount != new EvalSegOptions().SaveCount) throw new OptionException($"--save-count {o.SaveCount} counts the masks --save-predictions writes: add --save-predictions DIR, or leave it out"); // ignored silently once
        var json = o.Prepare(ResultKey);
        var predictions = o.SavePredictions is null ? null : OutputPaths.Folder(o.SavePredictions, "--save-predictions");
        if (json is not null && predictions is not null && DiskSpace.Holds(RealPaths.Of(predictions), RealPaths.Of(json))) // through links too
            throw new OutputException($"--json '{o.Json}' lies in --save-predictions '{o.SavePredictions}': the result would replace a predicted mask or the folder; write it elsewhere");
        var device = Devices.Resolve(o.Device);
        CheckpointImport.ExpectFile(o.Weights); // before the synthetic set is generated
        var root = o.Data ?? SyntheticDataset.Ensure(new TrainConfig());
        if (predictions is not null && (DiskSpace.Holds(RealPaths.Of(root), RealPaths.Of(predictions)) || ImageSources.Reaches(root, predictions))) // any folder of its tree (eval-seg reads files by name: hidden ones too), and what its linked folders lead to
            throw new OutputException($"--save-predictions '{o.SavePredictions}' lies inside the dataset '{root}': its masks or images would be replaced; choose a folder outside it");
        var names = ClassNames(root, o.Classes, Console.WriteLine);
        var masks = predictions is null ? null : PredictionPaths(predictions, new VocSegmentation(root, o.ValSplit).Names.Take(o.SaveCount));
        if (predictions is not null) AtomicFile.RemoveAbandoned(predictions, recursive: true); // a killed run's one write left up to --save-count of them
        var watch = System.Diagnostics.Stopwatch.StartNew();
        var (results, network) = Evaluate(o.Weights, o.Backbone, o.RandomSeed, o.Heads, root, o.TrainSplit, o.ValSplit, names.Length, probe, o.ProbeSeeds, Console.WriteLine, device, predictions is null ? 0 : o.SaveCount);
        double seconds = watch.Elapsed.TotalSeconds; // once, where each run's seconds also count the feature pass they share
        Print(results, names, o.ProbeSeeds, seconds);
        // The masks and the JSON are one write: a stop or failure leaves all as they were (a stop between them once left
        // the new masks beside the earlier JSON, and one among the masks a mix); the JSON is renamed last, as it marks
        // the evaluation done (the real-photo suite's resume)
        var files = new List<AtomicFile.Content>();
        int predicted = masks is null ? 0 : results[0].Predictions.Count;
        for (int i = 0; i < predicted; i++)
        {
            var mask = results[0].Predictions[i];
            files.Add(new(masks![i], s => VocSegmentation.SaveMask(mask, o.Size, o.Size, s, marked: true))); // a name listed twice is one target, written once
        }
        string? fullJson = json is null ? null : Path.GetFullPath(json);
        if (json is not null)
        {
            var (miou, miouStd) = Statistics.MeanStd(results.Select(r => r.MeanIoU)); // the sample std, as printed
            files.Add(FrozenBackboneOptions.JsonFile(json, new
            {
                weights = Path.GetFullPath(o.Weights), backbone = network, random = o.Random, init_seed = o.RandomSeed,
                data = Path.GetFullPath(root), train_split = o.TrainSplit, val_split = o.ValSplit, probe, probe_seeds = o.ProbeSeeds,
                miou, miou_std = results.Count > 1 ? miouStd : (double?)null, seconds,
                runs = results.Select((r, i) => new { seed = o.ProbeSeeds[i], miou = r.MeanIoU, per_class = names.Zip(r.PerClassIoU, (n, v) => new { name = n, iou = double.IsNaN(v) ? (double?)null : v }), seconds = r.Seconds }),
            }));
        }
        if (files.Count > 0)
            AtomicFile.WriteTogether(files, replaceOnlyIf: earlier => earlier == fullJson ? OutputPaths.IsJsonResult(earlier, ResultKey) : PictureMark.IsOn(earlier));
        // written before the masks were renamed into their folder: stamped after them, as the suite's resume reads a JSON
        // older than its predictions' folder as an unfinished job (RealPhotoSuite.NotDone); the folder's time may be a file server's
        if (fullJson is not null && predictions is not null)
            File.SetLastWriteTimeUtc(fullJson, new DateTime(System.Math.Max(DateTime.UtcNow.Ticks, Directory.GetLastWriteTimeUtc(predictions).Ticks + 1), DateTimeKind.Utc));
        if (masks is not null)
        {
            Console.WriteLine($"wrote {predicted} predicted masks ({o.Size}² px) to {predictions}");
            if (StaleMasks(predictions!, masks.Take(predicted)) is > 0 and var stale) // mixed into the folder without a word once
                Console.WriteLine($"note: {stale} predicted mask(s) of an earlier run stay in {predictions} (this run did not rewrite them): they may be of other settings");
        }
        if (json is not null) Console.WriteLine($"wrote {json}");
        return ExitCodes.Ok;
    }

    /// <summary>How many masks croc-host predicted earlier lie in <paramref name="folder"/> beside those just <paramref name="written"/>.</summary>
    static int StaleMasks(string folder, IEnumerable<string> written)
    {
        var now = written.ToHashSet(StringComparer.Ordinal);
        try
        {
            return Directory.EnumerateFiles(folder, "*.png", new EnumerationOptions { RecurseSubdirectories = true, IgnoreInaccessible = true })
                .Count(path => !now.Contains(Path.GetFullPath(path)) && PictureMark.IsOn(path));
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { return 0; } // a note must not fail the evaluation
    }

    /// <summary>Where each validation image's predicted mask goes: NAME.png inside the folder (names
    /// with subfolders too), checked before the work; a name that leads outside it, by its path or
    /// through a link (a subfolder linked into the dataset), is refused, and so is an existing file
    /// there that is not an earlier prediction (marked, <see cref="PictureMark"/>).</summary>
    static IReadOnlyList<string> PredictionPaths(string folder, IEnumerable<string> names) =>
        names.Select(name =>
        {
            var path = Path.GetFullPath(Path.Combine(folder, name + ".png"));
            if (!DiskSpace.Holds(folder, path) || path == folder || !DiskSpace.Holds(RealPaths.Of(folder), RealPaths.Of(path)))
                throw new DatasetException($"the validation image '{name}' would put its predicted mask outside --save-predictions '{folder}'");
            return !File.Exists(path) || PictureMark.IsOn(path) ? path
                : throw new OutputException($"--save-predictions: '{path}' exists and is not a mask croc-host predicted, which a rerun would replace; choose another folder");
        }).ToList();

    /// <summary>Loads the backbone of <paramref name="weights"/> (or, with <paramref name="randomSeed"/>,
    /// a random initialisation of its architecture) and runs one probe per seed on its features;
    /// also says which network of the file was evaluated (teacher, student or its single network).</summary>
    public static SegmentationRuns Evaluate(string weights, NetworkChoice network, int? randomSeed, int? heads, string root, string trainSplit, string valSplit, int classes, ProbeOptions probe, IReadOnlyList<int> seeds, Action<string> log, torch.Device? device = null, int keepPredictions = 0)
    {
        device ??= torch.CPU;
        var (train, val) = (new VocSegmentation(root, trainSplit), new VocSegmentation(root, valSplit));
        if (train.Names.Intersect(val.Names).Count() is > 0 and var seen)
            log($"note: {seen} of the {val.Names.Distinct().Count()} evaluation images ('{valSplit}') are in the training split ('{trainSplit}') too: the probe is scored on images it was trained on");
        foreach (var (split, set) in new[] { (trainSplit, train), (valSplit, val) }.DistinctBy(s => s.Item1))
        {
            if (set.Count - set.Names.Distinct().Count() is > 0 and var extra)
                log($"note: '{split}' lists {set.Names.CountBy(n => n).Count(c => c.Value > 1)} name(s) more than once ({extra} extra listing(s)): each listing counts as an image");
            if (set.AugmentedMasks is > 0 and var augmented) // read without a word once, also for the evaluation split
                log($"note: {augmented} of the {set.Count} masks of '{split}' are read from SegmentationClassAug/ (SBD's), as SegmentationClass/ has none for them");
        }
        var (loaded, backbone, _) = FrozenBackboneOptions.LoadForEvaluation(weights, network, heads, randomSeed, probe.Size, probe.Batch, probe.Precision, device, log);
        log($"backbone: {loaded.Source.Layout} {(randomSeed is not null ? $"architecture with random weights (seed {randomSeed})" : loaded.Network)}, D={loaded.Config.Dim}, depth {loaded.Config.Depth}, {loaded.Config.Heads} heads, patch {loaded.Config.Patch}; {classes} classes; input {probe.Size} px");
        return new(new LinearProbe(loaded.Config, backbone, classes, probe, log, device).Run(train, val, seeds, keepPredictions), loaded.Network);
    }

    /// <summary>The names of the classes: ROOT/labels.txt's lines, padded with "class i" up to <paramref name="classes"/>
    /// (given: --classes); a --classes that differs from labels.txt's count is said to <paramref name="log"/>
    /// (--classes 255 over Weizmann's 2 names gave an mIoU over 255 classes with no word on it once).</summary>
    public static string[] ClassNames(string root, int? classes, Action<string>? log = null)
    {
        var labels = Path.Combine(root, "labels.txt");
        // a folder, an empty file or binary bytes there gave 21 classes (22: the binary file's "lines") without a word once
        if (Directory.Exists(labels)) throw new DatasetException($"'{labels}' is a folder, not the class names (one per line): move it away");
        string[] names;
        try { names = File.Exists(labels) ? BoundedFile.ReadText(labels, LabelsLimit).ReplaceLineEndings("\n").Split('\n').Where(l => l.Trim().Length > 0).ToArray() : []; }
        catch (FileTooLargeException e) { throw new DatasetException(e.Message); } // it names the file
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { throw new DatasetException($"'{labels}' cannot be read: {e.Message}"); }
        if (names.Any(name => name.Any(c => char.IsControl(c) && c != '\t'))) throw new DatasetException($"'{labels}' holds control characters (a NUL, an escape): not a text file of class names (one per line)");
        int count = classes ?? (names.Length > 0 ? names.Length : 21);
        if (File.Exists(labels) && names.Length == 0 && classes is null) log?.Invoke($"note: '{labels}' names no class: {count} classes assumed (Pascal VOC's); give --classes, or the class names in it (one per line)");
        if (classes is int given && names.Length > 0 && given != names.Length)
            log?.Invoke(given > names.Length
                ? $"note: --classes {given}, where '{labels}' names {names.Length}: classes {names.Length}..{given - 1} are named 'class i', and each that occurs in no mask counts 0 in the mIoU"
                : $"note: --classes {given}, where '{labels}' names {names.Length}: its names after the first {given} are not used, and a mask label from {given} on is refused");
        if (count > CrOC.Math.Segmentation.Ignore) throw new DatasetException($"'{labels}' names {count} classes; at most {CrOC.Math.Segmentation.Ignore} (label {CrOC.Math.Segmentation.Ignore} means ignored)");
        return Enumerable.Range(0, count).Select(i => i < names.Length ? names[i] : $"class {i}").ToArray();
    }

    static void Print(IReadOnlyList<SegmentationResult> results, string[] names, int[] seeds, double seconds)
    {
        Console.WriteLine($"{"class",-24} IoU (mean over {results.Count} probe seed(s))");
        var perSeed = results.Select(r => r.PerClassIoU).ToList();
        for (int c = 0; c < names.Length; c++)
            Console.WriteLine($"{names[c],-24} {ClassCell(perSeed.Select(iou => iou[c]).ToList())}");
        var (mean, std) = Statistics.MeanStd(results.Select(r => 100 * r.MeanIoU));
        var seedValues = results.Count > 1 ? $" ± {std:F1} (seeds {string.Join(", ", seeds)}: {string.Join(" / ", results.Select(r => (100 * r.MeanIoU).ToString("F1", CultureInfo.InvariantCulture)))})" : "";
        Console.WriteLine($"{"mIoU",-24} {mean:F1}{seedValues}   ({seconds:F0} s)");
        if (AbsentNote(perSeed) is { } note) Console.WriteLine(note);
    }

    /// <summary>A class's IoU over the probe seeds as the table shows it: the mean with an absent
    /// class (NaN) counting 0, as the mIoU counts it; "n/a (absent)" when absent for every seed, and
    /// how many seeds it was absent for when for some (one such seed blanked the mean once).</summary>
    public static string ClassCell(IReadOnlyList<double> perSeed)
    {
        int absent = perSeed.Count(double.IsNaN);
        if (absent == perSeed.Count) return "  n/a (absent)";
        var percent = (100 * Statistics.MeanAbsentAsZero(perSeed)).ToString("F1", CultureInfo.InvariantCulture);
        return absent > 0 ? $"{percent} (absent for {absent} of {perSeed.Count} probe seeds: 0 there)" : percent;
    }

    /// <summary>A note when classes occur in neither the validation masks nor the predictions (IoU
    /// NaN) of some probe seed (<paramref name="perSeed"/>: each seed's per-class IoU): they count as
    /// 0 in the mean (spec §12.1), which a wrong class count (the default 21 on a dataset without
    /// labels.txt) lowers silently. Only the first seed's were counted once.</summary>
    public static string? AbsentNote(IReadOnlyList<double[]> perSeed) =>
        Enumerable.Range(0, perSeed[0].Length).Count(c => perSeed.Any(iou => double.IsNaN(iou[c]))) is var absent and > 0
            ? $"note: {absent} of the {perSeed[0].Length} classes occur in neither the validation masks nor the predictions{(perSeed.Count > 1 ? " (of at least one probe seed)" : "")}; they count as 0 in the mIoU (spec §12.1): if there are fewer classes, give --classes or ROOT/labels.txt"
            : null;
}
