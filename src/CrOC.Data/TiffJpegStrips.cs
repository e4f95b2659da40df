namespace CrOC.Data;

/// <summary>
/// A JPEG-compressed TIFF's strips (or tiles) must each be a JPEG no larger than the page. ImageSharp
/// 2.1 decodes such a strip (without JPEGTables) with <c>Image.Load</c>: any format, the default
/// configuration, none of <see cref="ImageDecoder"/>'s limits. A strip pointing at the TIFF itself
/// (offset 0) was decoded again and again until the stack overflowed, which ends the process (no
/// exception to catch); a PNG there would escape the bomb checks, a JPEG frame of 65535² the pixel limit,
/// a JPEG of 100,000 scans the scan limit (and of 1,000 metadata segments the segment limit).
/// </summary>
public static class TiffJpegStrips
{
    /// <summary>Why a TIFF's strips may not be decoded, or null (not JPEG-compressed, or every strip a JPEG
    /// within the page's size). A cut directory is <see cref="EncodedEnd"/>'s to report.</summary>
    public static string? Why(ReadOnlySpan<byte> bytes)
    {
        var directory = TiffDirectory.Read(bytes, TiffDirectory.Compression, TiffDirectory.ImageWidth, TiffDirectory.ImageLength,
            TiffDirectory.TileWidth, TiffDirectory.TileLength, TiffDirectory.StripOffsets, TiffDirectory.StripByteCounts, TiffDirectory.TileOffsets, TiffDirectory.TileByteCounts);
        if (directory is not { Cut: false } || directory.First(TiffDirectory.Compression, 1) is not (6 or 7)) return null; // 6: old-style JPEG, 7: JPEG
        long width = System.Math.Max(directory.First(TiffDirectory.ImageWidth, 0), directory.First(TiffDirectory.TileWidth, 0));
        long height = System.Math.Max(directory.First(TiffDirectory.ImageLength, 0), directory.First(TiffDirectory.TileLength, 0)); // a tile may overhang the page
        var (offsets, counts) = directory.Chunks;
        if (offsets is null || counts is null) return null; // the decoder says how
        for (int i = 0; i < System.Math.Min(offsets.Length, counts.Length); i++)
        {
            if (offsets[i] + counts[i] > bytes.Length) return null; // cut: EncodedEnd says so
            var strip = bytes.Slice((int)offsets[i], (int)counts[i]);
            switch (FrameSize(strip))
            {
                case null: return $"a JPEG-compressed TIFF whose strip {i} is no JPEG (it would be decoded as any image, outside the limits)";
                case var (w, h) when w > width || h > height: return $"a JPEG-compressed TIFF whose strip {i} is a JPEG of {w}x{h} pixels, larger than its {width}x{height} page";
            }
            if (JpegEnd.Walk(strip) is { Scans: > JpegEnd.MaxScans } or { MetadataSegments: > JpegEnd.MaxMetadataSegments })
                return $"a JPEG-compressed TIFF whose strip {i} is a JPEG of more than {JpegEnd.MaxScans:N0} scans or {JpegEnd.MaxMetadataSegments} metadata segments (a decompression bomb?)";
        }
        return null;
    }

    /// <summary>The width and height in a JPEG's frame header (SOF), or null when the bytes do not start
    /// with SOI or reach no frame header before a scan or their end.</summary>
    static (int Width, int Height)? FrameSize(ReadOnlySpan<byte> jpeg)
    {
        if (jpeg.Length < 2 || jpeg[0] != 0xFF || jpeg[1] != 0xD8) return null;
        int at = 2;
        while (at + 4 <= jpeg.Length && jpeg[at] == 0xFF)
        {
            byte marker = jpeg[at + 1];
            if (marker is 0xFF) { at++; continue; } // a fill byte
            if (marker is 0x01 or (>= 0xD0 and <= 0xD8)) { at += 2; continue; } // markers without a length
            if (marker is >= 0xC0 and <= 0xCF and not (0xC4 or 0xC8 or 0xCC)) // SOFn: length, precision, height, width
                return at + 9 <= jpeg.Length ? (jpeg[at + 7] << 8 | jpeg[at + 8], jpeg[at + 5] << 8 | jpeg[at + 6]) : null;
            if (marker is 0xDA or 0xD9) return null; // a scan or the end before any frame
            at += 2 + (jpeg[at + 2] << 8 | jpeg[at + 3]);
        }
        return null;
    }
}
