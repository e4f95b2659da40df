using System.Globalization;
using System.Text.Json;
using CrOC.Data;
using CrOC.Host.Training;
using CrOC.Host.Weights;
using TorchSharp;

namespace CrOC.Host.Evaluation;

/// <summary>`croc-host eval-seg`: linear segmentation mIoU of a frozen backbone.</summary>
public static class EvalSegCommand
{
    const string Help = """
        croc-host eval-seg: linear segmentation of frozen patch tokens (Leopart's protocol, spec §12.1).

        Options:
          --weights FILE        our checkpoint, an official CrOC/DINO checkpoint or a backbone file (required)
          --backbone teacher|student   which network of a checkpoint (teacher)
          --random              keep the architecture of FILE but use a fresh random initialisation
          --data ROOT           a Pascal VOC layout (JPEGImages/, SegmentationClass/, ImageSets/Segmentation/);
                                default: the embedded synthetic scenes. PVOC12: --train-split trainaug;
                                COCO-Things/-Stuff: masks as 8-bit PNGs of class indices, 255 = ignore
          --train-split NAME    (train)      --val-split NAME (val)
          --classes N           number of classes (default: lines of ROOT/labels.txt, else 21)
          --size S              input size in pixels (448)   --feature-size F  (100)
          --epochs E (25)  --lr (0.01)  --batch (60)  --milestone (20: lr x0.1 from this epoch)
          --cache-features      no training augmentation; frozen features computed once (fast on CPUs)
          --max-train N         use only the first N training images
          --grayscale           probe on gray images (colour cannot name the class)
          --json PATH           write the result as JSON
          --heads N             attention heads if not D/64;  --seed S
          --device cpu|cuda[:N] where the backbone and the probe run (cpu)
          --precision fp32|bf16|auto  the frozen backbone's forward (fp32; the probe is float32)
        """;

    public static int Run(Options options)
    {
        if (options.Help) { Console.WriteLine(Help); return 0; }
        var weights = options.Required("weights");
        var network = options.Choice("backbone", "teacher", ["teacher", "student"]);
        bool random = options.Flag("random");
        var data = options.Text("data");
        var trainSplit = options.Text("train-split") ?? "train";
        var valSplit = options.Text("val-split") ?? "val";
        int? classes = options.Has("classes") ? options.PositiveInt("classes", 21) : null;
        int? heads = options.Has("heads") ? options.PositiveInt("heads", 6) : null;
        var probe = new ProbeOptions(
            Size: options.PositiveInt("size", 448), FeatureSize: options.PositiveInt("feature-size", 100),
            Epochs: options.PositiveInt("epochs", 25), Lr: options.Number("lr", 0.01), Batch: options.PositiveInt("batch", 60),
            Milestone: options.PositiveInt("milestone", 20), CacheFeatures: options.Flag("cache-features"),
            MaxTrain: options.Has("max-train") ? options.PositiveInt("max-train", 1) : 0, Seed: options.NonNegativeInt("seed", 0),
            Grayscale: options.Flag("grayscale"));
        var precisionName = options.Choice("precision", "fp32", ["auto", "fp32", "bf16"]);
        var json = options.Text("json");
        var deviceName = options.Text("device") ?? "cpu";
        var device = Devices.Resolve(deviceName);
        probe = probe with { Precision = Precisions.Resolve(precisionName, deviceName) };
        options.RejectUnknown();

        try
        {
            var root = data ?? SyntheticDataset.Ensure(new TrainConfig());
            var names = ClassNames(root, classes);
            var result = Evaluate(weights, network, random, heads, root, trainSplit, valSplit, names.Length, probe, Console.WriteLine, device);
            Print(result, names);
            if (json is not null)
            {
                var record = new
                {
                    weights = Path.GetFullPath(weights), backbone = network, random, data = Path.GetFullPath(root), probe,
                    miou = result.MeanIoU, per_class = names.Zip(result.PerClassIoU, (n, v) => new { name = n, iou = double.IsNaN(v) ? (double?)null : v }),
                    seconds = result.Seconds,
                };
                File.WriteAllText(json, JsonSerializer.Serialize(record, new JsonSerializerOptions { WriteIndented = true }) + "\n");
                Console.WriteLine($"wrote {json}");
            }
            return 0;
        }
        catch (Exception e) when (e is WeightsException or DatasetException or DecodeException)
        {
            Console.Error.WriteLine($"croc-host eval-seg: {e.Message}");
            return 1;
        }
    }

    public static SegmentationResult Evaluate(string weights, string network, bool random, int? heads, string root, string trainSplit, string valSplit, int classes, ProbeOptions probe, Action<string> log, torch.Device? device = null)
    {
        device ??= torch.CPU;
        var loaded = BackboneLoader.Load(weights, network, heads, strict: true, randomSeed: random ? probe.Seed : null);
        if (probe.Size % loaded.Config.Patch != 0) throw new DatasetException($"--size {probe.Size} is not a multiple of the patch size {loaded.Config.Patch}");
        log($"backbone: {loaded.Source.Layout} {(random ? "architecture with random weights" : loaded.Network)}, D={loaded.Config.Dim}, depth {loaded.Config.Depth}, patch {loaded.Config.Patch}; {classes} classes; input {probe.Size} px");
        var backbone = device.type == DeviceType.CPU ? loaded.Params : CrOC.Math.Vit.toDevice(loaded.Config, device, loaded.Params);
        return new LinearProbe(loaded.Config, backbone, classes, probe, log, device).Run(new VocSegmentation(root, trainSplit), new VocSegmentation(root, valSplit));
    }

    static string[] ClassNames(string root, int? classes)
    {
        var labels = Path.Combine(root, "labels.txt");
        var names = File.Exists(labels) ? File.ReadAllLines(labels).Where(l => l.Trim().Length > 0).ToArray() : [];
        int count = classes ?? (names.Length > 0 ? names.Length : 21);
        return Enumerable.Range(0, count).Select(i => i < names.Length ? names[i] : $"class {i}").ToArray();
    }

    static void Print(SegmentationResult result, string[] names)
    {
        Console.WriteLine($"{"class",-24} IoU");
        for (int c = 0; c < names.Length; c++)
            Console.WriteLine($"{names[c],-24} {(double.IsNaN(result.PerClassIoU[c]) ? "  n/a (absent)" : (100 * result.PerClassIoU[c]).ToString("F1", CultureInfo.InvariantCulture))}");
        Console.WriteLine($"{"mIoU",-24} {100 * result.MeanIoU:F1}   ({result.Seconds:F0} s)");
    }
}
