using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.Json.Serialization;
using CrOC.Data;
using CrOC.Host.CommandLine;
using CrOC.Host.Runtime;

namespace CrOC.Host.Training;

/// <summary>
/// Every setting of a training run, fully resolved: a preset's defaults, then a JSON or TOML config
/// file (<c>--config</c>), then command-line overrides (<c>--kebab-name value</c>, one per property).
/// Stored in the run folder and inside every checkpoint.
/// </summary>
[Command("train", TrainCommand.Summary, Notes = TrainHelp.Notes)]
public sealed record TrainConfig
{
    // --- run ---
    [Option("recipe the other defaults come from (official: ViT-S/16 at 224 px, spec §10)")]
    public Preset Preset { get; init; } = Preset.Tiny;
    [Option("image folders, .tar archives (archive.tar#folder), patterns (*, {000..009}: quote them for the shell) or .txt lists; comma-separated (a path holding a comma is taken whole when it exists)", Value = "ROOTS", Default = "the embedded synthetic scenes")]
    public string[] Data { get; init; } = [];
    [Option("run folder: config.json, train.log, metrics.jsonl, tensorboard/, checkpoints/ (owned by one run)", Value = "DIR")]
    public string Output { get; init; } = "runs/croc-tiny";
    [Option("passes over the data; the schedules span them", Min = 1, Max = 1000000)]
    public int Epochs { get; init; } = 4;
    [Option("stop after this many optimiser steps (0: run all epochs; the schedules still span --epochs)", Min = 0)]
    public int MaxSteps { get; init; }
    [Option("images per micro-batch and process", Min = 1, Max = 65536)]
    public int Batch { get; init; } = 32;
    [Option("micro-batches accumulated per optimiser step (each its own CrOC batch)", Min = 1, Max = 65536)]
    public int Accum { get; init; } = 1;
    [Option("data-loading threads", Min = 0, Max = 256)]
    public int Workers { get; init; } = 2;
    [Option("seed of the weights, the data order, the augmentation and the clustering", Min = 0)]
    public int Seed { get; init; }
    [Option("where the step runs (cuda: the local rank's GPU)", Value = "cpu|cuda[:N]")]
    public string Device { get; init; } = "cpu";
    [Option("torch threads per process (0: the cores shared among the processes on this machine)", Min = 0, Max = 4096)]
    public int Threads { get; init; }
    [Option("seconds a collective may wait for the other processes before this one gives up (exit 3)", Min = 1, Max = 604800)]
    public int CollectiveTimeout { get; init; } = 600;
    [Option("continue from the newest good checkpoint of this run in --output")]
    public bool Resume { get; init; } = true;
    [Option("write a checkpoint every N steps (and at the last step, and when stopped)", Min = 1)]
    public int CheckpointEvery { get; init; } = 100;
    [Option("checkpoints of this run kept (older ones are pruned)", Min = 1, Max = 100000)]
    public int KeepCheckpoints { get; init; } = 3;
    [Option("also keep every checkpoint whose step is a multiple of N, e.g. for a curve over training (0: none; kept ones stay kept on a resume without it)", Min = 0)]
    public int KeepEvery { get; init; }
    [Option("a progress line in train.log every N steps", Min = 1)]
    public int LogEvery { get; init; } = 10;
    [Option("size of the generated synthetic training set", Min = 1, Max = 10000000)]
    public int SyntheticTrain { get; init; } = 1024;
    [Option("size of the generated synthetic validation set", Min = 1, Max = 10000000)]
    public int SyntheticVal { get; init; } = 64;

