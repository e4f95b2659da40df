using CrOC.Math;
using TorchSharp;

namespace CrOC.Host.Weights;

/// <summary>A ViT backbone built from a weights file, with where it came from (<see cref="Source"/>:
/// the file's description, its tensors disposed).</summary>
public sealed record LoadedBackbone(Vit.VitConfig Config, Vit.VitParams Params, ImportedWeights Source, BindingReport? Report, string Network, HeadCount Heads)
{
    /// <summary>The note that the head count was guessed (D/64) or replaced by --heads, or null.</summary>
    public string? HeadsDoubt => Heads.Doubt(Config.Heads, Config.Dim);

    /// <summary>The warning that the file is an export made with --non-strict (some tensors a fresh
    /// initialisation, evaluated without a word once), or null.</summary>
    public string? IncompleteExport => ModelCard.Incomplete(Source.Metadata) is { } lacking
        ? $"warning: this file is an incomplete export (made with --non-strict: {lacking}); the tensors it lacked are a fresh initialisation"
        : null;

    /// <summary>What a command says about the weights it loaded (<paramref name="asked"/> by
    /// <paramref name="option"/>, <paramref name="used"/> as it is): the import's notes (which
    /// network stands for a missing one, said by export alone once), a single network given for the
    /// student, an incomplete export.</summary>
    public IEnumerable<string> Remarks(NetworkChoice asked, string option, string weights, string used)
    {
        foreach (var note in Source.Notes) yield return $"note: {note}";
        if (NetworkNotes.SingleNetwork(asked, this, option, weights, used) is { } single) yield return single;
        if (IncompleteExport is { } incomplete) yield return incomplete;
    }
}

public static class BackboneLoader
{
    /// <summary>
    /// Reads any weights file we understand (our checkpoints, official CrOC/DINO checkpoints,
    /// plain backbones), takes the teacher (or student) backbone, infers its architecture and binds
    /// it into a fresh ViT. With <paramref name="randomSeed"/> the architecture is kept but the
    /// weights are a fresh initialisation (the random baseline).
    /// </summary>
    public static LoadedBackbone Load(string weights, NetworkChoice network = NetworkChoice.Teacher, int? heads = null, bool strict = true, int? randomSeed = null)
    {
        using var fileScope = torch.NewDisposeScope(); // every tensor read from the file: the backbone holds its own copies
        var imported = CheckpointImport.Import(weights);
        bool teacher = network == NetworkChoice.Teacher && imported.Teacher is not null;
        var source = (teacher ? imported.Teacher! : imported.Student).WithoutPrefix("backbone.");
        var headCount = HeadCount.Resolve(heads, imported.Metadata);
        Vit.VitConfig config;
        try { config = BackboneShape.Infer(source, headCount.Heads); }
        catch (WeightsException e) { throw new WeightsException($"{weights}: {e.Message}") { Mismatch = e.Mismatch }; } // the line named no file once
        CheckSize(config, source, weights, strict); // with randomSeed too: the random baseline's architecture is the file's
        var parameters = Vit.init(config, new torch.Generator((ulong)(randomSeed ?? 0), torch.CPU));
        BindingReport? report = null;
        if (randomSeed is null)
        {
            report = StateDictBinding.Bind(new NamedTensors(Vit.named(parameters)), source, strict);
            // a diverged run's weights would evaluate to chance without a word
            using var scope = torch.NewDisposeScope();
            if (Vit.named(parameters).FirstOrDefault(p => !torch.isfinite(p.Item2).all().item<bool>()) is { Item1: { } broken })
                throw new WeightsException($"{weights}: '{broken}' holds NaN or infinite values (a diverged run's weights?)");
        }
        // the network whose weights were taken: a checkpoint lacking one gives the other ("student" for
        // its teacher once); an export holds one network, its card names which
        var name = imported.Lacking switch
        {
            NetworkChoice.Student => "teacher",
            NetworkChoice.Teacher => "student",
            _ => imported.Teacher is not null ? teacher ? "teacher" : "student" : ModelCard.Network(imported.Metadata) ?? "single network",
        };
        foreach (var (_, tensor) in Vit.named(parameters)) tensor.MoveToOuterDisposeScope();
        // the file's description without its tensors, which the scope disposes (an evaluation held the
        // whole file, both networks, heads and moments, to its end once)
        var described = imported with { Student = [], Teacher = imported.Teacher is null ? null : [], Centre = null, CentreC = null };
        return new LoadedBackbone(config, parameters, described, report, name, headCount);
    }

    /// <summary>Refuses, before the model is allocated, a ViT read off a file's shapes that cannot
    /// fit in memory, and under a strict load (of the weights, or of the architecture alone for the random
    /// baseline) one of more than <see cref="CheapBytes"/> with more values than the file's tensors hold (some are missing, and a few small tensors could describe
    /// a huge model); a smaller one is made and the binding names the missing tensors.</summary>
    static void CheckSize(Vit.VitConfig config, NamedTensors source, string weights, bool strict)
    {
        long held = source.Values.Sum(t => t.numel()), parameters;
        try { parameters = Vit.parameterCount(config); }
        catch (OverflowException) { parameters = long.MaxValue; } // shapes no memory holds
        string model = $"a ViT of D={config.Dim}, depth {config.Depth}, patch {config.Patch}, {config.Tokens + 1} positions";
        if (strict && held < parameters && 4.0 * parameters > CheapBytes)
            throw new WeightsException($"{weights}: its backbone tensors hold {held:N0} values, where {model} read off their shapes has {parameters:N0}: tensors are missing") { Mismatch = true };
        long memory = GC.GetGCMemoryInfo().TotalAvailableMemoryBytes;
        if (4.0 * parameters > memory)
            throw new WeightsException($"{weights}: {model} read off its shapes has {parameters:N0} parameters ({CommandLine.ByteSize.Describe(4.0 * parameters)}), more than this machine's {CommandLine.ByteSize.Describe(memory)}");
    }

    /// <summary>The float32 model size made without a prior check of the file's values (ViT-L's is 1.2 GB).</summary>
    const long CheapBytes = 1L << 30;
}

/// <summary>Which network of a checkpoint holding both: the EMA teacher (what CrOC evaluates) or the student.</summary>
public enum NetworkChoice { Teacher, Student }

/// <summary>What a command says when the student was asked of a file that holds a single network.</summary>
public static class NetworkNotes
{
    /// <summary>"note: OPTION student: 'FILE' holds a single network, USED as it is", or null.</summary>
    public static string? SingleNetwork(NetworkChoice asked, LoadedBackbone loaded, string option, string weights, string used) =>
        asked == NetworkChoice.Student && loaded.Source is { Teacher: null, Lacking: null } // a checkpoint lacking one says so in its notes
            ? $"note: {option} student: '{weights}' holds a single network{(ModelCard.Network(loaded.Source.Metadata) is { } card ? $" (the {card}, by its model card)" : "")}, {used} as it is"
            : null;
}
