using System.Buffers.Binary;
using SixLabors.ImageSharp.Formats;
using SixLabors.ImageSharp.Formats.Bmp;
using SixLabors.ImageSharp.Formats.Gif;
using SixLabors.ImageSharp.Formats.Jpeg;
using SixLabors.ImageSharp.Formats.Png;
using SixLabors.ImageSharp.Formats.Tiff;
using SixLabors.ImageSharp.Formats.Webp;

namespace CrOC.Data;

/// <summary>
/// Whether an encoded image's bytes hold all of the image they announce. ImageSharp's decoders take
/// a file cut short (an interrupted copy) for a whole one and fill what is missing with black rows:
/// a dataset would train, and a mask evaluate, on them unnoticed. Each format's structure is walked
/// by its own lengths — nothing is decompressed — up to the end of the first frame or page (the one
/// decoded). Formats ImageSharp reads but this project does not list (TGA, PBM) are refused, and so is
/// a JPEG of more scans than <see cref="JpegEnd.MaxScans"/> or more metadata segments than
/// <see cref="JpegEnd.MaxMetadataSegments"/> (the same walk counts them).
/// </summary>
public static class EncodedEnd
{
    /// <summary>Why <paramref name="bytes"/> of <paramref name="format"/> are not a whole image, or null.</summary>
    public static string? Missing(IImageFormat format, ReadOnlySpan<byte> bytes) => format switch
    {
        JpegFormat => JpegEnd.Walk(bytes) switch
        {
            { Scans: > JpegEnd.MaxScans } walk => $"a JPEG of {walk.Scans:N0} scans, more than {JpegEnd.MaxScans:N0} (each is a pass over the whole image: a decompression bomb?)",
            { MetadataSegments: > JpegEnd.MaxMetadataSegments } walk => $"a JPEG of {walk.MetadataSegments:N0} EXIF/XMP/ICC segments (APP1, APP2), more than {JpegEnd.MaxMetadataSegments} (the decoder joins them at a cost growing with their square)",
            { Reached: true } => null,
            _ => "a JPEG cut short: its image data ends before the end-of-image marker (an incomplete copy?)",
        },
        PngFormat => PngComplete(bytes) ? null : "a PNG cut short: its chunks end before the IEND chunk (an incomplete copy?)",
        GifFormat => GifComplete(bytes) ? null : "a GIF cut short: its first frame's data ends early (an incomplete copy?)",
        WebpFormat => WebpComplete(bytes) ? null : "a WebP cut short: shorter than its RIFF header says (an incomplete copy?)",
        BmpFormat => BmpComplete(bytes) ? null : "a BMP cut short: shorter than its pixel rows need (an incomplete copy?)",
        TiffFormat => TiffComplete(bytes) ? null : "a TIFF cut short: its first page's strips or tiles lie beyond the file's end (an incomplete copy?)",
        _ => $"a {format.Name} file: not one of the supported formats (JPEG, PNG, BMP, GIF, WebP, TIFF)",
    };

    /// <summary>Chunks (length, type, data, CRC) from byte 8 up to IEND, each inside the file.</summary>
    static bool PngComplete(ReadOnlySpan<byte> bytes)
    {
        foreach (var chunk in new PngChunks(bytes))
            if (chunk.Is("IEND"u8)) return true;
        return false;
    }

    /// <summary>Header, global colour table, then extensions up to the first image descriptor,
    /// whose data sub-blocks must reach their zero terminator.</summary>
    static bool GifComplete(ReadOnlySpan<byte> bytes)
    {
        if (bytes.Length < 13) return false;
        long at = 13 + ColourTable(bytes[10]);
        while (at < bytes.Length)
        {
            switch (bytes[(int)at])
            {
                case 0x21: // extension: label, then sub-blocks
                    at = AfterSubBlocks(bytes, at + 2);
                    break;
                case 0x2C: // image descriptor (10 bytes), local colour table, LZW code size, sub-blocks
                    if (at + 10 > bytes.Length) return false;
                    at += 10 + ColourTable(bytes[(int)at + 9]) + 1;
                    return AfterSubBlocks(bytes, at) <= bytes.Length;
                case 0x3B: return false; // the trailer before any image
                default: at++; break; // a stray byte between blocks, which decoders skip
            }
        }
        return false;
    }

    static long ColourTable(byte packed) => (packed & 0x80) == 0 ? 0 : 3L << ((packed & 7) + 1);

