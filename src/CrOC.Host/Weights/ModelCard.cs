using System.Text.Json;
using System.Text.Json.Nodes;

namespace CrOC.Host.Weights;

/// <summary>The model card an `export` embeds in its .safetensors (metadata "model_card"): what a
/// later load learns from it besides the tensors.</summary>
public static class ModelCard
{
    /// <summary>The card, if the file has one that parses.</summary>
    public static JsonObject? Of(IReadOnlyDictionary<string, string>? metadata)
    {
        if (metadata?.GetValueOrDefault("model_card") is not { } card) return null;
        try { return CrOC.Data.StrictJson.Parse(card) as JsonObject; }
        catch (JsonException) { return null; }
    }

    /// <summary>The network the export was made from ("teacher", "student"), or null.</summary>
    public static string? Network(IReadOnlyDictionary<string, string>? metadata) =>
        Of(metadata)?["network"] is JsonValue value && value.TryGetValue<string>(out var name) && name.Length > 0 ? name : null;

    /// <summary>What an export made with --non-strict lacked (its card's binding), or null for a complete one.</summary>
    public static string? Incomplete(IReadOnlyDictionary<string, string>? metadata) =>
        Of(metadata) is { } card && card["complete"] is JsonValue complete && complete.TryGetValue<bool>(out var whole) && !whole
            ? card["binding"] is JsonValue binding && binding.TryGetValue<string>(out var text) ? text : "some tensors"
            : null;
}
