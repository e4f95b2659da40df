using System.Text.Json;
using System.Text.Json.Nodes;

namespace CrOC.Data;

/// <summary>JSON from outside the process (records, metadata of weight files, results), parsed with a
/// repeated name refused as a <see cref="JsonException"/>. The default parse accepts
/// <c>{"a": 1, "a": 2}</c> and throws an <see cref="ArgumentException"/> only when the object is first
/// read, past the callers' "not JSON" handling (an internal error once).</summary>
public static class StrictJson
{
    static readonly JsonDocumentOptions Options = new() { AllowDuplicateProperties = false };

    public static JsonNode? Parse(string text) => JsonNode.Parse(text, documentOptions: Options);

    public static JsonNode? Parse(ReadOnlySpan<byte> utf8) => JsonNode.Parse(utf8, documentOptions: Options);
}
