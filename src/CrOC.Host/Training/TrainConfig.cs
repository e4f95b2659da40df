using System.Globalization;
using System.Reflection;
using System.Text.Json;
using System.Text.Json.Serialization;

namespace CrOC.Host.Training;

/// <summary>
/// Every setting of a training run, fully resolved: a preset's defaults, then a JSON or TOML config
/// file (<c>--config</c>), then command-line overrides (<c>--kebab-name value</c>, one per property).
/// Stored in the run folder and inside every checkpoint.
/// </summary>
public sealed record TrainConfig
{
    // --- run ---
    public string Preset { get; init; } = "tiny";
    /// <summary>Dataset roots (folders, patterns, .txt lists); empty: the embedded synthetic scenes.</summary>
    public string[] Data { get; init; } = [];
    public string Output { get; init; } = "runs/croc-tiny";
    public int Epochs { get; init; } = 4;
    /// <summary>Stop after this many optimiser steps (0: run all epochs).</summary>
    public int MaxSteps { get; init; }
    /// <summary>Images per micro-batch (per process).</summary>
    public int Batch { get; init; } = 32;
    /// <summary>Micro-batches accumulated per optimiser step.</summary>
    public int Accum { get; init; } = 1;
    public int Workers { get; init; } = 2;
    public int Seed { get; init; }
    public string Device { get; init; } = "cpu";
    /// <summary>torch threads per process (0: the cores shared among the processes on this machine).</summary>
    public int Threads { get; init; }
    /// <summary>Seconds a collective (all-reduce, barrier) may wait for the other processes before
    /// this one gives up: a rank that died or hangs ends the run instead of hanging it.</summary>
    public int CollectiveTimeout { get; init; } = 600;
    public bool Resume { get; init; } = true;
    public int CheckpointEvery { get; init; } = 100;
    public int KeepCheckpoints { get; init; } = 3;
    public int LogEvery { get; init; } = 10;
    /// <summary>Size of the generated synthetic training / validation sets.</summary>
    public int SyntheticTrain { get; init; } = 1024;
    public int SyntheticVal { get; init; } = 64;

    // --- model ---
    public string Arch { get; init; } = "tiny";
    public int Depth { get; init; } = 12;
    public int Patch { get; init; } = 8;
    public int ImageSize { get; init; } = 64;
    public int HeadHidden { get; init; } = 512;
    public int HeadBottleneck { get; init; } = 128;
    public int OutDim { get; init; } = 4096;
    public int OutDimC { get; init; } = 1024;
    public bool NormLastLayer { get; init; } = true;
    public double DropPath { get; init; } = 0.1;
    /// <summary>fp32, or bf16 mixed precision (matmuls, attention, MLPs in bfloat16; float32 master
    /// weights); auto (resolved when the config is): bf16 where bfloat16 is native, else fp32.</summary>
    public string Precision { get; init; } = "auto";

    // --- optimisation (spec §10) ---
    /// <summary>Peak lr for a global batch of 256; scaled linearly by the global batch.</summary>
    public double Lr { get; init; } = 5e-3;
    public double MinLr { get; init; } = 1e-5;
    public int WarmupEpochs { get; init; } = 1;
    public double WeightDecay { get; init; } = 0.04;
    public double WeightDecayEnd { get; init; } = 0.4;
    public double MomentumTeacher { get; init; } = 0.99;
    public double ClipGrad { get; init; } = 3.0;
    public int FreezeLastLayer { get; init; } = 1;

    // --- losses ---
    public double Alpha { get; init; } = 1.0;
    public string GlobalPool { get; init; } = "cls";
    public double StudentTemp { get; init; } = 0.1;
    public double StudentTempC { get; init; } = 0.1;
    public double WarmupTeacherTemp { get; init; } = 0.04;
    public double TeacherTemp { get; init; } = 0.04;
    public int WarmupTeacherTempEpochs { get; init; }
    public double WarmupTeacherTempC { get; init; } = 0.04;
    public double TeacherTempC { get; init; } = 0.04;
    public double CentreMomentum { get; init; } = 0.9;

