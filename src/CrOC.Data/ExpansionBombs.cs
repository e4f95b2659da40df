using System.Buffers.Binary;
using System.IO.Compression;

namespace CrOC.Data;

/// <summary>
/// Small files whose metadata ImageSharp 2.1 would expand to gigabytes, in identification too: a
/// PNG's compressed text chunks (zTXt, iTXt) are inflated without a limit (a 1 MB file: 1 GB of
/// text), a WebP chunk's claimed size is allocated before it is read, and so are the gap before a BMP's
/// pixel data (its palette: a 190-byte file claiming an offset of 1 GB allocated 1 GB) and the length a
/// PNG's raw-profile text claims (<see cref="RawProfileBeyond"/>). Checked on the encoded
/// bytes before ImageSharp sees them; PNG text is inflated here into a counter, at most
/// <see cref="MaxTextBytes"/>. (A JPEG's scans cost only when its pixels are decoded: <see cref="JpegEnd.MaxScans"/>.)
/// </summary>
public static class ExpansionBombs
{
    /// <summary>Text all of a PNG's compressed chunks may inflate to (real files: KB; ImageMagick's hex
    /// profiles and Photoshop's XMP: a few MB). ImageSharp inflates it 4 bytes a read, in identification
    /// and again in decoding: 64 MB would cost seconds per image.</summary>
    public const int MaxTextBytes = 16 << 20;

    /// <summary>The most bytes of a text chunk's header (keyword, language, translated keyword) read to find its compressed text.</summary>
    const int MaxTextHeader = 64 << 10;

    static ReadOnlySpan<byte> PngSignature => [0x89, (byte)'P', (byte)'N', (byte)'G', 0x0D, 0x0A, 0x1A, 0x0A];

    /// <summary>Why <paramref name="bytes"/> would expand beyond their limits when decoded, or null.</summary>
    public static string? Why(byte[] bytes) => Why(new MemoryStream(bytes, writable: false));

    /// <summary>As <see cref="Why(byte[])"/> for a seekable stream, which is left at its start.</summary>
    public static string? Why(Stream file)
    {
        try
        {
            var head = new byte[14];
            file.Position = 0;
            int read = file.ReadAtLeast(head, head.Length, throwOnEndOfStream: false);
            if (read >= 14 && head.AsSpan(0, 2).SequenceEqual("BM"u8) && BinaryPrimitives.ReadUInt32LittleEndian(head.AsSpan(10)) is var pixels && pixels > file.Length)
                return $"a BMP whose pixel data would start at byte {pixels}, beyond its end ({file.Length} bytes): the gap would be allocated as its palette";
            if (read < 12) return null;
            if (head.AsSpan().StartsWith(PngSignature)) return PngText(file);
            if (head.AsSpan(0, 4).SequenceEqual("RIFF"u8) && head.AsSpan(8, 4).SequenceEqual("WEBP"u8))
                return WebpChunks(file, System.Math.Min(file.Length, 8L + BinaryPrimitives.ReadUInt32LittleEndian(head.AsSpan(4))));
            return null;
        }
        finally { file.Position = 0; }
    }

    /// <summary>The inflated size of the zTXt chunks and compressed iTXt chunks up to IEND, at most the limit;
    /// and each tEXt or zTXt raw profile's claimed length against its text (<see cref="RawProfileBeyond"/>).</summary>
    static string? PngText(Stream file)
    {
        long text = 0;
        var header = new byte[8];
        for (long at = 8; at + 8 <= file.Length;)
        {
            file.Position = at;
            file.ReadExactly(header);
            long length = BinaryPrimitives.ReadUInt32BigEndian(header);
            var type = header.AsSpan(4, 4);
            if (type.SequenceEqual("IEND"u8) || at + 8 + length > file.Length) return null; // cut short: EncodedEnd says so
            if (type.SequenceEqual("zTXt"u8) || type.SequenceEqual("iTXt"u8) || type.SequenceEqual("tEXt"u8))
            {
                var head = new byte[System.Math.Min(length, MaxTextHeader)]; // inside the file, checked above
                file.ReadExactly(head);
                if (type.SequenceEqual("tEXt"u8))
                {
                    if (head.AsSpan().IndexOf((byte)0) is var end and >= 0 && RawProfileBeyond(head.AsSpan(0, end), head.AsSpan(end + 1), length - end - 1) is { } claim)
                        return claim;
                }
                else if (CompressedText(head, type) is int start)
                {
                    file.Position = at + 8 + start;
                    var textHead = new byte[RawProfileHead];
                    var (inflated, headBytes) = Inflated(new BoundedStream(file, length - start), MaxTextBytes - text + 1, textHead);
                    text += inflated;
                    if (text > MaxTextBytes) return $"a PNG whose compressed text chunks inflate beyond {MaxTextBytes:N0} bytes (a decompression bomb?)";
                    if (RawProfileBeyond(head.AsSpan(0, head.AsSpan().IndexOf((byte)0)), textHead.AsSpan(0, headBytes), inflated) is { } claim)
                        return claim;
                }
                else if (head.Length == MaxTextHeader && type.SequenceEqual("iTXt"u8) && IsCompressed(head))
                    return $"a PNG text chunk whose header runs past {MaxTextHeader:N0} bytes (a damaged file?)";
            }
            at += 12 + length;
        }
        return null;
    }

