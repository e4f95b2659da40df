using System.Text.Json;
using System.Text.Json.Nodes;
using CrOC.Host.CommandLine;
using CrOC.Host.Weights;
using CrOC.Math;
using TorchSharp;
using CrOC.Host.Runtime;

namespace CrOC.Host.Training;

/// <summary>
/// Training checkpoints: one safetensors file per save (`checkpoints/step-NNNNNNNN.safetensors`)
/// holding student.*, teacher.*, the centres and AdamW's moments, and in its metadata the resolved
/// config and the progress (step, number of processes); written atomically with a SHA-256 of the
/// data, the last K kept. Loading refuses a corrupt or mismatched file and falls back to an older
/// one. (The random streams need no state: they are reseeded per sub-batch, see StepRunner.)
/// </summary>
public static class Checkpoints
{
    public const string Format = "crocnet-checkpoint-v1";

    public static string Folder(string output) => Path.Combine(output, "checkpoints");

    /// <summary>Writes a checkpoint of a run of <paramref name="world"/> processes and prunes the
    /// oldest beyond the newest <paramref name="keep"/>, except those whose step is a multiple of
    /// <paramref name="keepEvery"/> or of the --keep-every they were written under (when > 0: kept
    /// for curves); returns its path. <paramref name="dataset"/>
    /// (when given) is recorded so that a resume over another dataset is refused.</summary>
    public static string Save(string output, TrainConfig config, TrainingState state, int keep, int world = 1, int keepEvery = 0, DatasetIdentity? dataset = null, Action<string>? report = null)
    {
        var tensors = new NamedTensors();
        foreach (var (name, t) in Contents(state)) tensors.Add(name, t);
        var steps = new JsonObject();
        foreach (var (name, m) in state.Optimizer.Moments) steps[name] = m.Steps;
        var progress = new JsonObject { ["format"] = Format, ["step"] = state.Step, ["world"] = world, ["adam_steps"] = steps };
        dataset?.WriteTo(progress);
        var path = Path.Combine(Folder(output), $"step-{state.Step:D8}.safetensors");
        Safetensors.Write(path, tensors, new Dictionary<string, string> { ["config"] = config.ToJson(), ["progress"] = progress.ToJsonString(), ["commit"] = GitInfo.Commit });
        // None is newer than this one (refused files are set aside): the oldest beyond the newest
        // `keep` go, except those kept for a curve — by this start's --keep-every or by the one
        // they were written under (a resume without it must not delete what an earlier start kept).
        // A file that is not this run's (copied in, unreadable) is set aside instead.
        foreach (var old in List(output).Where(p => StepOf(p) <= state.Step).SkipLast(keep).Where(p => !KeptFor(StepOf(p), keepEvery)))
        {
            var (why, writtenKeepEvery) = Owner(old, config, dataset);
            if (why is not null)
            {
                var aside = OutputPaths.SetAside(old, "refused"); // not in the report's text, which is not made without a report
                report?.Invoke($"kept {old} as {aside}: not this run's checkpoint ({why}), so not pruned");
            }
            else if (!KeptFor(StepOf(old), writtenKeepEvery)) File.Delete(old);
        }
        return path;
    }

    static bool KeptFor(long step, int keepEvery) => keepEvery > 0 && step % keepEvery == 0;

    /// <summary>Why the checkpoint <paramref name="path"/> is not a checkpoint of this run (another
    /// format, identity setting or dataset, or an unreadable header), or null, with the --keep-every
    /// it was written under; its header alone is read.</summary>
    static (string? NotThisRuns, int KeepEvery) Owner(string path, TrainConfig config, DatasetIdentity? dataset)
    {
        try
        {
            var (progress, saved) = Header(Safetensors.ReadMetadata(path));
            return (dataset?.Difference(progress) ?? TrainConfig.IdentityDifference(saved, config), saved.KeepEvery);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or WeightsException)
        {
            return (e.Message, 0);
        }
    }

    /// <summary>A checkpoint's progress record (of this format) and stored config, from its metadata;
    /// <see cref="WeightsException"/> when either is missing or unreadable.</summary>
    static (JsonObject Progress, TrainConfig Config) Header(IReadOnlyDictionary<string, string> metadata)
    {
        JsonObject progress;
        try
        {
            progress = CrOC.Data.StrictJson.Parse(metadata.GetValueOrDefault("progress") ?? throw new WeightsException("no progress record")) as JsonObject
                ?? throw new WeightsException("its progress record is not a JSON object");
        }
        catch (JsonException e) { throw new WeightsException($"its progress record is not JSON ({e.Message})"); }
        if (Field<string>(progress, "format") != Format) throw new WeightsException($"not a {Format} file");
        try { return (progress, TrainConfig.FromJson(metadata.GetValueOrDefault("config") ?? throw new WeightsException("no stored config"))); }
        catch (ConfigException e) { throw new WeightsException($"its stored config cannot be read ({e.Message})"); }
    }

