using System.Buffers.Binary;

namespace CrOC.Data;

/// <summary>One chunk of a PNG: its 4-byte type and its data (the length and CRC around them left out).</summary>
public readonly ref struct PngChunk(ReadOnlySpan<byte> type, ReadOnlySpan<byte> data)
{
    public ReadOnlySpan<byte> Type { get; } = type;
    public ReadOnlySpan<byte> Data { get; } = data;

    public bool Is(ReadOnlySpan<byte> type) => Type.SequenceEqual(type);
}

/// <summary>
/// A PNG's chunks (length, type, data, CRC) after its 8-byte signature, in file order up to and including
/// IEND, for <c>foreach</c>. The walk ends at the first chunk that does not lie whole inside the bytes (a
/// file cut short): a reader sees only whole chunks, and IEND only when the file reaches it.
/// </summary>
public ref struct PngChunks(ReadOnlySpan<byte> png)
{
    readonly ReadOnlySpan<byte> png = png;
    long at = 8;
    bool ended;

    public PngChunk Current { get; private set; }

    public readonly PngChunks GetEnumerator() => this;

    public bool MoveNext()
    {
        if (ended || at + 8 > png.Length) return false;
        long length = BinaryPrimitives.ReadUInt32BigEndian(png[(int)at..]);
        if (at + 12 + length > png.Length) return false;
        Current = new PngChunk(png.Slice((int)at + 4, 4), png.Slice((int)at + 8, (int)length));
        ended = Current.Is("IEND"u8);
        at += 12 + length;
        return true;
    }
}