    // --- model ---
    [Option("ViT width: tiny D=192, small D=384 (CrOC's), base D=768")]
    public Arch Arch { get; init; } = Arch.Tiny;
    [Option("transformer blocks", Min = 1, Max = 256)]
    public int Depth { get; init; } = 12;
    [Option("patch size in pixels", Min = 1, Max = 1024)]
    public int Patch { get; init; } = 8;
    [Option("side of the two global views in pixels (a multiple of --patch)", Min = 1, Max = 4096)]
    public int ImageSize { get; init; } = 64;
    [Option("hidden width of the head's MLP", Min = 1, Max = 1000000)]
    public int HeadHidden { get; init; } = 512;
    [Option("bottleneck width of the head's MLP", Min = 1, Max = 1000000)]
    public int HeadBottleneck { get; init; } = 128;
    [Option("outputs of the image-level last layer (L)", Min = 2, Max = 10000000)]
    public int OutDim { get; init; } = 4096;
    [Option("outputs of the object-level last layer (L_c)", Min = 2, Max = 10000000)]
    public int OutDimC { get; init; } = 1024;
    [Option("keep the last layers' weight-norm gains at 1 (the official default)")]
    public bool NormLastLayer { get; init; } = true;
    [Option("stochastic depth of the student's last block (linear over blocks)", Min = 0, Max = 1, MaxExclusive = true)]
    public double DropPath { get; init; } = 0.1;
    /// <summary>fp32, or bf16 mixed precision (matmuls, attention, MLPs in bfloat16; float32 master
    /// weights); auto (resolved when the config is): bf16 where it is faster than fp32, else fp32.</summary>
    [Option("bf16: mixed precision with float32 master weights; auto: bf16 where it is faster than fp32 (CUDA, AMX CPUs, AMD CPUs with AVX512-BF16), else fp32")]
    public PrecisionChoice Precision { get; init; } = PrecisionChoice.Auto;

    // --- optimisation (spec §10) ---
    /// <summary>Peak lr for a global batch of 256; scaled linearly by the global batch.</summary>
    [Option("peak learning rate per 256 images (scaled by the global batch)", Min = 0, MinExclusive = true, Max = 10)]
    public double Lr { get; init; } = 5e-3;
    [Option("final learning rate of the cosine decay", Min = 0, Max = 10)]
    public double MinLr { get; init; } = 1e-5;
    [Option("epochs of linear lr warm-up (0 when --epochs <= 2)", Min = 0)]
    public int WarmupEpochs { get; init; } = 1;
    [Option("weight decay at the start of the cosine schedule", Min = 0, Max = 100)]
    public double WeightDecay { get; init; } = 0.04;
    [Option("weight decay at the end of the cosine schedule", Min = 0, Max = 100)]
    public double WeightDecayEnd { get; init; } = 0.4;
    [Option("EMA momentum of the teacher at the start (rises to 1 by a cosine)", Min = 0, Max = 1)]
    public double MomentumTeacher { get; init; } = 0.99;
    [Option("per-tensor gradient-norm clipping (0: off)", Min = 0)]
    public double ClipGrad { get; init; } = 3.0;
    [Option("epochs during which the last layers get no update", Min = 0)]
    public int FreezeLastLayer { get; init; } = 1;

    // --- losses ---
    [Option("weight of the object loss L_obj (0: the DINO-only baseline)", Min = 0, Max = 1000)]
    public double Alpha { get; init; } = 1.0;
    [Option("image-level vector: the CLS token (official) or the mean patch token (poster)")]
    public GlobalPoolChoice GlobalPool { get; init; } = GlobalPoolChoice.Cls;
    [Option("student temperature, image level", Min = 0.001, Max = 100)]
    public double StudentTemp { get; init; } = 0.1;
    [Option("student temperature, object level", Min = 0.001, Max = 100)]
    public double StudentTempC { get; init; } = 0.1;
    [Option("teacher temperature at the start of its warm-up, image level", Min = 0.001, Max = 100)]
    public double WarmupTeacherTemp { get; init; } = 0.04;
    [Option("teacher temperature after the warm-up, image level", Min = 0.001, Max = 100)]
    public double TeacherTemp { get; init; } = 0.04;
    [Option("epochs of the teacher-temperature warm-up", Min = 0)]
    public int WarmupTeacherTempEpochs { get; init; }
    [Option("teacher temperature at the start of its warm-up, object level", Min = 0.001, Max = 100)]
    public double WarmupTeacherTempC { get; init; } = 0.04;
    [Option("teacher temperature after the warm-up, object level", Min = 0.001, Max = 100)]
    public double TeacherTempC { get; init; } = 0.04;
    [Option("momentum of both centres", Min = 0, Max = 1)]
    public double CentreMomentum { get; init; } = 0.9;