    /// <summary>Renames the checkpoints after step <paramref name="step"/> (files that were refused
    /// when the run resumed from <paramref name="step"/>) to *.refused (*.refused-2, … when an
    /// earlier refused file of that step is there): kept for inspection, never resumed from or
    /// pruned as the run writes its new checkpoints. Returns the new names.</summary>
    public static List<string> SetAsideAfter(string output, long step) =>
        [.. List(output).Where(p => StepOf(p) > step).Select(p => OutputPaths.SetAside(p, "refused"))];

    /// <summary>The step in a checkpoint's file name.</summary>
    public static long StepOf(string path) => NamedStep(path) ?? throw new ArgumentException($"'{path}' is not named step-N.safetensors", nameof(path));

    /// <summary>The step a file's name gives (step-N.safetensors: digits only, within long: a 20-digit stray is
    /// not a step), or null.</summary>
    static long? NamedStep(string path)
    {
        var name = Path.GetFileNameWithoutExtension(path);
        return name.StartsWith("step-", StringComparison.Ordinal) && long.TryParse(name["step-".Length..], System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out long step) ? step : null;
    }

    /// <summary>What is wrong with the first tensor of <paramref name="tensors"/> holding a NaN or an infinity, or
    /// (AdamW's second moments, whose square root is taken) a negative value; null when every value is fine.</summary>
    static string? UnfitOf(IEnumerable<(string Name, torch.Tensor Tensor)> tensors)
    {
        using var scope = torch.NewDisposeScope();
        foreach (var (name, t) in tensors)
        {
            if (!torch.isfinite(t).all().item<bool>()) return $"'{name}' holds NaN or infinite values";
            if (name.StartsWith("adam.v.", StringComparison.Ordinal) && t.lt(0).any().item<bool>()) return $"'{name}' holds negative values (a second moment cannot be)";
        }
        return null;
    }

    /// <summary>Every tensor a checkpoint of <paramref name="state"/> holds, by its name in the file.</summary>
    static IEnumerable<(string Name, torch.Tensor Tensor)> Contents(TrainingState state)
    {
        foreach (var (name, t) in state.Student) yield return ("student." + name, t);
        foreach (var (name, t) in state.Teacher) yield return ("teacher." + name, t);
        yield return ("centre", state.Model.Centre);
        yield return ("centre_c", state.Model.CentreC);
        foreach (var (name, m) in state.Optimizer.Moments)
        {
            yield return ("adam.m." + name, m.M);
            yield return ("adam.v." + name, m.V);
        }
    }

    /// <summary>What is wrong with <paramref name="state"/>'s values (see <see cref="UnfitOf"/>), or null: a finite
    /// loss can still be followed by an update that overflows, and a checkpoint of it must not become the run's
    /// last good one.</summary>
    public static string? Unfit(TrainingState state) => UnfitOf(Contents(state));

    /// <summary>Checkpoint files of a run, oldest first; a folder of such a name too (refused on resume, then set
    /// aside: left out, the run failed at its step's checkpoint on every resume once).</summary>
    public static List<string> List(string output) =>
        Directory.Exists(Folder(output))
            ? Directory.GetFileSystemEntries(Folder(output), "step-*.safetensors")
                .Where(p => NamedStep(p) is not null)
                .OrderBy(StepOf).ToList()
            : [];

    /// <summary>Restores the newest checkpoint that reads back and fits <paramref name="config"/>;
    /// returns its path, or null when there is none. Refused files are reported and skipped; a
    /// checkpoint of another number of processes or over another dataset than
    /// <paramref name="dataset"/> stops the run (<see cref="OutputException"/>: this rank's folder, which every rank may not see alike).</summary>
    public static string? TryRestore(string output, TrainConfig config, TrainingState state, Action<string> report, int world = 1, DatasetIdentity? dataset = null)
    {
        foreach (var path in Enumerable.Reverse(List(output)))
        {
            // a dangling link would throw FileNotFoundException, a FIFO would block the read forever
            if (!CrOC.Data.RegularFile.IsReadable(path))
            {
                report($"refused checkpoint {path}: not a readable file (a folder, a dangling link, a FIFO or a device, or no read permission); trying the previous one");
                continue;
            }
            try
            {
                Restore(path, config, state, world, dataset);
                return path;
            }
            catch (Exception e) when (e is WeightsException or JsonException or KeyNotFoundException or InvalidOperationException)
            {
                report($"refused checkpoint {path}: {e.Message}; trying the previous one");
            }
        }
        return null;
    }

