namespace CrOC.Data;

/// <summary>
/// Whether JPEG bytes reach the end of their image. The JPEG decoder takes a file cut inside (or
/// before) its entropy-coded scans for a whole one, with grey or black pixels for what is missing:
/// a partly copied dataset would train on them unnoticed. The check walks the marker segments
/// (lengths skipped, entropy-coded data scanned to its next marker, progressive files' many scans
/// included) and asks for the end-of-image marker after at least one scan; bytes after it are
/// allowed (some cameras append data), as are stray bytes between segments (decoders skip them).
/// </summary>
public static class JpegEnd
{
    const byte Marker = 0xFF, EndOfImage = 0xD9, StartOfScan = 0xDA;

    /// <summary>The most scans a JPEG may have (encoders write 1, or about 10 when progressive). Each scan
    /// is a pass of the decoder over the whole image, coded in a few bytes with end-of-band runs: 4,000
    /// scans in 165 KB took 1.4 s for a 4096² image (4× its one-scan cost); 256 MB of them, about half an hour.</summary>
    public const int MaxScans = 1000;

    /// <summary>The most APP1 and APP2 segments (EXIF, XMP, ICC: 64 KB each) a JPEG may have. ImageSharp joins
    /// each kind's segments anew for every one it reads: 100 took 0.4 s and 644 MB, 1,000 (65 MB) 17 s and
    /// 62 GB. 64 hold a 4 MB ICC profile.</summary>
    public const int MaxMetadataSegments = 64;

    /// <summary>Whether a JPEG's bytes (the decoder's format detection says they are one) hold a scan and, after it, the end-of-image marker.</summary>
    public static bool Reached(ReadOnlySpan<byte> bytes) => Walk(bytes).Reached;

    /// <summary>The scans and the APP1/APP2 segments before the end-of-image marker (or the end of the bytes),
    /// and whether that marker follows a scan.</summary>
    public static (bool Reached, int Scans, int MetadataSegments) Walk(ReadOnlySpan<byte> bytes)
    {
        int at = 2, scans = 0, metadata = 0;
        while (at + 1 < bytes.Length)
        {
            if (bytes[at] != Marker || bytes[at + 1] == Marker) { at++; continue; } // stray or fill bytes
            byte marker = bytes[at + 1];
            if (marker == EndOfImage) return (scans > 0, scans, metadata);
            if (marker is 0x01 or (>= 0xD0 and <= 0xD7)) { at += 2; continue; } // TEM, RSTn: no length
            if (at + 3 >= bytes.Length) break;
            int length = (bytes[at + 2] << 8) | bytes[at + 3];
            if (length < 2) break;
            at += 2 + length;
            if (marker is 0xE1 or 0xE2) metadata++;
            if (marker != StartOfScan) continue;
            scans++;
            // entropy-coded data: FF 00 is a stuffed byte, FF D0..D7 a restart; any other FF xx a marker
            while (at + 1 < bytes.Length && !(bytes[at] == Marker && bytes[at + 1] != 0x00 && bytes[at + 1] is not (>= 0xD0 and <= 0xD7))) at++;
        }
        return (false, scans, metadata);
    }
}
