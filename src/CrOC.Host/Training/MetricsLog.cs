using System.Globalization;
using System.Text.Json;
using CrOC.Host.CommandLine;

namespace CrOC.Host.Training;

/// <summary>Per-iteration metrics as JSON lines (metrics.jsonl) and TensorBoard scalars.</summary>
public sealed class MetricsLog : IDisposable
{
    readonly StreamWriter lines;
    readonly TensorBoardEvents? board;

    /// <summary>The metrics' file in a run folder, appended to.</summary>
    public const string FileName = "metrics.jsonl";

    /// <summary>The run folder's TensorBoard event files.</summary>
    public static string EventsFolder(string output) => Path.Combine(output, "tensorboard");

    /// <summary>Appends to the run's metrics; lines of steps after <paramref name="resumedAt"/> (written by a
    /// run that stopped before its next checkpoint, and about to be redone) are dropped first, and so
    /// is a line that is not a step's record (torn by a crash or a full disk); TensorBoard is told to
    /// drop those steps too (<see cref="TensorBoardRestart"/>); what was dropped is said to <paramref name="log"/>.</summary>
    public MetricsLog(string output, long resumedAt, bool tensorboard = true, Action<string>? log = null)
    {
        var path = Path.Combine(output, FileName);
        if (File.Exists(path))
        {
            var text = ReadWhole(path);
            var all = text.Split('\n', StringSplitOptions.RemoveEmptyEntries);
            var steps = all.Select(l => StepOf(Record(l))).ToList();
            var kept = all.Where((_, i) => steps[i] <= resumedAt).ToList();
            // a last line without its newline (a write cut short) would have the next record glued to it
            if (kept.Count < all.Length || (text.Length > 0 && !text.EndsWith('\n'))) Weights.AtomicFile.WriteAllText(path, string.Concat(kept.Select(l => l + "\n")));
            // every checkpoint gone, a run started over and dropped all its records without a word once
            int later = steps.Count(step => step > resumedAt), torn = steps.Count(step => step is null);
            string[] dropped = [
                .. later > 0 ? [$"{CrOC.Data.Counted.Of(later, "record")} of steps after step {resumedAt} ({(resumedAt == 0 ? "no checkpoint to resume from: the run starts over" : "those steps are run again")})"] : Array.Empty<string>(),
                .. torn > 0 ? [$"{CrOC.Data.Counted.Of(torn, "line that is no step's record", "lines that are no step's record")}"] : Array.Empty<string>()];
            if (dropped.Length > 0) log?.Invoke($"{FileName}: dropped {string.Join(" and ", dropped)}");
        }
        lines = new StreamWriter(path, append: true) { AutoFlush = true };
        if (!tensorboard) return;
        var events = EventsFolder(output);
        TensorBoardRestart.Mark(events, resumedAt); // before the writer opens its file: the name sorts first
        board = new TensorBoardEvents(events);
    }

    /// <summary>The metrics so far: a regular file, read to its length. A FIFO (an open waits for a writer, and
    /// no signal ended that wait) or a device (/dev/zero never ends: out of memory once) is refused.</summary>
    static string ReadWhole(string path)
    {
        using var stream = CrOC.Data.RegularFile.Open(path, out var whyNot) ?? throw (Path.Exists(path)
            ? new OutputException($"'{path}' is no regular file this process can read ({whyNot}): a run's metrics.jsonl is one; move it away")
            : new FileNotFoundException($"'{path}' does not exist", path));
        var bytes = CrOC.Data.BoundedFile.ReadAtMost(stream, (int)System.Math.Min(stream.Length, Array.MaxLength))
            ?? throw new OutputException($"'{path}' reads past its length (a device?): a run's metrics.jsonl is a regular file; move it away");
        return CrOC.Data.BoundedFile.Text(bytes);
    }

    /// <summary>The step of a metrics line's <see cref="Record"/>, or null when the line is not a step's record.</summary>
    static long? StepOf(JsonElement? record) =>
        record is { } r && r.TryGetProperty("step", out var step) && step.ValueKind == JsonValueKind.Number && step.TryGetInt64(out var n) ? n : null;

    /// <summary>A run's training time: the sum of its steps' times in metrics.jsonl (also when it was resumed);
    /// a line that is not a step's record with its seconds (torn by a crash, edited by hand, a time out of range) adds nothing.
    /// Read as a resume reads it: a FIFO or a device there is refused.</summary>
    public static double TrainingSeconds(string output) =>
        ReadWhole(Path.Combine(output, FileName)).Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(Record)
            .Sum(record => StepOf(record) is not null && record!.Value.TryGetProperty("step_s", out var seconds) && seconds.ValueKind == JsonValueKind.Number
                && seconds.TryGetDouble(out var s) && s is >= 0 and < MaxStepSeconds ? s : 0);

    /// <summary>More than any step takes (30 years): a sum of the steps' times stays finite (1e308 twice is ∞,
    /// which results.json cannot hold).</summary>
    const double MaxStepSeconds = 1e9;

    /// <summary>A metrics line as a JSON object, parsed once; null when it is none (torn by a crash or a full disk).</summary>
    static JsonElement? Record(string line)
    {
        try
        {
            using var record = CrOC.Data.StrictJson.Document(line);
            return record.RootElement.ValueKind == JsonValueKind.Object ? record.RootElement.Clone() : null;
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