    /// <summary>Why a "Raw profile type …" text (ImageMagick's hex-encoded profile: a newline, the profile's
    /// name, its length in bytes, then the hex) claims more bytes than its <paramref name="textBytes"/> of
    /// text can hold, or null: ImageSharp allocates the claimed length for an EXIF one (a 189-byte PNG
    /// claiming 2³¹ − 1 bytes was an OutOfMemoryException that ended a run; 10⁹ bytes took 2 GB and 8 s).</summary>
    static string? RawProfileBeyond(ReadOnlySpan<byte> keyword, ReadOnlySpan<byte> textHead, long textBytes)
    {
        if (!System.Text.Encoding.Latin1.GetString(keyword).StartsWith("Raw profile type", StringComparison.OrdinalIgnoreCase)) return null;
        var fields = System.Text.Encoding.Latin1.GetString(textHead).Split((char[])[' ', '\n', '\r', '\t'], 3, StringSplitOptions.RemoveEmptyEntries); // name, length, hex…
        if (fields.Length < 2 || !fields[0].All(char.IsAsciiLetterOrDigit) || !fields[1].All(char.IsAsciiDigit)) return null; // no claim: the decoder reads no profile
        long claim = fields[1].Length > 18 ? long.MaxValue : long.Parse(fields[1], System.Globalization.CultureInfo.InvariantCulture);
        return claim > textBytes ? $"a PNG raw profile text claiming {claim:N0} bytes in {textBytes:N0} bytes of text (its decoder would allocate the claim)" : null;
    }

    /// <summary>The bytes of a compressed text kept to read a raw profile's name and length.</summary>
    const int RawProfileHead = 256;

    /// <summary>Whether an iTXt chunk's compression flag (after its keyword) is set.</summary>
    static bool IsCompressed(ReadOnlySpan<byte> chunk) => chunk.IndexOf((byte)0) is var end and >= 0 && end + 1 < chunk.Length && chunk[end + 1] == 1;

    /// <summary>Where a chunk's zlib stream starts: zTXt = keyword, 0, method; iTXt = keyword, 0,
    /// flag 1, method, language, 0, translated keyword, 0. Null for an uncompressed iTXt or a malformed chunk.</summary>
    static int? CompressedText(ReadOnlySpan<byte> chunk, ReadOnlySpan<byte> type)
    {
        int keywordEnd = chunk.IndexOf((byte)0);
        if (keywordEnd < 0) return null;
        if (type.SequenceEqual("zTXt"u8)) return System.Math.Min(keywordEnd + 2, chunk.Length);
        if (keywordEnd + 3 > chunk.Length || !IsCompressed(chunk)) return null;
        int at = keywordEnd + 3;
        for (int field = 0; field < 2; field++) // language tag, translated keyword
        {
            int end = chunk[at..].IndexOf((byte)0);
            if (end < 0) return null;
            at += end + 1;
        }
        return at;
    }

    /// <summary>Bytes the zlib stream <paramref name="compressed"/> inflates to, counted up to <paramref name="limit"/>, and how
    /// many of its first bytes fill <paramref name="head"/>; a damaged stream counts what came before the damage (the decoder reports it).</summary>
    static (long Total, int Head) Inflated(Stream compressed, long limit, Span<byte> head)
    {
        using var stream = new ZLibStream(compressed, CompressionMode.Decompress);
        var sink = new byte[1 << 16];
        long total = 0;
        int kept = 0;
        try
        {
            for (int read; total < limit && (read = stream.Read(sink)) > 0;)
            {
                int keep = System.Math.Min(read, head.Length - kept);
                sink.AsSpan(0, keep).CopyTo(head[kept..]);
                kept += keep;
                total += read;
            }
        }
        catch (InvalidDataException) { }
        return (total, kept);
    }

    /// <summary>Each chunk after "WEBP" (fourcc, little-endian size, data, a pad byte to even) lies inside the RIFF payload, which ends at <paramref name="end"/>.</summary>
    static string? WebpChunks(Stream file, long end)
    {
        var header = new byte[8];
        for (long at = 12; at + 8 <= end;)
        {
            file.Position = at;
            file.ReadExactly(header);
            long size = BinaryPrimitives.ReadUInt32LittleEndian(header.AsSpan(4));
            if (at + 8 + size > end)
                return $"a WebP whose {System.Text.Encoding.ASCII.GetString(header, 0, 4)} chunk claims {size} bytes, beyond the end of its RIFF payload (at byte {end})";
            at += 8 + size + (size & 1);
        }
        return null;
    }
}
