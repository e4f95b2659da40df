using System.Text.Json;
using System.Text.Json.Nodes;

namespace CrOC.Host.Weights;

/// <summary>
/// Where a backbone's number of attention heads comes from (the weights' shapes do not give it):
/// --heads; else the model card an export embedded; else D/64 — certain for croc-host's own
/// training checkpoints (all its architectures have 64-wide heads), a guess for other files.
/// </summary>
public sealed record HeadCount(int? Heads, string Source, bool Guessed)
{
    public static HeadCount Resolve(int? asked, IReadOnlyDictionary<string, string>? metadata)
    {
        if (asked is not null) return new(asked, "--heads", false);
        if (Card(metadata)?["heads"] is JsonValue value && value.TryGetValue<int>(out var recorded) && recorded > 0)
            return new(recorded, "the model card in the file", false);
        return OwnTrainingConfig(metadata)
            ? new(null, "D/64, as in every croc-host architecture (the training config names it)", false)
            : new(null, "D/64 (not recorded in the weights)", true);
    }

    /// <summary>"note: N attention heads, taken as D/64 …" when the count is a guess, else null.</summary>
    public string? Doubt(int heads) =>
        Guessed ? $"note: {heads} attention heads, taken as D/64 (the weights do not record it): give --heads if the model used other head widths" : null;

    /// <summary>The model card an earlier export embedded, if it parses.</summary>
    static JsonObject? Card(IReadOnlyDictionary<string, string>? metadata)
    {
        if (metadata?.GetValueOrDefault("model_card") is not { } card) return null;
        try { return JsonNode.Parse(card) as JsonObject; }
        catch (JsonException) { return null; }
    }

    /// <summary>Whether the file is croc-host's training checkpoint (its config names an arch) or an export of one.</summary>
    static bool OwnTrainingConfig(IReadOnlyDictionary<string, string>? metadata)
    {
        JsonNode? config = null;
        try { config = metadata?.GetValueOrDefault("config") is { } text ? JsonNode.Parse(text) : Card(metadata)?["training_config"]; }
        catch (JsonException) { }
        return config is JsonObject recorded && recorded.ContainsKey("arch");
    }
}
