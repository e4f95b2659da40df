using System.Text.Json;
using CrOC.Host.CommandLine;
using CrOC.Host.Training;
using CrOC.Host.Weights;

namespace CrOC.Host.Evaluation;

/// <summary>`croc-host eval-knn`'s command line.</summary>
[Command("eval-knn", "weighted k-NN top-1 accuracy of a frozen backbone's CLS features (DINO's protocol)", Notes = """
    Labels: an ImageFolder tree (the first folder below the root names the class), as a folder or a
    folder inside a tar archive (archive.tar#folder); a flat query set takes its classes from
    --query-annotations (lines "file-name class …", a file or archive.tar#member).
    Example (Tiny ImageNet-200 in one tar):
      croc-host eval-knn --weights W --bank tin.tar#tiny-imagenet-200/train \
        --queries tin.tar#tiny-imagenet-200/val/images \
        --query-annotations tin.tar#tiny-imagenet-200/val/val_annotations.txt --size 64
    """)]
public sealed record EvalKnnOptions
{
    [Option("our checkpoint, an official CrOC/DINO checkpoint or a backbone file", Required = true, Value = "FILE")]
    public string Weights { get; init; } = "";
    [Option("which network of a checkpoint", Choices = "teacher|student")]
    public string Backbone { get; init; } = "teacher";
    [Option("keep the architecture of --weights but use a fresh random initialisation (seed 0)")]
    public bool Random { get; init; }
    [Option("the labelled memory bank: an ImageFolder tree (folder or archive.tar#folder)", Required = true, Value = "ROOT")]
    public string Bank { get; init; } = "";
    [Option("the images to classify (an ImageFolder tree, or flat with --query-annotations)", Required = true, Value = "ROOT")]
    public string Queries { get; init; } = "";
    [Option("classes of flat query images: lines \"file-name class …\"", Value = "FILE")]
    public string? QueryAnnotations { get; init; }
    [Option("neighbours that vote", Min = 1, Max = 10000)]
    public int K { get; init; } = 20;
    [Option("temperature of the votes exp(sim / T)", Min = 0, MinExclusive = true)]
    public double Temperature { get; init; } = 0.07;
    [Option("images are resized to SIZE² (a multiple of the patch size)", Min = 1, Max = 4096)]
    public int Size { get; init; } = 64;
    [Option("images per forward pass", Min = 1, Max = 100000)]
    public int Batch { get; init; } = 128;
    [Option("write the result as JSON", Value = "PATH")]
    public string? Json { get; init; }
    [Option("attention heads, if not D/64", Min = 1, Max = 1024)]
    public int? Heads { get; init; }
    [Option("where the backbone runs", Value = "cpu|cuda[:N]")]
    public string Device { get; init; } = "cpu";
    [Option("the frozen backbone's forward", Choices = "auto|fp32|bf16")]
    public string Precision { get; init; } = "fp32";
}

/// <summary>`croc-host eval-knn`: k-NN classification with frozen features.</summary>
public static class EvalKnnCommand
{
    public static int Run(EvalKnnOptions o)
    {
        var json = o.Json is null ? null : OutputPaths.File(o.Json, "--json");
        var result = Evaluate(o, Console.WriteLine);
        Console.WriteLine($"k-NN top-1 {100 * result.Top1:F2} % ({result.Queries} queries, bank of {result.Bank}, k = {o.K}, T = {o.Temperature}; {result.Skipped} undecodable images skipped; {result.Seconds:F0} s)");
        if (json is not null)
        {
            var record = new { weights = Path.GetFullPath(o.Weights), backbone = o.Backbone, random = o.Random, bank = o.Bank, queries = o.Queries, k = o.K, temperature = o.Temperature, size = o.Size, top1 = result.Top1, result.Bank, result.Queries, result.Skipped, result.Seconds };
            AtomicFile.WriteAllText(json, JsonSerializer.Serialize(record, new JsonSerializerOptions { WriteIndented = true }) + "\n");
            Console.WriteLine($"wrote {json}");
        }
        return ExitCodes.Ok;
    }

    public static KnnResult Evaluate(EvalKnnOptions o, Action<string> log)
    {
        var device = Devices.Resolve(o.Device);
        var loaded = BackboneLoader.Load(o.Weights, o.Backbone, o.Heads, strict: true, randomSeed: o.Random ? 0 : null);
        if (o.Size % loaded.Config.Patch != 0) throw new OptionException($"--size {o.Size} is not a multiple of the patch size {loaded.Config.Patch}");
        var bank = LabelledImages.Find(o.Bank);
        var queries = LabelledImages.Find(o.Queries, o.QueryAnnotations, bank.Classes);
        log($"k-NN: bank {bank.Images.Count} images of {bank.Classes.Count} classes, {queries.Images.Count} queries; {(o.Random ? "random weights" : loaded.Network)}, input {o.Size} px");
        var backbone = device.type == TorchSharp.DeviceType.CPU ? loaded.Params : CrOC.Math.Vit.toDevice(loaded.Config, device, loaded.Params);
        var options = new KnnOptions(o.K, o.Temperature, o.Size, o.Batch, Precisions.Resolve(o.Precision, o.Device));
        return new KnnEvaluation(loaded.Config, backbone, options, log, device).Run(bank, queries);
    }
}
