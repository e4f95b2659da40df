using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace CrOC.Data;

/// <summary>JSON from outside the process (records, metadata of weight files, results, config files),
/// parsed with what the default parse accepts but a later read throws on refused as a
/// <see cref="JsonException"/>, which every caller takes as "not JSON": a repeated name
/// (<c>{"a": 1, "a": 2}</c>: an <see cref="ArgumentException"/> when the object is first read) and a
/// string escaping a lone UTF-16 surrogate (<c>"\ud800"</c>: an <see cref="InvalidOperationException"/>
/// when the string is read or written back). Both were internal errors once.</summary>
public static class StrictJson
{
    /// <summary>The deepest nesting read; deeper is a <see cref="JsonException"/>.</summary>
    public const int MaxDepth = 64;

    static readonly JsonDocumentOptions Options = new() { AllowDuplicateProperties = false, MaxDepth = MaxDepth };

    public static JsonNode? Parse(string text) => Parse(Encoding.UTF8.GetBytes(text));

    public static JsonNode? Parse(ReadOnlySpan<byte> utf8)
    {
        RefuseLoneSurrogates(utf8);
        return JsonNode.Parse(utf8, documentOptions: Options);
    }

    /// <summary>A document of <paramref name="text"/>, its strings Unicode text; a name given twice is the
    /// caller's to find (a config file names it in its own words).</summary>
    public static JsonDocument Document(string text)
    {
        var utf8 = Encoding.UTF8.GetBytes(text);
        RefuseLoneSurrogates(utf8);
        return JsonDocument.Parse(utf8, new JsonDocumentOptions { MaxDepth = MaxDepth });
    }

    /// <summary>Only an escaped string can hold a lone surrogate: raw bytes that are not UTF-8 are the reader's own error.</summary>
    static void RefuseLoneSurrogates(ReadOnlySpan<byte> utf8)
    {
        var reader = new Utf8JsonReader(utf8, new JsonReaderOptions { MaxDepth = MaxDepth });
        while (reader.Read())
        {
            if (reader.TokenType is not (JsonTokenType.String or JsonTokenType.PropertyName) || !reader.ValueIsEscaped) continue;
            try { reader.GetString(); }
            catch (InvalidOperationException) { throw new JsonException($"a string escaping a lone UTF-16 surrogate (no Unicode text) at byte {reader.TokenStartIndex}"); }
        }
    }
}
