using System.Buffers.Binary;

namespace CrOC.Data;

/// <summary>
/// Tags of a classic TIFF's first directory (the page decoded), read by their own offsets without
/// decoding anything: each asked-for SHORT or LONG tag's values. A directory, or an asked-for tag's
/// values, beyond the bytes' end makes it <see cref="Cut"/>; nothing is allocated before its bounds
/// are checked.
/// </summary>
public sealed class TiffDirectory
{
    public const ushort ImageWidth = 256, ImageLength = 257, Compression = 259, StripOffsets = 273, StripByteCounts = 279,
        TileWidth = 322, TileLength = 323, TileOffsets = 324, TileByteCounts = 325;

    readonly Dictionary<ushort, long[]> values = [];

    /// <summary>The directory, or an asked-for tag's values, lies beyond the end.</summary>
    public bool Cut { get; private init; }

    /// <summary>The first directory's <paramref name="tags"/>; null when the bytes are no classic TIFF
    /// (a BigTIFF is left to the decoder).</summary>
    public static TiffDirectory? Read(ReadOnlySpan<byte> bytes, params ushort[] tags)
    {
        if (bytes.Length < 8) return new() { Cut = true };
        bool little = bytes[0] == (byte)'I';
        if (U16(bytes, 2, little) != 42) return null;
        long directory = U32(bytes, 4, little);
        if (directory + 2 > bytes.Length) return new() { Cut = true };
        long entries = U16(bytes, directory, little);
        if (directory + 2 + 12 * entries > bytes.Length) return new() { Cut = true };
        var read = new TiffDirectory();
        for (long e = directory + 2; e < directory + 2 + 12 * entries; e += 12)
        {
            ushort tag = (ushort)U16(bytes, e, little);
            uint type = U16(bytes, e + 2, little), count = U32(bytes, e + 4, little);
            if (!tags.Contains(tag) || type is not (3 or 4)) continue;
            long size = type == 3 ? 2 : 4, at = size * count <= 4 ? e + 8 : U32(bytes, e + 8, little);
            if (at + size * count > bytes.Length) return new() { Cut = true };
            var tagValues = new long[count];
            for (long i = 0; i < count; i++) tagValues[i] = size == 2 ? U16(bytes, at + 2 * i, little) : U32(bytes, at + 4 * i, little);
            read.values[tag] = tagValues;
        }
        return read;
    }

    /// <summary>A tag's values, or null when the directory lacks it.</summary>
    public long[]? this[ushort tag] => values.GetValueOrDefault(tag);

    /// <summary>A tag's first value, or <paramref name="otherwise"/>.</summary>
    public long First(ushort tag, long otherwise) => this[tag] is [var first, ..] ? first : otherwise;

    /// <summary>The page's strips (or tiles): offsets and byte counts, null where a tag is missing.</summary>
    public (long[]? Offsets, long[]? Counts) Chunks => (this[StripOffsets] ?? this[TileOffsets], this[StripByteCounts] ?? this[TileByteCounts]);

    static uint U16(ReadOnlySpan<byte> bytes, long at, bool little) =>
        little ? BinaryPrimitives.ReadUInt16LittleEndian(bytes[(int)at..]) : BinaryPrimitives.ReadUInt16BigEndian(bytes[(int)at..]);

    static uint U32(ReadOnlySpan<byte> bytes, long at, bool little) =>
        little ? BinaryPrimitives.ReadUInt32LittleEndian(bytes[(int)at..]) : BinaryPrimitives.ReadUInt32BigEndian(bytes[(int)at..]);
}
