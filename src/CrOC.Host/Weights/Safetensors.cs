using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using CrOC.Data;
using TorchSharp;

namespace CrOC.Host.Weights;

/// <summary>
/// The safetensors format (the project's own tensor format): an 8-byte little-endian header
/// length, a UTF-8 JSON header {name: {dtype, shape, data_offsets}, "__metadata__": {str: str}},
/// then the raw little-endian data. Reading treats the file as untrusted: header size, offsets,
/// overlaps and sizes are checked before any tensor is made. Every file we write carries the
/// SHA-256 of its data region in the metadata (key <c>sha256</c>); reading verifies it when present,
/// so a truncated or corrupted file is refused.
/// </summary>
public static class Safetensors
{
    const long MaxHeaderBytes = 100L << 20;
    /// <summary>The most tensors a file may list (a ViT-L checkpoint with AdamW's moments: about 1,200); each
    /// costs a native tensor, so 400,000 empty ones in a 23 MB header took 1 GB once.</summary>
    public const int MaxTensors = 100_000;
    public const string ChecksumKey = "sha256";

    public static void Write(string path, NamedTensors tensors, IReadOnlyDictionary<string, string>? metadata = null, bool replace = true) =>
        AtomicFile.WriteTogether([Content(path, tensors, metadata)], replace);

    /// <summary>The file at <paramref name="path"/> as one part of an atomic write (its size known).</summary>
    public static AtomicFile.Content Content(string path, NamedTensors tensors, IReadOnlyDictionary<string, string>? metadata = null)
    {
        var (header, blobs) = Encode(tensors, metadata);
        return new(path, stream => Write(stream, header, blobs), 8 + header.Length + blobs.Sum(b => (long)b.Length));
    }

    public static void Write(Stream stream, NamedTensors tensors, IReadOnlyDictionary<string, string>? metadata = null)
    {
        var (header, blobs) = Encode(tensors, metadata);
        Write(stream, header, blobs);
    }

    static void Write(Stream stream, byte[] header, List<byte[]> blobs)
    {
        stream.Write(BitConverter.GetBytes((ulong)header.Length));
        stream.Write(header);
        foreach (var blob in blobs) stream.Write(blob);
    }

    /// <summary>The padded JSON header and the tensors' bytes.</summary>
    static (byte[] Header, List<byte[]> Blobs) Encode(NamedTensors tensors, IReadOnlyDictionary<string, string>? metadata)
    {
        var header = new JsonObject();
        var blobs = new List<byte[]>();
        long offset = 0;
        foreach (var (name, tensor) in tensors)
        {
            var bytes = DTypes.BytesOf(tensor);
            header[name] = new JsonObject
            {
                ["dtype"] = DTypes.ToSafetensors(tensor.dtype),
                ["shape"] = new JsonArray(tensor.shape.Select(d => (JsonNode?)JsonValue.Create(d)).ToArray()),
                ["data_offsets"] = new JsonArray(JsonValue.Create(offset), JsonValue.Create(offset + bytes.Length)),
            };
            blobs.Add(bytes);
            offset += bytes.Length;
        }
        using var sha = System.Security.Cryptography.IncrementalHash.CreateHash(System.Security.Cryptography.HashAlgorithmName.SHA256);
        foreach (var blob in blobs) sha.AppendData(blob);
        var allMetadata = new Dictionary<string, string>(metadata ?? new Dictionary<string, string>()) { [ChecksumKey] = Convert.ToHexString(sha.GetHashAndReset()) };
        header["__metadata__"] = new JsonObject(allMetadata.Select(kv => KeyValuePair.Create(kv.Key, (JsonNode?)JsonValue.Create(kv.Value))));
        var json = Encoding.UTF8.GetBytes(header.ToJsonString());
        // Pad the header with spaces to a multiple of 8 bytes, as the reference writer does.
        var padded = new byte[(json.Length + 7) / 8 * 8];
        json.CopyTo(padded, 0);
        padded.AsSpan(json.Length).Fill((byte)' ');
        return (padded, blobs);
    }

    public static (NamedTensors Tensors, Dictionary<string, string> Metadata) Read(string path)
    {
        using var stream = File.OpenRead(path);
        try
        {
            return Read(stream);
        }
        catch (Exception e) when (Malformed(e))
        {
            throw new WeightsException($"{path}: not a valid safetensors file ({e.Message.Split('\n')[0]})");
        }
        catch (WeightsException e)
        {
            throw new WeightsException($"{path}: {e.Message}");
        }
    }

    /// <summary>The integers of the array <paramref name="field"/> of tensor <paramref name="name"/>'s
    /// header entry; a missing field, another JSON kind or a null element is refused by name.</summary>
    static long[] Integers(JsonNode entry, string field, string name) =>
        entry[field] is JsonArray array
            ? array.Select(d => d is null ? throw new WeightsException($"'{name}': {field} holds a null") : d.GetValue<long>()).ToArray()
            : throw new WeightsException($"'{name}' has no {field} array");

