using System.Text.Json;
using System.Text.Json.Nodes;

namespace CrOC.Host.Evaluation.RealPhotos;

/// <summary>One probe seed's numbers in an eval-seg record: its mIoU and each class's IoU (NaN for a
/// class absent from the evaluation split, written as null).</summary>
public sealed record ProbeRunRecord(double MeanIoU, IReadOnlyDictionary<string, double> ClassIoU);

/// <summary>
/// The numbers the real-photo suite reads from its evaluations' JSON: eval-seg's "miou" and "runs"
/// (each probe seed's "miou" and "per_class" [{"name", "iou"}], every run naming the same classes)
/// and eval-knn's "top1". A record lacking one of them, or holding another type there, is no result:
/// the readers throw <see cref="FormatException"/>, the suite's done-check redoes its job, and the
/// results are only ever read through these readers.
/// </summary>
public static class EvaluationRecord
{
    /// <summary>An eval-seg record: its mIoU (mean over probe seeds) and each probe seed's run (at least one).</summary>
    public static (double MeanIoU, IReadOnlyList<ProbeRunRecord> Runs) Segmentation(JsonNode? record)
    {
        var runs = (Member(record, "runs") as JsonArray ?? throw new FormatException("no \"runs\" list")).Select(Run).ToList();
        if (runs.Count == 0) throw new FormatException("no probe runs");
        var classes = runs[0].ClassIoU.Keys.ToHashSet();
        if (runs.Any(r => !r.ClassIoU.Keys.ToHashSet().SetEquals(classes))) throw new FormatException("probe runs of other classes");
        return (Number(record, "miou"), runs);
    }

    /// <summary>An eval-knn record's top-1 accuracy.</summary>
    public static double Knn(JsonNode? record) => Number(record, "top1");

    /// <summary>Whether <paramref name="record"/> reads as the result of a job running <paramref name="command"/>
    /// (eval-seg or eval-knn; any other command has no numbers to read).</summary>
    public static bool IsResultOf(string command, JsonNode? record)
    {
        try
        {
            if (command == "eval-seg") Segmentation(record);
            else if (command == "eval-knn") Knn(record);
            return true;
        }
        catch (FormatException) { return false; }
    }

    static ProbeRunRecord Run(JsonNode? run)
    {
        var perClass = Member(run, "per_class") as JsonArray ?? throw new FormatException("a probe run without its \"per_class\" list");
        var classIoU = new Dictionary<string, double>();
        foreach (var c in perClass)
        {
            var name = Member(c, "name") is JsonValue v && v.TryGetValue<string>(out var n) ? n : throw new FormatException("a class without its name");
            var iou = !((JsonObject)c!).TryGetPropertyValue("iou", out var given) ? throw new FormatException($"the class '{name}' without its IoU")
                : given is null ? double.NaN : Number(c, "iou"); // null: absent from the split
            if (!classIoU.TryAdd(name, iou)) throw new FormatException($"the class '{name}' twice");
        }
        return new(Number(run, "miou"), classIoU);
    }

    /// <summary>An object's member; null when it is absent, null, or <paramref name="node"/> is no object.</summary>
    static JsonNode? Member(JsonNode? node, string key) => (node as JsonObject)?[key];

    /// <summary>A finite number (1e999 parses as ∞, which results.json could not hold).</summary>
    static double Number(JsonNode? node, string key) =>
        Member(node, key) is JsonValue v && v.GetValueKind() == JsonValueKind.Number && v.GetValue<double>() is var x && double.IsFinite(x) ? x
        : throw new FormatException($"no finite number \"{key}\"");
}