    /// <summary>Restores <paramref name="state"/> from one checkpoint file (throws <see cref="WeightsException"/> when it does not fit).
    /// <paramref name="world"/> null: any number of processes (reading weights, not resuming);
    /// <paramref name="dataset"/> null: any dataset.</summary>
    public static void Restore(string path, TrainConfig config, TrainingState state, int? world = null, DatasetIdentity? dataset = null)
    {
        using var scope = torch.NewDisposeScope(); // the file's tensors, copied into the state (a checkpoint's worth stayed until the GC ran once)
        var (tensors, metadata) = Safetensors.Read(path);
        // The SHA-256 covers the data only: every field of the metadata is checked here, and
        // everything is checked before anything is copied, so a refused file leaves the state as it was.
        var (progress, saved) = Header(metadata);
        int madeWith = progress.ContainsKey("world") ? Field<int>(progress, "world") : 1;
        if (madeWith < 1) throw new WeightsException($"its progress record has world {madeWith}"); // not another run's: a corrupt one (it stopped the run once)
        if (world is int w && w != madeWith)
            throw new OutputException($"{path} was written by a run of {madeWith} process(es), this run has {w}: resume with the same number of processes (the data order and the lr scaling depend on it), or start a new --output"); // this rank's folder (no option of its: no pointer to --help)
        if (dataset?.Difference(progress) is { } other)
            throw new OutputException($"{path} was written by {other}: resume with the same dataset (the epochs, the schedules and the data order depend on it), or start anew in another --output (or, in train, with --move-aside)");
        if (TrainConfig.IdentityDifference(saved, config) is { } difference)
            throw new WeightsException($"it was {difference}");
        long step = Field<long>(progress, "step");
        if (step < 0) throw new WeightsException($"its progress record has step {step}");
        // a resume from step-3 whose record said step 0 once restarted the schedules and set aside steps 1-3 as refused
        if (NamedStep(path) is long named && named != step) throw new WeightsException($"its progress record says step {step}, its name step {named}");
        if (UnfitOf(tensors.Select(kv => (kv.Key, kv.Value))) is { } unfit) throw new WeightsException(unfit);
        var student = (Target: new NamedTensors(state.Student), Source: tensors.WithoutPrefix("student."));
        var teacher = (Target: new NamedTensors(state.Teacher), Source: tensors.WithoutPrefix("teacher."));
        foreach (var (target, source) in new[] { student, teacher })
        {
            var report = StateDictBinding.Compare(target, source);
            if (!report.Complete) throw new WeightsException($"the networks do not fit ({report.Describe()})");
        }
        var centre = Shaped(tensors, "centre", state.Model.Centre);
        var centreC = Shaped(tensors, "centre_c", state.Model.CentreC);
        var moments = (progress["adam_steps"] as JsonObject ?? throw new WeightsException("its progress record has no adam_steps object"))
            .Select(entry =>
            {
                var parameter = student.Target.GetValueOrDefault(entry.Key) ?? throw new WeightsException($"AdamW moments of '{entry.Key}', which the student does not have");
                int steps = Value<int>(entry.Value, $"adam_steps.{entry.Key}");
                // a checkpoint holds the moments of parameters updated at least once, at most once per step
                if (steps < 1 || steps > step) throw new WeightsException($"its progress record has adam_steps.{entry.Key} = {steps}, outside [1, {step}] (the step)");
                return (Name: entry.Key, M: Shaped(tensors, "adam.m." + entry.Key, parameter), V: Shaped(tensors, "adam.v." + entry.Key, parameter), Steps: steps);
            }).ToList();
        StateDictBinding.Bind(student.Target, student.Source, strict: true);
        StateDictBinding.Bind(teacher.Target, teacher.Source, strict: true);
        var device = state.Model.Centre.device; // the file's tensors are read on the CPU
        torch.Tensor Kept(torch.Tensor t) => t.to(device).clone().DetachFromDisposeScope(); // its own copy, outliving the scope
        var replaced = state.Model;
        // in the run's dtype, as the weights are bound (an int64 centre ended every resume in an internal error)
        state.Model = new Croc.CrocState(replaced.Student, replaced.Teacher, Kept(centre.to(replaced.Centre.dtype)), Kept(centreC.to(replaced.CentreC.dtype)));
        replaced.Centre.Dispose();
        replaced.CentreC.Dispose();
        foreach (var (name, m, v, steps) in moments)
            state.Optimizer.Restore(name, Kept(m), Kept(v), steps); // AdamW takes them over
        state.Step = step;
    }

    /// <summary>A field of a checkpoint's progress record, of type <typeparamref name="T"/>.</summary>
    static T Field<T>(JsonObject record, string name) => Value<T>(record[name], name);

    static T Value<T>(JsonNode? node, string name) =>
        node is JsonValue value && value.TryGetValue<T>(out var read) ? read
            : throw new WeightsException($"its progress record has no {typeof(T).Name} '{name}'");

    /// <summary>The tensor <paramref name="name"/> of a file, shaped like <paramref name="like"/>.</summary>
    static torch.Tensor Shaped(NamedTensors tensors, string name, torch.Tensor like) =>
        tensors.GetValueOrDefault(name) is { } t
            ? t.shape.SequenceEqual(like.shape) ? t : throw new WeightsException($"'{name}' has shape [{string.Join(", ", t.shape)}], this run needs [{string.Join(", ", like.shape)}]")
            : throw new WeightsException($"no '{name}' tensor");
}