    // --- clustering (spec §6) ---
    public string Features { get; init; } = "keys";
    public int NTokens { get; init; } = 5;
    public int NCentroidsMax { get; init; } = 4;
    public double SinkhornLambda { get; init; } = 20;
    public int SinkhornIterations { get; init; } = 5;
    public double PosAlpha { get; init; } = 4.0;
    public bool UniformMarginals { get; init; }
    public double MinScale { get; init; } = 0.25;

    /// <summary>The official CrOC recipe (spec §10): ViT-S/16 at 224 px, 65536/8192 outputs, 300 epochs.</summary>
    public static TrainConfig Official => new()
    {
        Preset = "official", Output = "runs/croc-official", Epochs = 300, Batch = 16, Workers = 4,
        Arch = "small", Depth = 12, Patch = 16, ImageSize = 224, HeadHidden = 2048, HeadBottleneck = 256,
        OutDim = 65536, OutDimC = 8192, Lr = 5e-4, MinLr = 1e-6, WarmupEpochs = 10, MomentumTeacher = 0.996,
        CheckpointEvery = 1000, LogEvery = 10,
    };

    /// <summary>A ViT-Tiny/8 at 64 px on the synthetic scenes: a few minutes on a 2-core CPU.</summary>
    public static TrainConfig Tiny => new();

    public static TrainConfig ForPreset(string preset) => preset switch
    {
        "official" => Official,
        "tiny" => Tiny,
        _ => throw new ConfigException($"unknown preset '{preset}' (official | tiny)"),
    };

