using System.Text.Json;
using CrOC.Host.Weights;
using CrOC.Math;
using TorchSharp;

namespace CrOC.Host;

/// <summary>`croc-host export`: a backbone from any weights file we can read, checked by loading it
/// into our ViT, written with DINO/timm names as safetensors and .pth plus a JSON model card.</summary>
public static class ExportCommand
{
    const string Help = """
        croc-host export: write a ViT backbone with DINO/timm names (loadable by timm / DINO's vit_small).

        Options:
          --weights FILE            a CrOC.NET checkpoint, an official CrOC/DINO full checkpoint (.pth),
                                    or a plain backbone (.pth / .safetensors)            (required)
          --output PATH             output path without extension (default: FILE's name + .backbone)
          --network teacher|student which network of a full checkpoint (teacher: what CrOC evaluates)
          --format both|safetensors|pth                                                (both)
          --heads N                 attention heads, if not D/64
          --non-strict              load what fits and report the rest instead of failing
        Writes PATH.safetensors, PATH.pth and PATH.json (architecture, source, layout, notes).
        """;

    public static int Run(Options options)
    {
        if (options.Help) { Console.WriteLine(Help); return 0; }
        var weights = options.Required("weights");
        var output = options.Text("output") ?? Path.ChangeExtension(weights, null) + ".backbone";
        var network = options.Choice("network", "teacher", ["teacher", "student"]);
        var format = options.Choice("format", "both", ["both", "safetensors", "pth"]);
        int? heads = options.Has("heads") ? options.PositiveInt("heads", 6) : null;
        bool strict = !options.Flag("non-strict");
        options.RejectUnknown();

        try
        {
            using var scope = torch.NewDisposeScope();
            var loaded = BackboneLoader.Load(weights, network, heads, strict);
            var (cfg, imported) = (loaded.Config, loaded.Source);
            var backbone = new NamedTensors(Vit.named(loaded.Params));
            foreach (var note in imported.Notes) Console.WriteLine($"note: {note}");
            Console.WriteLine($"loaded {imported.Layout} '{weights}' ({loaded.Network}): {loaded.Report!.Describe()}");
            var card = new Dictionary<string, object?>
            {
                ["architecture"] = $"vit (D={cfg.Dim}, depth={cfg.Depth}, heads={cfg.Heads}, patch={cfg.Patch}, mlp_ratio={cfg.MlpRatio})",
                ["dim"] = cfg.Dim, ["depth"] = cfg.Depth, ["heads"] = cfg.Heads, ["patch_size"] = cfg.Patch,
                ["image_size"] = cfg.ImageSize, ["parameters"] = backbone.Values.Sum(t => t.numel()),
                ["source"] = Path.GetFullPath(weights), ["layout"] = imported.Layout.ToString(), ["network"] = loaded.Network,
                ["names"] = "DINO/timm (cls_token, pos_embed, patch_embed.proj.*, blocks.N.*, norm.*)",
                ["training_config"] = imported.Metadata?.GetValueOrDefault("config") is { } config ? System.Text.Json.Nodes.JsonNode.Parse(config) : null,
                ["training_commit"] = imported.Metadata?.GetValueOrDefault("commit"),
                ["export_commit"] = GitInfo.Commit,
                ["notes"] = imported.Notes,
            };
            var cardJson = JsonSerializer.Serialize(card, new JsonSerializerOptions { WriteIndented = true });
            var written = new List<string>();
            if (format is "both" or "safetensors")
            {
                BackboneExport.Write(output + ".safetensors", backbone.WithPrefix("backbone."), new Dictionary<string, string> { ["model_card"] = cardJson });
                written.Add(output + ".safetensors");
            }
            if (format is "both" or "pth")
            {
                BackboneExport.Write(output + ".pth", backbone.WithPrefix("backbone."));
                written.Add(output + ".pth");
            }
            AtomicFile.Write(output + ".json", s => s.Write(System.Text.Encoding.UTF8.GetBytes(cardJson + "\n")));
            written.Add(output + ".json");
            Console.WriteLine($"wrote {string.Join(", ", written)}");
            return 0;
        }
        catch (WeightsException e)
        {
            Console.Error.WriteLine($"croc-host export: {e.Message}");
            return 1;
        }
    }
}