    // --- clustering (spec §6) ---
    [Option("features clustered: the last block's keys per head (official) or the output tokens (the poster's Z_cat)")]
    public ClusteredFeatures Features { get; init; } = ClusteredFeatures.Keys;
    [Option("initial seeds K0 of the clustering", Min = 2, Max = 1024)]
    public int NTokens { get; init; } = 5;
    [Option("largest K that may be selected (K* in [2, this], by the smallest transport cost)", Min = 2, Max = 1024)]
    public int NCentroidsMax { get; init; } = 4;
    [Option("a fixed K for every problem instead (the poster's variant; 0: choose K* by transport cost)", Min = 0, Max = 1024)]
    public int ClusterK { get; init; }
    [Option("Sinkhorn solver: linear domain (official) or log domain (finite for large lambda)")]
    public SinkhornSolverChoice SinkhornSolver { get; init; } = SinkhornSolverChoice.Linear;
    [Option("Sinkhorn's lambda (1/epsilon)", Min = 0, MinExclusive = true, Max = 10000)]
    public double SinkhornLambda { get; init; } = 20;
    [Option("Sinkhorn iterations", Min = 1, Max = 10000)]
    public int SinkhornIterations { get; init; } = 5;
    [Option("weight lambda_pos of the positional cost", Min = 0, Max = 10000)]
    public double PosAlpha { get; init; } = 4.0;
    [Option("uniform token and cluster marginals (the poster's variant) instead of CLS similarity")]
    public bool UniformMarginals { get; init; }
    [Option("layout of the selected clusters: dynamic (K-bar columns and the list of valid clusters, read back to the host: the spec's form) or fixed (every column weighted by its validity: no host read, e.g. for GPUs; the same values up to float rounding)")]
    public ObjectShapesChoice ObjectShapes { get; init; } = ObjectShapesChoice.Dynamic;
    [Option("smallest area fraction of a global crop", Min = 0, MinExclusive = true, Max = 1)]
    public double MinScale { get; init; } = 0.25;

    /// <summary>The official CrOC recipe (spec §10): ViT-S/16 at 224 px, 65536/8192 outputs, 300 epochs.</summary>
    public static TrainConfig Official => new()
    {
        Preset = Preset.Official, Output = "runs/croc-official", Epochs = 300, Batch = 16, Workers = 4,
        Arch = Arch.Small, Depth = 12, Patch = 16, ImageSize = 224, HeadHidden = 2048, HeadBottleneck = 256,
        OutDim = 65536, OutDimC = 8192, Lr = 5e-4, MinLr = 1e-6, WarmupEpochs = 10, MomentumTeacher = 0.996,
        CheckpointEvery = 1000,
    };

    /// <summary>A ViT-Tiny/8 at 64 px on the synthetic scenes: a few minutes on a 2-core CPU.</summary>
    public static TrainConfig Tiny => new();

    /// <summary>The defaults of the preset spelled <paramref name="word"/> (from the command line or a config file).</summary>
    public static TrainConfig ForPreset(string word) => Choices.Parse(typeof(Preset), word) switch
    {
        Preset.Official => Official,
        Preset.Tiny => Tiny,
        _ => throw new ConfigException($"--preset must be one of {Choices.Words(typeof(Preset))}, got '{Quoted.Printable(word)}'"),
    };

    /// <summary>The most bytes of a --config file read (one of this tool's: a few KB).</summary>
    const int ConfigLimit = 16 << 20;

    static readonly JsonSerializerOptions Json = new()
    {
        WriteIndented = true,
        PropertyNamingPolicy = JsonNamingPolicy.KebabCaseLower,
        UnmappedMemberHandling = JsonUnmappedMemberHandling.Disallow,
        // NaN and ±Infinity are read (and then refused by the range checks with a clear message).
        NumberHandling = JsonNumberHandling.AllowNamedFloatingPointLiterals,
        Converters = { new JsonStringEnumConverter(JsonNamingPolicy.CamelCase, allowIntegerValues: false) }, // Bf16 ↔ "bf16"
    };

    public string ToJson() => JsonSerializer.Serialize(this, Json);

    public static TrainConfig FromJson(string json)
    {
        try
        {
            return JsonSerializer.Deserialize<TrainConfig>(json, Json) ?? throw new ConfigException("empty configuration");
        }
        catch (JsonException e)
        {
            // .NET's text names the record's CLR type ("… contained in type 'CrOC.Host.Training.TrainConfig'" once)
            var member = (e.Path ?? "").TrimStart('$', '.');
            throw new ConfigException(e.Message.Contains("could not be mapped", StringComparison.Ordinal) ? $"unknown setting '{member}'"
                : e.Message.Contains("could not be converted", StringComparison.Ordinal) ? $"setting '{member}' cannot be read" // the rest names no type: a syntax error's place is kept
                : e.Message);
        }
    }