    static readonly JsonSerializerOptions Json = new()
    {
        WriteIndented = true,
        PropertyNamingPolicy = JsonNamingPolicy.KebabCaseLower,
        UnmappedMemberHandling = JsonUnmappedMemberHandling.Disallow,
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
            throw new ConfigException($"bad configuration: {e.Message}");
        }
    }

    static readonly Dictionary<string, PropertyInfo> ByOption = typeof(TrainConfig)
        .GetProperties(BindingFlags.Public | BindingFlags.Instance)
        .Where(p => p.CanWrite)
        .ToDictionary(p => JsonNamingPolicy.KebabCaseLower.ConvertName(p.Name), p => p);

    public static IEnumerable<string> OptionNames => ByOption.Keys;

    /// <summary>Resolves the configuration from the command line: preset → --config file → overrides.</summary>
    public static TrainConfig Resolve(IReadOnlyList<(string Name, string? Value)> arguments)
    {
        string? file = arguments.LastOrDefault(a => a.Name == "config").Value;
        string? preset = arguments.LastOrDefault(a => a.Name == "preset").Value;
        var config = ForPreset(preset ?? "tiny");
        if (file is not null)
        {
            if (!File.Exists(file)) throw new ConfigException($"--config: '{file}' not found");
            var fromFile = ReadConfigFile(file);
            var filePreset = fromFile.TryGetProperty("preset", out var p) ? p.GetString() : null;
            // The file overrides the preset's defaults: merge its members over the preset's JSON.
            var merged = JsonSerializer.SerializeToNode(ForPreset(preset ?? filePreset ?? "tiny"), Json)!.AsObject();
            foreach (var member in fromFile.EnumerateObject()) merged[member.Name] = System.Text.Json.Nodes.JsonNode.Parse(member.Value.GetRawText());
            config = FromJson(merged.ToJsonString());
        }
        foreach (var (name, value) in arguments)
        {
            if (name is "config") continue;
            if (!ByOption.TryGetValue(name, out var property))
                throw new ConfigException($"unknown option --{name}");
            config = With(config, property, name, value);
        }
        config = config.Validated();
        return config with { Precision = Precisions.Resolve(config.Precision, config.Device) };
    }

    /// <summary>A JSON or (by extension) TOML config file as a JSON element with the option names as keys.</summary>
    static JsonElement ReadConfigFile(string file)
    {
        var text = File.ReadAllText(file);
        try
        {
            if (file.EndsWith(".toml", StringComparison.OrdinalIgnoreCase))
                text = JsonSerializer.Serialize(Tomlyn.TomlSerializer.Deserialize<Dictionary<string, object>>(text, (Tomlyn.TomlSerializerOptions?)null));
            return JsonDocument.Parse(text).RootElement;
        }
        catch (Exception e) when (e is JsonException or Tomlyn.TomlException)
        {
            throw new ConfigException($"--config '{file}': {e.Message}");
        }
    }

    static TrainConfig With(TrainConfig config, PropertyInfo property, string name, string? value)
    {
        object parsed;
        var type = property.PropertyType;
        if (type == typeof(bool)) parsed = value is null || ParseBool(name, value);
        else if (value is null) throw new ConfigException($"--{name} needs a value");
        else if (type == typeof(int)) parsed = int.TryParse(value, NumberStyles.Integer, CultureInfo.InvariantCulture, out var i) ? i : throw new ConfigException($"--{name} needs an integer, got '{value}'");
        else if (type == typeof(double)) parsed = double.TryParse(value, NumberStyles.Float, CultureInfo.InvariantCulture, out var d) ? d : throw new ConfigException($"--{name} needs a number, got '{value}'");
        else if (type == typeof(string[])) parsed = value.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        else parsed = value;
        var copy = config with { };
        property.SetValue(copy, parsed);
        return copy;
    }

    static bool ParseBool(string name, string value) => value.ToLowerInvariant() switch
    {
        "true" or "1" or "yes" => true,
        "false" or "0" or "no" => false,
        _ => throw new ConfigException($"--{name} needs true or false, got '{value}'"),
    };

    /// <summary>Fails on settings that cannot work together.</summary>
    public TrainConfig Validated()
    {
        void Check(bool ok, string message) { if (!ok) throw new ConfigException(message); }
        Check(Epochs >= 1, "--epochs must be >= 1");
        Check(MaxSteps >= 0, "--max-steps must be >= 0");
        Check(Batch >= 1 && Accum >= 1 && Workers >= 0, "--batch and --accum must be >= 1, --workers >= 0");
        Check(Arch is "tiny" or "small" or "base", "--arch must be tiny, small or base");
        Check(Patch >= 1 && ImageSize % Patch == 0, $"--image-size {ImageSize} must be a multiple of --patch {Patch}");
        Check(Depth >= 1, "--depth must be >= 1");
        Check(GlobalPool is "cls" or "avg", "--global-pool must be cls or avg");
        Check(Precision is "auto" or "fp32" or "bf16", "--precision must be auto, fp32 or bf16");
        Check(Features is "keys" or "tokens", "--features must be keys (official) or tokens (the poster's Z_cat)");
        Check(Alpha >= 0, "--alpha must be >= 0");
        Check(NCentroidsMax >= 2 && NCentroidsMax <= NTokens, $"--n-centroids-max must lie in [2, --n-tokens = {NTokens}]");
        Check(2 * (ImageSize / Patch) * (ImageSize / Patch) >= NTokens, "--n-tokens exceeds the number of patches of two views");
        Check(Device is "cpu" || Device.StartsWith("cuda", StringComparison.Ordinal), "--device must be cpu or cuda[:N]");
        Check(MinScale > 0 && MinScale <= 1, "--min-scale must lie in (0, 1]");
        Check(WarmupEpochs < Epochs || Epochs <= 2, $"--warmup-epochs {WarmupEpochs} must be shorter than --epochs {Epochs}");
        Check(CheckpointEvery >= 1 && KeepCheckpoints >= 1 && LogEvery >= 1, "--checkpoint-every, --keep-checkpoints and --log-every must be >= 1");
        Check(Data.Length > 0 || SyntheticTrain >= Batch, "--synthetic-train must hold at least one batch");
        return this;
    }
}

/// <summary>A configuration that cannot be used; the CLI reports it with exit code 2.</summary>
public sealed class ConfigException(string message) : Exception(message);
