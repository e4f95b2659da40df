using System.Buffers.Binary;
using System.IO.Compression;

namespace CrOC.Data;

/// <summary>A palette PNG's stored indices, row-major, and how many entries its PLTE chunk lists.</summary>
public readonly record struct IndexedPixels(byte[] Indices, int Width, int Height, int Entries);

/// <summary>
/// Reads a palette (colour type 3) PNG's stored indices, not the colours they name: ImageSharp 2.1
/// decodes only to colours, so a table listing one colour at several indices merges them, and it
/// clamps an index beyond the table to its last entry. Bit depths 1, 2, 4, 8; Adam7 interlacing.
/// The caller checks size and completeness first (<see cref="ImageDecoder.Check"/>): the image data
/// is inflated one scanline at a time, never beyond the rows the header announces.
/// </summary>
public static class PngIndices
{
    /// <summary>Adam7's passes: first column, first row, column step, row step.</summary>
    static readonly (int X, int Y, int Dx, int Dy)[] Adam7 =
        [(0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2), (0, 1, 1, 2)];

    /// <summary>The indices of <paramref name="png"/>; every malformation is a <see cref="DecodeException"/> naming <paramref name="name"/>.</summary>
    public static IndexedPixels Read(ReadOnlySpan<byte> png, string name)
    {
        ReadOnlySpan<byte> header = default;
        int entries = -1;
        using var data = new MemoryStream();
        foreach (var chunk in new PngChunks(png)) // whole chunks only: a file cut short is the check before's to say
        {
            if (chunk.Is("IHDR"u8)) header = chunk.Data;
            else if (chunk.Is("PLTE"u8)) entries = chunk.Data.Length / 3;
            else if (chunk.Is("IDAT"u8)) data.Write(chunk.Data);
        }
        if (header.Length < 13) throw new DecodeException(name, "a PNG without a whole IHDR header");
        int width = (int)System.Math.Min(BinaryPrimitives.ReadUInt32BigEndian(header), int.MaxValue);
        int height = (int)System.Math.Min(BinaryPrimitives.ReadUInt32BigEndian(header[4..]), int.MaxValue);
        int bits = header[8], colourType = header[9], interlace = header[12];
        if (colourType != 3) throw new DecodeException(name, $"a PNG of colour type {colourType}, not a palette PNG");
        if (bits is not (1 or 2 or 4 or 8)) throw new DecodeException(name, $"a palette PNG of {bits} bits per index (1, 2, 4 or 8)");
        if (interlace > 1) throw new DecodeException(name, $"a PNG of unknown interlace method {interlace}");
        if (entries < 0) throw new DecodeException(name, "a palette PNG without a PLTE chunk");

        var indices = new byte[(long)width * height]; // within the decoder's pixel limit, checked by the caller
        data.Position = 0;
        try
        {
            using var inflated = new ZLibStream(data, CompressionMode.Decompress);
            (int X, int Y, int Dx, int Dy)[] passes = interlace == 1 ? Adam7 : [(0, 0, 1, 1)];
            foreach (var (x0, y0, dx, dy) in passes)
            {
                int columns = width > x0 ? (width - x0 + dx - 1) / dx : 0, rows = height > y0 ? (height - y0 + dy - 1) / dy : 0;
                if (columns == 0 || rows == 0) continue; // an empty pass has no filter bytes
                int rowBytes = (int)(((long)columns * bits + 7) / 8);
                var previous = new byte[rowBytes]; // each pass starts on a row of zeros
                var row = new byte[1 + rowBytes];
                for (int r = 0; r < rows; r++)
                {
                    if (inflated.ReadAtLeast(row, row.Length, throwOnEndOfStream: false) < row.Length)
                        throw new DecodeException(name, $"its image data ends before its {height} rows do (a damaged or cut file?)");
                    var current = row.AsSpan(1);
                    PngFilters.Undo(row[0], current, previous, name);
                    Unpack(current, bits, columns, indices.AsSpan(), (long)(y0 + r * dy) * width + x0, dx);
                    current.CopyTo(previous);
                }
            }
        }
        catch (InvalidDataException e) { throw new DecodeException(name, $"its image data is not a valid zlib stream ({e.Message})"); }
        return new IndexedPixels(indices, width, height, entries);
    }

    /// <summary>A scanline's <paramref name="count"/> indices of <paramref name="bits"/> bits, packed from
    /// each byte's high bits (the last byte's low bits are padding), into every <paramref name="step"/>-th byte of
    /// <paramref name="to"/> from <paramref name="first"/>.</summary>
    static void Unpack(ReadOnlySpan<byte> row, int bits, int count, Span<byte> to, long first, int step)
    {
        int perByte = 8 / bits, mask = (1 << bits) - 1;
        for (int i = 0; i < count; i++)
        {
            int shift = 8 - bits * (i % perByte + 1);
            to[(int)(first + (long)i * step)] = (byte)((row[i / perByte] >> shift) & mask);
        }
    }
}
