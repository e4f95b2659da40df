using System.Text.Json;
using System.Text.Json.Nodes;

namespace CrOC.Host.Weights;

/// <summary>
/// Where a backbone's number of attention heads comes from (the weights' shapes do not give it):
/// --heads; else the model card an export embedded; else D/64 — certain for croc-host's own
/// training checkpoints (all its architectures have 64-wide heads), a guess for other files.
/// </summary>
public sealed record HeadCount(int? Heads, string Source, bool Guessed, HeadCount? FromFile = null)
{
    /// <summary>The count <paramref name="asked"/> (--heads) or the file's; an asked count keeps the
    /// file's (<see cref="FromFile"/>) to say when it differs.</summary>
    public static HeadCount Resolve(int? asked, IReadOnlyDictionary<string, string>? metadata) =>
        asked is not null ? new(asked, "--heads", false, OfFile(metadata)) : OfFile(metadata);

    /// <summary>The source of a guessed count, as an export's card records it (heads_source).</summary>
    const string GuessedSource = "D/64 (not recorded in the weights)";

    static HeadCount OfFile(IReadOnlyDictionary<string, string>? metadata)
    {
        var card = ModelCard.Of(metadata);
        if (card?["heads"] is JsonValue value && value.TryGetValue<int>(out var recorded) && recorded > 0)
            // a count the export guessed stays a guess (it loaded as "the model card in the file", said nothing, and a
            // re-export called it recorded, once)
            return GuessedByExport(card, metadata) ? new(recorded, GuessedSource, true) : new(recorded, "the model card in the file", false);
        return OwnTrainingConfig(metadata)
            ? new(null, "D/64, as in every croc-host architecture (the training config names it)", false)
            : new(null, GuessedSource, true);
    }

    /// <summary>Whether the card's count is its export's guess: its heads_guessed; in a card from before that field, a
    /// <see cref="GuessedSource"/> without croc-host's training config (its exports of training checkpoints said so too).</summary>
    static bool GuessedByExport(JsonNode card, IReadOnlyDictionary<string, string>? metadata) =>
        card["heads_guessed"] is JsonValue flag && flag.TryGetValue<bool>(out var guessed) ? guessed
        : card["heads_source"] is JsonValue source && source.TryGetValue<string>(out var said) && said == GuessedSource && !OwnTrainingConfig(metadata);

    /// <summary>"note: N attention heads, taken as D/64 …" when the count is a guess; a note when --heads
    /// replaces the count the file records or implies (it did so without a word once); else null.</summary>
    public string? Doubt(int heads, int dim) =>
        Guessed ? $"note: {heads} attention heads, taken as D/64 (the weights do not record it): give --heads if the model used other head widths"
        : FromFile is { Guessed: false } file && (file.Heads ?? dim / 64) is var recorded && recorded != heads
            ? $"note: --heads {heads} replaces the file's {recorded} head(s) ({file.Source}): the attention is split otherwise than the weights were trained with"
            : null;

    /// <summary>Whether the file is croc-host's training checkpoint (its config names an arch) or an export of one.</summary>
    static bool OwnTrainingConfig(IReadOnlyDictionary<string, string>? metadata)
    {
        JsonNode? config = null;
        try { config = metadata?.GetValueOrDefault("config") is { } text ? CrOC.Data.StrictJson.Parse(text) : ModelCard.Of(metadata)?["training_config"]; }
        catch (JsonException) { }
        return config is JsonObject recorded && recorded.ContainsKey("arch");
    }
}