    /// <summary>The settings that make a run what it is: a checkpoint or a run folder made with
    /// other values of these belongs to another run (the others may change on resume).</summary>
    public static readonly string[] IdentityKeys = ["arch", "depth", "patch", "image-size", "head-hidden", "head-bottleneck", "out-dim", "out-dim-c", "batch", "accum", "seed", "epochs", "alpha"];

    /// <summary>"made with KEY = a, this run has b" for the first identity key that differs, or null.</summary>
    public static string? IdentityDifference(TrainConfig earlier, TrainConfig now) =>
        Differences(earlier, now).Where(d => IdentityKeys.Contains(d.Key)).Select(d => $"made with {d.Key} = {d.Earlier}, this run has {d.Now}").FirstOrDefault();

    /// <summary>The settings whose values differ, as JSON text, in the order of the stored config.</summary>
    public static IEnumerable<(string Key, string Earlier, string Now)> Differences(TrainConfig earlier, TrainConfig now)
    {
        var (made, current) = (JsonNode.Parse(earlier.ToJson())!.AsObject(), JsonNode.Parse(now.ToJson())!.AsObject());
        foreach (var (key, value) in current)
        {
            var (a, b) = (made[key]?.ToJsonString() ?? "null", value?.ToJsonString() ?? "null");
            if (a != b) yield return (key, a, b);
        }
    }

    /// <summary>Resolves the configuration from the command line: preset → --config file → overrides.</summary>
    public static TrainConfig Resolve(IReadOnlyList<(string Name, string? Value)> arguments)
    {
        foreach (var (name, value) in arguments)
            if (name is "config" or "preset" && string.IsNullOrWhiteSpace(value)) throw new ConfigException($"--{name} needs a value");
        string? file = arguments.LastOrDefault(a => a.Name == "config").Value is { } named ? CrOC.Data.ImageSources.HomeExpanded(named) : null; // `--config=~/x`, as every path option
        string? preset = arguments.LastOrDefault(a => a.Name == "preset").Value;
        var config = ForPreset(preset ?? "tiny");
        if (file is not null)
        {
            if (!File.Exists(file)) throw new ConfigException(Directory.Exists(file) ? $"--config: '{file}' is a folder, not a file" : $"--config: '{file}' not found");
            var fromFile = ReadConfigFile(file);
            if (fromFile.ValueKind != JsonValueKind.Object) throw new ConfigException($"--config '{file}': not a table of settings");
            foreach (var member in fromFile.EnumerateObject())
            {
                if (member.Name == "move-aside") // listed in train --help, but it acts on the folder, not the run
                    throw new ConfigException($"--config '{file}': 'move-aside' is the command line's alone (it moves an earlier run away, once): give --move-aside there");
                if (OptionSet<TrainConfig>.Find(member.Name) is null)
                    throw new ConfigException($"--config '{file}': unknown setting '{Quoted.Printable(member.Name)}'{OptionSet<TrainConfig>.Suggestion(member.Name)}");
                if (member.Value.ValueKind == JsonValueKind.Null) throw new ConfigException($"--config '{file}': '{member.Name}' is null; give a value or leave it out");
                if (FileValueProblem(OptionSet<TrainConfig>.Find(member.Name)!, member.Value) is { } problem) throw new ConfigException($"--config '{file}': '{member.Name}' {problem}");
            }
            var filePreset = fromFile.TryGetProperty("preset", out var p)
                ? p.ValueKind == JsonValueKind.String ? p.GetString() : throw new ConfigException($"--config '{file}': preset must be a name (tiny or official)")
                : null;
            // The file overrides the preset's defaults: merge its members over the preset's JSON. A
            // list may also be one comma-separated string, as on the command line.
            TrainConfig presetDefaults;
            try { presetDefaults = ForPreset(preset ?? filePreset ?? "tiny"); }
            catch (ConfigException e) when (preset is null) { throw new ConfigException($"--config '{file}': {e.Message.Replace("--preset", "preset", StringComparison.Ordinal)}"); } // the file's word, not a --preset the user never gave
            var merged = JsonSerializer.SerializeToNode(presetDefaults, Json)!.AsObject();
            foreach (var member in fromFile.EnumerateObject())
                merged[member.Name] = OptionSet<TrainConfig>.Find(member.Name)!.ValueType.IsArray && member.Value.ValueKind == JsonValueKind.String
                    ? ListOf(member.Value.GetString()!, member.Name, file)
                    : JsonNode.Parse(member.Value.GetRawText());
            try { config = JsonSerializer.Deserialize<TrainConfig>(merged.ToJsonString(), Json)!; }
            catch (JsonException e) { throw new ConfigException($"--config '{file}': {WrongType(e, fromFile)}"); }
            // the file's own values against their ranges, where the command line does not replace them ("--lr must be …" without the file once)
            var replaced = arguments.Select(a => OptionSet<TrainConfig>.Find(a.Name)?.Name).ToHashSet();
            var set = fromFile.EnumerateObject().Select(m => OptionSet<TrainConfig>.Find(m.Name)!.Name).ToHashSet();
            try { OptionSet<TrainConfig>.Validate(config, name => set.Contains(name) && !replaced.Contains(name)); }
            catch (OptionException e) { throw new ConfigException($"--config '{file}': {e.Message}"); }
            if (set.Contains("device") && !replaced.Contains("device") && !Runtime.Devices.IsWellFormed(config.Device))
                throw new ConfigException($"--config '{file}': {Runtime.Devices.FormatRule(config.Device)}"); // as the ranges above; Validated() names no file
        }
        config = config with { Output = CrOC.Data.ImageSources.HomeExpanded(config.Output) }; // a config file's "~/runs/x", as --data's ~/
        OptionSet<TrainConfig>.Apply(config, arguments.Where(a => a.Name is not "config"), "config", "move-aside");
        config = config.Validated();
        return config with { Precision = Precisions.Resolve(config.Precision, config.Device) };
    }

