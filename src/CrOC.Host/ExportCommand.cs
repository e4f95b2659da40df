using System.Text.Json;
using CrOC.Host.CommandLine;
using CrOC.Host.Weights;
using CrOC.Math;
using TorchSharp;
using CrOC.Host.Runtime;
using CrOC.Data;

namespace CrOC.Host;

/// <summary>`croc-host export`'s command line.</summary>
[Command("export", "write a backbone (from our, official CrOC or DINO weights) with DINO/timm names as .safetensors + .pth + model card", Notes = """
    Writes PATH.safetensors, PATH.pth and PATH.json (architecture, input normalisation, source,
    training config, notes); in PyTorch, DINO's vision_transformer.py:
    vit_small(patch_size=16).load_state_dict(torch.load("PATH.pth")); timm:
    vit_small_patch16_224(num_classes=0) (timm resizes position embeddings its own way at other sizes).
    """)]
public sealed record ExportOptions
{
    [Option("a CrOC.NET checkpoint, an official CrOC/DINO full checkpoint (.pth), or a plain backbone (.pth / .safetensors)", Required = true, Value = "FILE")]
    public string Weights { get; init; } = "";
    [Option("output path without extension (a .safetensors, .pth or .json ending is dropped: PATH names all three files)", Value = "PATH", Default = "FILE's name + .backbone")]
    public string? Output { get; init; }
    [Option("which network of a full checkpoint (teacher: what CrOC evaluates)")]
    public NetworkChoice Network { get; init; } = NetworkChoice.Teacher;
    [Option("which files to write")]
    public ExportFormat Format { get; init; } = ExportFormat.Both;
    [Option("attention heads, if not D/64", Min = 1, Max = 1024)]
    public int? Heads { get; init; }
    [Option("load what fits and report the rest instead of failing")]
    public bool NonStrict { get; init; }
    [Option("replace output files that exist (never the --weights file itself)")]
    public bool Overwrite { get; init; }
}

