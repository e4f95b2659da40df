using System.Globalization;
using System.Text.Json;

namespace CrOC.Host.Training;

/// <summary>Per-iteration metrics as JSON lines (metrics.jsonl) and TensorBoard scalars.</summary>
public sealed class MetricsLog : IDisposable
{
    readonly StreamWriter lines;
    readonly TensorBoardEvents? board;

    /// <summary>The run folder's TensorBoard event files.</summary>
    public static string EventsFolder(string output) => Path.Combine(output, "tensorboard");

    /// <summary>Appends to the run's metrics; lines of steps after <paramref name="resumedAt"/> (written by a
    /// run that stopped before its next checkpoint, and about to be redone) are dropped first, and so
    /// is a line that is not a step's record (torn by a crash or a full disk); TensorBoard is told to
    /// drop those steps too (<see cref="TensorBoardRestart"/>).</summary>
    public MetricsLog(string output, long resumedAt, bool tensorboard = true)
    {
        var path = Path.Combine(output, "metrics.jsonl");
        if (File.Exists(path))
        {
            var text = File.ReadAllText(path);
            var all = text.Split('\n', StringSplitOptions.RemoveEmptyEntries);
            var kept = all.Where(l => StepOf(l) <= resumedAt).ToList();
            // a last line without its newline (a write cut short) would have the next record glued to it
            if (kept.Count < all.Length || (text.Length > 0 && !text.EndsWith('\n'))) Weights.AtomicFile.WriteAllText(path, string.Concat(kept.Select(l => l + "\n")));
        }
        lines = new StreamWriter(path, append: true) { AutoFlush = true };
        if (!tensorboard) return;
        var events = EventsFolder(output);
        TensorBoardRestart.Mark(events, resumedAt); // before the writer opens its file: the name sorts first
        board = new TensorBoardEvents(events);
    }

    /// <summary>The step of a metrics line, or null when the line is not a step's record.</summary>
    static long? StepOf(string line) => Member(line, "step") is { ValueKind: JsonValueKind.Number } step && step.TryGetInt64(out var n) ? n : null;

    /// <summary>A run's training time: the sum of its steps' times in metrics.jsonl (also when it was resumed);
    /// a line that is not a step's record with its seconds (torn by a crash, edited by hand) adds nothing.</summary>
    public static double TrainingSeconds(string output) =>
        File.ReadLines(Path.Combine(output, "metrics.jsonl"))
            .Sum(line => StepOf(line) is not null && Member(line, "step_s") is { ValueKind: JsonValueKind.Number } seconds ? seconds.GetDouble() : 0);

    /// <summary>The member <paramref name="name"/> of a metrics line; null when the line is no JSON object
    /// (torn by a crash or a full disk) or lacks it.</summary>
    static JsonElement? Member(string line, string name)
    {
        try
        {
            using var record = JsonDocument.Parse(line);
            return record.RootElement.ValueKind == JsonValueKind.Object && record.RootElement.TryGetProperty(name, out var value) ? value.Clone() : null;
        }
        catch (JsonException) { return null; }
    }

    public void Write(long step, IReadOnlyDictionary<string, double> values)
    {
        var record = new Dictionary<string, object> { ["step"] = step };
        // finite values as the shortest text that reads back exactly (a warm-up lr of 4e-10 is not 0); NaN/∞ as text
        foreach (var (k, v) in values) record[k] = double.IsFinite(v) ? v : v.ToString(CultureInfo.InvariantCulture);
        lines.WriteLine(JsonSerializer.Serialize(record));
        board?.Write(step, values.Where(v => double.IsFinite(v.Value)).Select(v => ("train/" + v.Key, (float)v.Value)));
    }

    public void Dispose()
    {
        lines.Dispose();
        board?.Dispose();
    }
}