    /// <summary>What is wrong with a config file's <paramref name="value"/> of a path or name option (a
    /// string, or a list's items) that the command line refuses too, or null: blank, a NUL, bytes that
    /// were not UTF-8 (<see cref="OptionSet{T}.TextProblem(OptionInfo, string)"/>), an empty list (`"data": []` trained on
    /// the synthetic scenes once, as if it were left out).</summary>
    static string? FileValueProblem(OptionInfo option, JsonElement value)
    {
        if (value.ValueKind == JsonValueKind.String) return OptionSet<TrainConfig>.TextProblem(option, value.GetString()!);
        if (value.ValueKind != JsonValueKind.Array || !option.ValueType.IsArray) return null; // a wrong type: the deserializer names it
        if (value.GetArrayLength() == 0) return "is an empty list: give at least one value, or leave it out for the default";
        if (value.EnumerateArray().Any(item => item.ValueKind != JsonValueKind.String)) return null; // the deserializer names the wrong type
        var items = value.EnumerateArray().Select(item => item.GetString()!.Trim()).ToArray();
        return Arguments.EmptyItems(items) ?? OptionSet<TrainConfig>.TextProblem(option, items);
    }

    /// <summary>A config file's list (of paths: the only list) given as one comma-separated string, as a
    /// JSON array; refused when it names nothing or has an empty item, as the command line refuses it.</summary>
    static JsonArray ListOf(string text, string key, string file)
    {
        var items = Arguments.PathItems(text);
        if (Arguments.EmptyItems(items) is { } empty) throw new ConfigException($"--config '{file}': '{key}' {empty}, got \"{Quoted.Printable(text)}\"");
        return new JsonArray([.. items.Select(item => (JsonNode?)JsonValue.Create(item))]);
    }