    /// <summary>The metadata of the safetensors file <paramref name="path"/>, from its header alone
    /// (neither the tensors nor the checksum are read).</summary>
    public static Dictionary<string, string> ReadMetadata(string path)
    {
        using var stream = File.OpenRead(path);
        try { return MetadataOf(ReadHeader(stream).Header); }
        catch (Exception e) when (Malformed(e))
        {
            throw new WeightsException($"{path}: not a valid safetensors file ({e.Message.Split('\n')[0]})");
        }
    }

    /// <summary>What the readers throw on a malformed file (a refusal, not an internal error).</summary>
    static bool Malformed(Exception e) => e is JsonException or EndOfStreamException or InvalidOperationException or FormatException or OverflowException
        or ArgumentException or KeyNotFoundException or InvalidCastException;

    /// <summary>The header as JSON, and where the data starts and how long it is; the stream is left at the data.</summary>
    static (JsonObject Header, long DataStart, long DataLength) ReadHeader(Stream stream)
    {
        var lengthBytes = new byte[8];
        stream.ReadExactly(lengthBytes);
        ulong headerLength = BitConverter.ToUInt64(lengthBytes);
        long dataLength = stream.Length - 8 - (long)System.Math.Min(headerLength, (ulong)long.MaxValue);
        if (lengthBytes is [(byte)'P', (byte)'K', 3, 4, ..]) // a zip's first entry, where the header length would be
            throw new WeightsException("a zip archive (a PyTorch .pth saved by torch.save?), not safetensors: give it a .pth name");
        if (headerLength > MaxHeaderBytes || dataLength < 0)
            throw new WeightsException($"header length {headerLength} does not fit a file of {stream.Length} bytes");
        var headerBytes = new byte[headerLength];
        stream.ReadExactly(headerBytes);
        var header = StrictJson.Parse(headerBytes)?.AsObject() ?? throw new WeightsException("empty header");
        return (header, 8 + (long)headerLength, dataLength);
    }

    static Dictionary<string, string> MetadataOf(JsonObject header) =>
        !header.TryGetPropertyValue("__metadata__", out var node) ? []
        : node is JsonObject metadata ? metadata.ToDictionary(m => m.Key, m => m.Value?.GetValue<string>() ?? "")
        : throw new WeightsException("__metadata__ is not an object");

    public static (NamedTensors Tensors, Dictionary<string, string> Metadata) Read(Stream stream)
    {
        var (header, dataStart, dataLength) = ReadHeader(stream);
        if (header.Count(e => e.Key != "__metadata__") is var listed and > MaxTensors)
            throw new WeightsException($"the header lists {listed:N0} tensors, more than {MaxTensors:N0}");
        var metadata = MetadataOf(header);
        var entries = new List<(string Name, torch.ScalarType Type, long[] Shape, long Begin, long End)>();
        foreach (var (name, node) in header)
        {
            if (node is null) throw new WeightsException($"entry '{name}' is null");
            if (name == "__metadata__") continue;
            var type = DTypes.FromSafetensors(node["dtype"]?.GetValue<string>() ?? "");
            var shape = Integers(node, "shape", name);
            if (shape.Length > 64) throw new WeightsException($"'{name}' has {shape.Length} dimensions");
            var offsets = Integers(node, "data_offsets", name);
            long elements = shape.Aggregate(1L, (a, d) => d < 0 ? throw new WeightsException($"'{name}' has a negative dimension") : checked(a * d));
            if (offsets.Length != 2 || offsets[0] < 0 || offsets[1] < offsets[0] || offsets[1] > dataLength)
                throw new WeightsException($"'{name}' has data offsets outside the file");
            if (offsets[1] - offsets[0] != checked(elements * DTypes.Size(type)))
                throw new WeightsException($"'{name}': {offsets[1] - offsets[0]} bytes for {elements} {type} elements");
            entries.Add((name, type, shape, offsets[0], offsets[1]));
        }
        var ordered = entries.OrderBy(e => e.Begin).ToList();
        for (int i = 1; i < ordered.Count; i++)
            if (ordered[i].Begin < ordered[i - 1].End)
                throw new WeightsException($"'{ordered[i].Name}' overlaps '{ordered[i - 1].Name}'");

        if (metadata.TryGetValue(ChecksumKey, out var expected))
        {
            stream.Position = dataStart;
            var actual = Convert.ToHexString(System.Security.Cryptography.SHA256.HashData(new BoundedStream(stream, dataLength)));
            if (!string.Equals(actual, expected, StringComparison.OrdinalIgnoreCase))
                throw new WeightsException("checksum mismatch: the file is corrupt or was cut short");
        }
        var tensors = new NamedTensors();
        foreach (var (name, type, shape, begin, end) in entries)
        {
            if (end - begin > int.MaxValue) throw new WeightsException($"'{name}' is larger than 2 GiB");
            var data = new byte[end - begin];
            stream.Position = dataStart + begin;
            stream.ReadExactly(data);
            tensors.Add(name, DTypes.FromBytes(type, shape, data));
        }
        return (tensors, metadata);
    }
}
