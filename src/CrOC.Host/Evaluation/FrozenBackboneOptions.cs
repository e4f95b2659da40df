using System.Text.Json;
using CrOC.Host.CommandLine;
using CrOC.Host.Weights;
using CrOC.Host.Runtime;

namespace CrOC.Host.Evaluation;

/// <summary>The options every evaluation of a frozen backbone shares: which weights (or a random
/// initialisation of their architecture), where and how the backbone runs, and the JSON output.</summary>
public abstract record FrozenBackboneOptions
{
    [Option("our checkpoint, an official CrOC/DINO checkpoint or a backbone file", Required = true, Value = "FILE")]
    public string Weights { get; init; } = "";
    [Option("which network of a checkpoint")]
    public NetworkChoice Backbone { get; init; } = NetworkChoice.Teacher;
    [Option("keep the architecture of --weights but use a fresh random initialisation (seeded by --init-seed)")]
    public bool Random { get; init; }
    [Option("seed of the random initialisation of --random", Min = 0)]
    public int InitSeed { get; init; }
    [Option("attention heads, if not D/64", Min = 1, Max = 1024)]
    public int? Heads { get; init; }
    [Option("where the backbone (and a probe) run", Value = "cpu|cuda[:N]")]
    public string Device { get; init; } = "cpu";
    [Option("the frozen backbone's forward (probes stay float32)")]
    public PrecisionChoice Precision { get; init; } = PrecisionChoice.Fp32;
    [Option("torch threads (0: all cores)", Min = 0, Max = 4096)]
    public int Threads { get; init; }
    [Option("write the result as JSON", Value = "PATH")]
    public string? Json { get; init; }

    /// <summary>The random initialisation's seed, or null for the weights themselves.</summary>
    public int? RandomSeed => Random ? InitSeed : null;

    /// <summary>Checks the JSON path before the work (an existing file is replaced only when it is an
    /// earlier result: a JSON object with <paramref name="resultKey"/>) and sets the threads; returns
    /// the full JSON path, if any.</summary>
    public string? Prepare(string resultKey)
    {
        if (InitSeed != 0 && !Random) throw new OptionException($"--init-seed {InitSeed} seeds --random's initialisation: add --random, or leave it out"); // ignored silently once
        var json = Json is null ? null : OutputPaths.Replaceable(Json, "--json", $"an earlier result (a JSON object with \"{resultKey}\")", path => OutputPaths.IsJsonResult(path, resultKey), Weights);
        if (Threads > 0) TorchSharp.torch.set_num_threads(Threads);
        return json;
    }

    /// <summary>Loads the backbone an evaluation runs (<paramref name="randomSeed"/>: a random
    /// initialisation of the file's architecture), checks <paramref name="size"/> and the batches'
    /// memory against it, says which network of the file it is, the import's notes and any doubt
    /// about its head count, and puts it on <paramref name="device"/>; returns what it said of the
    /// weights, as said (<see cref="LoadedBackbone.Remarks"/>, none for the random baseline; the head-count doubt) for the JSON.</summary>
    public static (LoadedBackbone Loaded, CrOC.Math.Vit.VitParams OnDevice, IReadOnlyList<string> Remarks) LoadForEvaluation(string weights, NetworkChoice network, int? heads, int? randomSeed, int size, int batch, PrecisionChoice precision, TorchSharp.torch.Device device, Action<string> log)
    {
        var loaded = BackboneLoader.Load(weights, network, heads, strict: true, randomSeed: randomSeed);
        CheckInput(loaded.Config, size, batch, precision, device);
        IEnumerable<string> ofFile = randomSeed is null ? loaded.Remarks(network, "--backbone", weights, "evaluated") : [];
        IReadOnlyList<string> remarks = [.. ofFile, .. loaded.HeadsDoubt is { } headsDoubt ? [headsDoubt] : Array.Empty<string>()];
        foreach (var remark in remarks) log(remark);
        return (loaded, device.type == TorchSharp.DeviceType.CPU ? loaded.Params : CrOC.Math.Vit.toDevice(loaded.Config, device, loaded.Params), remarks);
    }

    /// <summary>Refuses an input side that is not a multiple of the backbone's patch, or whose batches'
    /// activations cannot fit in this machine's memory (on the CPU), before any work.</summary>
    public static void CheckInput(CrOC.Math.Vit.VitConfig vit, int size, int batch, PrecisionChoice precision, TorchSharp.torch.Device device)
    {
        if (size % vit.Patch != 0) throw new OptionException($"--size {size} is not a multiple of the patch size {vit.Patch}");
        if (device.type == TorchSharp.DeviceType.CPU) MemoryFit.Check(vit, batch, training: false, precision, $"--size {size} with the backbone's patch {vit.Patch} and --batch {batch}", size: size);
    }

    /// <summary>Results as JSON with snake_case keys and enum names (records such as the probe's options included).</summary>
    static readonly JsonSerializerOptions Style = new()
    {
        WriteIndented = true,
        PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower,
        Converters = { new System.Text.Json.Serialization.JsonStringEnumConverter(JsonNamingPolicy.SnakeCaseLower) },
    };

    /// <summary>Writes the result <paramref name="record"/>, replacing only an earlier result (a JSON
    /// object with <paramref name="resultKey"/>), also when another file appeared there meanwhile.</summary>
    public static void WriteJson(string path, object record, string resultKey)
    {
        AtomicFile.WriteTogether([JsonFile(path, record)], replaceOnlyIf: earlier => OutputPaths.IsJsonResult(earlier, resultKey));
        Console.WriteLine($"wrote {path}");
    }

    /// <summary>The result <paramref name="record"/> as a file of a write (<see cref="AtomicFile.WriteTogether"/>).</summary>
    public static AtomicFile.Content JsonFile(string path, object record)
    {
        var bytes = System.Text.Encoding.UTF8.GetBytes(JsonSerializer.Serialize(record, Style) + "\n");
        return new(path, s => s.Write(bytes));
    }
}