    /// <summary>"'KEY' must be TYPE, got VALUE" for a file member the deserializer could not convert
    /// (<see cref="JsonException.Path"/> names it), else the exception's message.</summary>
    static string WrongType(JsonException e, JsonElement fromFile)
    {
        var key = (e.Path ?? "").TrimStart('$', '.').Split('[')[0];
        if (OptionSet<TrainConfig>.Find(key) is not { } option || !fromFile.TryGetProperty(key, out var value)) return e.Message;
        var type = option.ValueType;
        string expected = type == typeof(bool) ? "true or false"
            : type.IsEnum ? $"one of {Choices.Words(type)}"
            : type.IsArray ? "a list of strings or one comma-separated string"
            : type == typeof(string) ? "a string"
            : type == typeof(double) ? "a number"
            : value.ValueKind == JsonValueKind.Number ? $"an integer in [{OptionSet<TrainConfig>.IntegerBounds(option.Declaration)}]" : "an integer"; // not int's whole range: [-2147483648, 2147483647] for epochs once
        return $"'{key}' must be {expected}, got {OneLine(value)}";
    }

    /// <summary>A file's value as compact JSON on one line, cut at 60 characters (a nested table
    /// would otherwise be echoed as it was laid out, over many lines).</summary>
    static string OneLine(JsonElement value)
    {
        var text = JsonSerializer.Serialize(value, new JsonSerializerOptions { Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping });
        return text.Length <= 60 ? text : text[..59] + "…";
    }

    /// <summary>The option names a config file sets (a file that <see cref="Resolve"/> accepted).</summary>
    public static IEnumerable<string> SettingsOf(string file) =>
        ReadConfigFile(file).EnumerateObject().Select(m => OptionSet<TrainConfig>.Find(m.Name)?.Name ?? m.Name);

    /// <summary>TOML's values as JSON: <see cref="Json"/>, with floats written as floats (TOML's `epochs = 1.0`
    /// was JSON's 1, an integer, where JSON's own 1.0 is refused).</summary>
    static readonly JsonSerializerOptions TomlAsJson = new(Json) { Converters = { new FloatKeepsItsPoint() } };

    sealed class FloatKeepsItsPoint : JsonConverter<double>
    {
        public override double Read(ref Utf8JsonReader reader, Type type, JsonSerializerOptions options) => reader.GetDouble();

        public override void Write(Utf8JsonWriter writer, double value, JsonSerializerOptions options)
        {
            if (!double.IsFinite(value)) writer.WriteStringValue(value.ToString(CultureInfo.InvariantCulture)); // "NaN", as AllowNamedFloatingPointLiterals reads it
            else if (value == System.Math.Floor(value) && System.Math.Abs(value) < 1e15) writer.WriteRawValue(value.ToString("F1", CultureInfo.InvariantCulture));
            else writer.WriteNumberValue(value);
        }
    }