/// <summary>`croc-host export`: a backbone from any weights file we can read, checked by loading it
/// into our ViT, written with DINO/timm names as safetensors and .pth plus a JSON model card.</summary>
public static class ExportCommand
{
    public static int Run(ExportOptions o)
    {
        var (weights, network, format, heads, strict) = (o.Weights, o.Network, o.Format, o.Heads, !o.NonStrict);
        var output = WithoutExportExtension(o.Output ?? Path.ChangeExtension(weights, null) + ".backbone");
        if (Path.GetFileName(output) is "" or "." or "..") throw new OutputException($"--output '{output}' names no file: give a path without extension, e.g. exports/backbone");
        var targets = new[] { (ExportFormat.Safetensors, ".safetensors"), (ExportFormat.Pth, ".pth") }
            .Where(t => format == ExportFormat.Both || format == t.Item1).Select(t => output + t.Item2).Append(output + ".json").ToList();
        var option = OutputPaths.OutputBesideWeights(o.Output);
        foreach (var target in targets.Select(t => OutputPaths.NotInput(t, option, weights)))
            if (File.Exists(target) && !o.Overwrite) throw new OutputException($"'{target}' exists: choose another --output, or add --overwrite to replace it");
        using var scope = torch.NewDisposeScope();
        LoadedBackbone loaded;
        try { loaded = BackboneLoader.Load(weights, network, heads, strict); }
        catch (WeightsException e) when (e.Mismatch) { throw new WeightsException($"{e.Message}; --non-strict exports what fits"); }
        var (cfg, imported) = (loaded.Config, loaded.Source);
        var backbone = new NamedTensors(Vit.named(loaded.Params));
        Console.WriteLine($"loaded {imported.Layout} '{weights}' ({loaded.Network}): {loaded.Report!.Describe()}");
        foreach (var remark in loaded.Remarks(network, "--network", weights, "exported")) Console.WriteLine(remark);
        var (trainingConfig, trainingCommit) = TrainingOrigin(imported.Metadata);
        var earlier = ModelCard.Incomplete(imported.Metadata); // what an incomplete export given as --weights lacked
        if (loaded.HeadsDoubt is { } doubt) Console.WriteLine(doubt);
        var card = new Dictionary<string, object?>
        {
            ["architecture"] = $"vit (D={cfg.Dim}, depth={cfg.Depth}, heads={cfg.Heads}, patch={cfg.Patch}, mlp_ratio={cfg.MlpRatio})",
            ["dim"] = cfg.Dim, ["depth"] = cfg.Depth, ["heads"] = cfg.Heads, ["patch_size"] = cfg.Patch,
            ["heads_source"] = loaded.Heads.Source, ["heads_guessed"] = loaded.Heads.Guessed, // a guess stays one at every load
            ["mlp_ratio"] = cfg.MlpRatio, ["layer_norm_eps"] = cfg.Eps, ["qkv_bias"] = true, ["gelu"] = "exact (erf)",
            ["image_size"] = cfg.ImageSize, ["parameters"] = backbone.Values.Sum(t => t.numel()),
            // what the backbone was trained and evaluated on: RGB in [0, 1], then (x − mean) / std per channel
            ["input"] = new Dictionary<string, object> { ["channels"] = "RGB, values in [0, 1]", ["mean"] = ColorAugment.Mean, ["std"] = ColorAugment.Std },
            ["position_embedding_resize"] = "DINO's interpolate_pos_encoding: bicubic, scale factor (grid + 0.1) / stored grid, align_corners=False",
            ["source"] = Path.GetFullPath(weights), ["layout"] = imported.Layout.ToString(), ["network"] = loaded.Network,
            ["names"] = "DINO/timm (cls_token, pos_embed, patch_embed.proj.*, blocks.N.*, norm.*)",
            ["training_config"] = trainingConfig,
            ["training_commit"] = trainingCommit,
            ["export_commit"] = GitInfo.Commit,
            ["notes"] = imported.Notes,
            // a --non-strict export says what did not load: those tensors keep a fresh initialisation;
            // an export of such an export stays incomplete and keeps what the first one lacked ("complete" once)
            ["complete"] = loaded.Report.Complete && earlier is null,
            ["binding"] = earlier is null ? loaded.Report.Describe() : loaded.Report.Complete ? earlier : $"{loaded.Report.Describe()}; earlier: {earlier}",
        };
        // relaxed escaping: the card is read by people too ("DINO's", "+" as written)
        var cardJson = JsonSerializer.Serialize(card, new JsonSerializerOptions { WriteIndented = true, Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping });
        // The files are written together: a failure while writing leaves none of them (a .safetensors
        // without its card refused the rerun once; with --overwrite, the earlier export stays whole).
        var files = new List<AtomicFile.Content>();
        if (format is ExportFormat.Both or ExportFormat.Safetensors)
            files.Add(BackboneExport.Content(output + ".safetensors", backbone.WithPrefix("backbone."), new Dictionary<string, string> { ["model_card"] = cardJson }));
        if (format is ExportFormat.Both or ExportFormat.Pth)
            files.Add(BackboneExport.Content(output + ".pth", backbone.WithPrefix("backbone.")));
        files.Add(new(output + ".json", s => s.Write(System.Text.Encoding.UTF8.GetBytes(cardJson + "\n"))));
        AtomicFile.WriteTogether(files, replace: o.Overwrite);
        var written = files.Select(f => f.Path).ToList();
        Console.WriteLine($"wrote {string.Join(", ", written)}");
        foreach (var other in new[] { output + ".safetensors", output + ".pth" }.Except(written).Where(File.Exists))
            Console.WriteLine($"note: {other}, of an earlier export, is left as it was: {output}.json describes {string.Join(" and ", written.SkipLast(1))} only");
        return ExitCodes.Ok;
    }

    /// <summary>An --output named like one of the export's files ("x.safetensors") names the export
    /// "x" (x.safetensors, x.pth, x.json), not "x.safetensors.safetensors".</summary>
    static string WithoutExportExtension(string output) =>
        new[] { ".safetensors", ".pth", ".json" }.FirstOrDefault(e => output.EndsWith(e, StringComparison.OrdinalIgnoreCase)) is { } extension
            ? output[..^extension.Length] : output;

    /// <summary>The training config and commit a weights file records: a training checkpoint's own
    /// metadata, or the model card an earlier export embedded (so a re-export keeps them).</summary>
    static (System.Text.Json.Nodes.JsonNode? Config, string? Commit) TrainingOrigin(IReadOnlyDictionary<string, string>? metadata)
    {
        if (metadata?.GetValueOrDefault("config") is { } config) return (ConfigNode(config), metadata.GetValueOrDefault("commit"));
        if (ModelCard.Of(metadata) is { } earlier)
            return (earlier["training_config"]?.DeepClone(), earlier["training_commit"]?.GetValueKind() == JsonValueKind.String ? earlier["training_commit"]!.GetValue<string>() : null);
        return (null, null);
    }

    /// <summary>The checkpoint's config metadata as JSON; untrusted text that is not JSON (another
    /// tool's, e.g. Python's `Namespace(...)`) is kept as a string.</summary>
    static System.Text.Json.Nodes.JsonNode? ConfigNode(string config)
    {
        try { return StrictJson.Parse(config); }
        catch (JsonException) { return System.Text.Json.Nodes.JsonValue.Create(config); }
    }
}

/// <summary>`export --format`: both files, or one of them.</summary>
public enum ExportFormat { Both, Safetensors, Pth }