    /// <summary>The position after a chain of sub-blocks (size byte, data) and its zero terminator; beyond the end when cut.</summary>
    static long AfterSubBlocks(ReadOnlySpan<byte> bytes, long at)
    {
        while (at < bytes.Length && bytes[(int)at] != 0) at += 1 + bytes[(int)at];
        return at + 1;
    }

    /// <summary>"RIFF", the payload's size, "WEBP": the payload lies inside the file.</summary>
    static bool WebpComplete(ReadOnlySpan<byte> bytes) =>
        bytes.Length >= 12 && 8L + BinaryPrimitives.ReadUInt32LittleEndian(bytes[4..]) <= bytes.Length;

    /// <summary>The pixel array's offset plus its rows (uncompressed: 4-byte aligned rows of the bit
    /// count; RLE: its stream's rows; other compressions: the header's image size) lie inside the file.</summary>
    static bool BmpComplete(ReadOnlySpan<byte> bytes)
    {
        if (bytes.Length < 26) return false;
        long pixels = BinaryPrimitives.ReadUInt32LittleEndian(bytes[10..]);
        uint header = BinaryPrimitives.ReadUInt32LittleEndian(bytes[14..]);
        if (bytes.Length < 14 + System.Math.Min(header, 40u)) return false;
        long width, height, bits, compression = 0, imageSize = 0;
        if (header == 12) // OS/2 core header: 16-bit sides
            (width, height, bits) = (BinaryPrimitives.ReadUInt16LittleEndian(bytes[18..]), BinaryPrimitives.ReadUInt16LittleEndian(bytes[20..]), BinaryPrimitives.ReadUInt16LittleEndian(bytes[24..]));
        else // the info header's layout; OS/2 v2 headers of 16 bytes end before the compression field
        {
            width = BinaryPrimitives.ReadInt32LittleEndian(bytes[18..]);
            height = System.Math.Abs((long)BinaryPrimitives.ReadInt32LittleEndian(bytes[22..])); // negative: rows top-down
            bits = BinaryPrimitives.ReadUInt16LittleEndian(bytes[28..]);
            if (header >= 20) compression = BinaryPrimitives.ReadUInt32LittleEndian(bytes[30..]);
            if (header >= 24) imageSize = BinaryPrimitives.ReadUInt32LittleEndian(bytes[34..]);
        }
        if (compression is 1 or 2) return RleComplete(bytes, pixels, height, fourBits: compression == 2); // writers may leave the image size 0
        bool uncompressed = compression is 0 or 3 or 6; // RGB, bit fields, alpha bit fields
        long data = uncompressed ? (bits * width + 31) / 32 * 4 * height : imageSize;
        return pixels + data <= bytes.Length;
    }

    /// <summary>An RLE8 or RLE4 pixel stream from <paramref name="at"/> reaches its end-of-bitmap pair
    /// (00 01), or ends after its last row's end-of-line (00 00; the end marker left out); a stream that
    /// ends before its rows do, or inside a pair or an absolute run, is cut.</summary>
    static bool RleComplete(ReadOnlySpan<byte> bytes, long at, long height, bool fourBits)
    {
        long rows = 0;
        while (at + 2 <= bytes.Length)
        {
            byte count = bytes[(int)at], value = bytes[(int)at + 1];
            at += 2;
            if (count > 0) continue; // a run of count pixels
            switch (value)
            {
                case 0: rows++; break; // end of line
                case 1: return true; // end of bitmap
                case 2: // delta: dx, dy
                    if (at + 2 > bytes.Length) return false;
                    rows += bytes[(int)at + 1];
                    at += 2;
                    break;
                default: // absolute: value pixels, padded to a 2-byte boundary
                    long stored = fourBits ? (value + 1) / 2 : value;
                    at += (stored + 1) / 2 * 2;
                    break;
            }
        }
        return rows >= height && at <= bytes.Length;
    }

    /// <summary>The first directory's strips (or tiles) lie inside the file. Classic TIFF only; a
    /// BigTIFF is left to the decoder.</summary>
    static bool TiffComplete(ReadOnlySpan<byte> bytes)
    {
        var directory = TiffDirectory.Read(bytes, TiffDirectory.StripOffsets, TiffDirectory.StripByteCounts, TiffDirectory.TileOffsets, TiffDirectory.TileByteCounts);
        if (directory is null) return true;
        if (directory.Cut) return false;
        var (offsets, counts) = directory.Chunks;
        if (offsets is null || counts is null) return true; // malformed: the decoder says how
        for (int i = 0; i < System.Math.Min(offsets.Length, counts.Length); i++)
            if (offsets[i] + counts[i] > bytes.Length) return false;
        return true;
    }
}