    /// <summary>A JSON or (by extension) TOML config file as a JSON element with the option names as keys.</summary>
    static JsonElement ReadConfigFile(string file)
    {
        byte[] bytes;
        try { bytes = BoundedFile.ReadBytes(file, ConfigLimit); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { throw new ConfigException($"--config '{file}' cannot be read: {e.Message}"); }
        // TOML's parser called a Latin-1 byte (read as U+FFFD) "Invalid UTF-16 surrogate sequence" once
        var text = BoundedFile.Utf8Text(bytes, out int bad)
            ?? throw new ConfigException($"--config '{file}' line {bytes.AsSpan(0, bad).Count((byte)'\n') + 1} is not UTF-8 text (a Latin-1 or other 8-bit byte?): save the file as UTF-8");
        try
        {
            if (file.EndsWith(".toml", StringComparison.OrdinalIgnoreCase))
                text = JsonSerializer.Serialize(Tomlyn.TomlSerializer.Deserialize<Dictionary<string, object>>(text, (Tomlyn.TomlSerializerOptions?)null), TomlAsJson);
            var root = StrictJson.Document(text).RootElement;
            // JSON allows a key twice, the last silently winning (TOML refuses it): refused here too
            if (root.ValueKind == JsonValueKind.Object && root.EnumerateObject().GroupBy(m => m.Name).FirstOrDefault(g => g.Count() > 1) is { } twice)
                throw new ConfigException($"--config '{file}': '{twice.Key}' is given {twice.Count()} times");
            return root;
        }
        catch (Exception e) when (e is JsonException or Tomlyn.TomlException or ArgumentException or InvalidOperationException)
        {
            throw new ConfigException($"--config '{file}': {(string.IsNullOrWhiteSpace(text) ? "the file is empty" : NotJson(e))}");
        }
    }

    /// <summary>The parser's complaint without its .NET wording: where the JSON stops being JSON (the reader's
    /// positions count from 0), or the message of a check of ours or of TOML's, which has no position.</summary>
    static string NotJson(Exception e) => e switch
    {
        // the runtime's English message (SatelliteResourceLanguages=en); a test holds it
        JsonException { LineNumber: long line } when e.Message.Contains("maximum configured depth") => $"not a JSON object of options: values nested more than {StrictJson.MaxDepth} deep (line {line + 1})",
        JsonException { LineNumber: long line, BytePositionInLine: long at } => $"not a JSON object of options (a name ending in .toml is read as TOML): the text stops being JSON at line {line + 1}, byte {at + 1}",
        _ => e.Message,
    };

    /// <summary>Fails on a value out of its declared range (also from a config file) and on settings that cannot work together.</summary>
    public TrainConfig Validated()
    {
        try { OptionSet<TrainConfig>.Validate(this); }
        catch (OptionException e) { throw new ConfigException(e.Message); }
        void Check(bool ok, string message) { if (!ok) throw new ConfigException(message); }
        Check(ImageSize % Patch == 0, $"--image-size {ImageSize} must be a multiple of --patch {Patch}");
        Check(NCentroidsMax >= 2 && NCentroidsMax <= NTokens, $"--n-centroids-max must be in [2, --n-tokens = {NTokens}]");
        Check(ClusterK <= NTokens, $"--cluster-k must be in [1, --n-tokens = {NTokens}] (or 0)");
        int patches = 2 * (ImageSize / Patch) * (ImageSize / Patch);
        Check(patches >= NTokens, $"--image-size {ImageSize} gives two views {patches} patches, fewer than --n-tokens {NTokens} (the clustering's initial clusters)");
        Check(Runtime.Devices.IsWellFormed(Device), Runtime.Devices.FormatRule(Device));
        Check(WarmupEpochs < Epochs || Epochs <= 2, $"--warmup-epochs {WarmupEpochs} must be shorter than --epochs {Epochs}");
        Check(Data.Length > 0 || SyntheticTrain >= Batch, "--synthetic-train must hold at least one batch");
        return this;
    }

    /// <summary>Settings that run but do less than they seem to: said at the start of a run.</summary>
    public IEnumerable<string> Warnings()
    {
        // the cost M is min–max rescaled to [0, 1]; float32's exp underflows below e^-87
        if (SinkhornSolver == SinkhornSolverChoice.Linear && Alpha > 0 && SinkhornLambda > 87)
            yield return $"warning: --sinkhorn-lambda {SinkhornLambda} with the linear-domain solver: exp(−λ·M) of the rescaled cost M ∈ [0, 1] underflows in float32 above M = {87 / SinkhornLambda:G2}, the official guard turns the plan's NaNs into 1e-8 and the clusters stop following the features; --sinkhorn-solver log stays finite";
        if (WarmupTeacherTempEpochs > Epochs && (WarmupTeacherTemp != TeacherTemp || WarmupTeacherTempC != TeacherTempC))
            yield return $"warning: --warmup-teacher-temp-epochs {WarmupTeacherTempEpochs} is longer than --epochs {Epochs}: the teacher temperatures end at {CrOC.Math.Schedules.teacherTemperature(WarmupTeacherTemp, TeacherTemp, WarmupTeacherTempEpochs, Epochs - 1):G3} / {CrOC.Math.Schedules.teacherTemperature(WarmupTeacherTempC, TeacherTempC, WarmupTeacherTempEpochs, Epochs - 1):G3}, short of --teacher-temp {TeacherTemp} / --teacher-temp-c {TeacherTempC}";
        if (DropPath > 0 && Depth == 1)
            yield return $"warning: --drop-path {DropPath} drops nothing with --depth 1 (DINO's rates rise linearly from 0 at the first block to the value at the last, which is the first here)";
    }
}

/// <summary>A configuration that cannot be used; the CLI reports it with exit code 2.
/// <paramref name="everyRank"/>: whether every process of a distributed run meets it alike (the
/// options, the config file), or it may be one rank's alone (its dataset, its output folder).</summary>
public sealed class ConfigException(string message, bool everyRank = true) : Exception(message), CommandLine.IBadOption
{
    public bool EveryRank { get; } = everyRank;
}
