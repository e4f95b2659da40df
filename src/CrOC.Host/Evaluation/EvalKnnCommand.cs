using System.Text.Json;
using CrOC.Data;
using CrOC.Host.CommandLine;
using CrOC.Host.Training;
using CrOC.Host.Weights;
using CrOC.Host.Runtime;

namespace CrOC.Host.Evaluation;

/// <summary>`croc-host eval-knn`'s command line.</summary>
[Command("eval-knn", "weighted k-NN top-1 accuracy of a frozen backbone's CLS features (DINO's protocol)", Notes = """
    Labels: an ImageFolder tree (the first folder below the root names the class), as a folder or a
    folder inside a tar archive (archive.tar#folder); below each folder a pattern names (s{0..3},
    s*); a folder of archives, one per class (train/CLASS.tar); a flat query set takes its classes from
    --query-annotations (lines "file-name class …", a file or archive.tar#member).
    Example (Tiny ImageNet-200 in one tar):
      croc-host eval-knn --weights W --bank tin.tar#tiny-imagenet-200/train \
        --queries tin.tar#tiny-imagenet-200/val/images \
        --query-annotations tin.tar#tiny-imagenet-200/val/val_annotations.txt --size 64
    """)]
public sealed record EvalKnnOptions : FrozenBackboneOptions
{
    [Option("the labelled memory bank: an ImageFolder tree (folder or archive.tar#folder)", Required = true, Value = "ROOT")]
    public string Bank { get; init; } = "";
    [Option("the images to classify (an ImageFolder tree, or flat with --query-annotations)", Required = true, Value = "ROOT")]
    public string Queries { get; init; } = "";
    [Option("classes of flat query images: lines \"file-name class …\"", Value = "FILE")]
    public string? QueryAnnotations { get; init; }
    [Option("neighbours that vote", Min = 1, Max = 10000)]
    public int K { get; init; } = 20;
    [Option("temperature of the votes exp(sim / T) (DINO's form; a vote of sim 1 overflows float32 below T = 0.0113)", Min = 0.02)]
    public double Temperature { get; init; } = 0.07;
    [Option("images are resized to SIZE² (a multiple of the patch size)", Min = 1, Max = 4096)]
    public int Size { get; init; } = 64;
    [Option("images per forward pass", Min = 1, Max = 100000)]
    public int Batch { get; init; } = 128;
    [Option("use every N-th bank image (in name order; 1: all)", Min = 1)]
    public int BankStride { get; init; } = 1;
    [Option("use every N-th query image (in name order; 1: all)", Min = 1)]
    public int QueryStride { get; init; } = 1;
}

/// <summary>`croc-host eval-knn`: k-NN classification with frozen features.</summary>
public static class EvalKnnCommand
{
    /// <summary>The member that makes a JSON file this command's result (what a rerun may replace).</summary>
    const string ResultKey = "top1";

    public static int Run(EvalKnnOptions o)
    {
        var json = o.Prepare(ResultKey);
        var (result, network, warnings) = Evaluate(o, Console.WriteLine);
        Console.WriteLine($"k-NN top-1 {100 * result.Top1:F2} % ({result.Queries} queries, bank of {result.Bank}, k = {System.Math.Min(o.K, result.Bank)}{(o.K > result.Bank ? $" of --k {o.K}: the whole bank" : "")}, T = {o.Temperature}; {result.Skipped} undecodable images skipped; {result.Seconds:F0} s)");
        if (json is not null)
        {
            FrozenBackboneOptions.WriteJson(json, new { weights = Path.GetFullPath(o.Weights), backbone = network, random = o.Random, init_seed = o.RandomSeed, bank = ImageSources.FullRoot(o.Bank), queries = ImageSources.FullRoot(o.Queries), query_annotations = o.QueryAnnotations is null ? null : ImageSources.FullRoot(o.QueryAnnotations), bank_stride = o.BankStride, query_stride = o.QueryStride, k = o.K, k_used = System.Math.Min(o.K, result.Bank), temperature = o.Temperature, size = o.Size, top1 = result.Top1, bank_images = result.Bank, query_images = result.Queries, skipped = result.Skipped, warnings, seconds = result.Seconds }, ResultKey);
        }
        return ExitCodes.Ok;
    }

    /// <summary>The k-NN result, which network of the file was evaluated (teacher, student or its
    /// single network) and the warnings said before the run (of the weights, and <see cref="Doubts"/>; the JSON keeps them).</summary>
    public static (KnnResult Result, string Network, IReadOnlyList<string> Warnings) Evaluate(EvalKnnOptions o, Action<string> log)
    {
        var device = Devices.Resolve(o.Device);
        var precision = Precisions.Resolve(o.Precision, o.Device);
        var (loaded, backbone, remarks) = FrozenBackboneOptions.LoadForEvaluation(o.Weights, o.Backbone, o.Heads, o.RandomSeed, o.Size, o.Batch, precision, device, log);
        var found = LabelledImages.Find(o.Bank);
        var (bank, queries) = (found.Every(o.BankStride), LabelledImages.Find(o.Queries, o.QueryAnnotations, found.Classes).Every(o.QueryStride));
        bank.Covers(queries, label => $"--bank-stride {o.BankStride} keeps none of its {Counted.Of(found.CountOf(label), "image")}"); // known from names, before any decoding
        log($"k-NN: bank {Counted.Of(bank.Images.Count, "image")} of {Counted.Of(bank.Labels.Distinct().Count(), "class", "classes")}, {Counted.Of(queries.Images.Count, "query", "queries")}; {(o.Random ? "random weights" : loaded.Network)}, input {o.Size} px");
        var doubts = Doubts(bank, queries).Select(doubt => $"warning: {doubt}").ToList();
        foreach (var doubt in doubts) log(doubt);
        var warnings = remarks.Concat(doubts).ToList(); // every line as it was said
        var options = new KnnOptions(o.K, o.Temperature, o.Size, o.Batch, precision);
        return (new KnnEvaluation(loaded.Config, backbone, options, log, device).Run(bank, queries), loaded.Network, warnings);
    }

    /// <summary>What makes the top-1 of a run say little, told before it starts: a bank of one class
    /// (every query is given it) and queries that are bank images too (each finds itself first).</summary>
    public static IEnumerable<string> Doubts(LabelledImages bank, LabelledImages queries)
    {
        if (bank.Labels.Distinct().Count() == 1) // of the images kept (--bank-stride may keep one class of several)
            yield return $"the bank has one class ('{bank.Classes[bank.Labels[0]]}'): every query is given it, so top-1 is only the share of queries of that class";
        var realName = ImageSources.RealNamer(); // a query folder linked to the bank is the bank
        var inBank = bank.Images.Select(realName).ToHashSet(StringComparer.Ordinal);
        int shared = queries.Images.Count(e => inBank.Contains(realName(e)));
        if (shared > 0)
            yield return $"{shared} of the {queries.Images.Count} queries are bank images too: each finds itself (similarity 1) among its neighbours, which inflates top-1; give --queries a separate set";
    }
}
