using System.Buffers.Binary;
using SixLabors.ImageSharp.PixelFormats;

namespace CrOC.Data;

/// <summary>
/// The colour table of a palette PNG (its PLTE chunk, with the alpha of its tRNS chunk), read from
/// the file's chunks: ImageSharp 2 decodes a palette image to colours and does not expose the
/// table, while a mask's class is the stored index, whatever colour the table gives it.
/// </summary>
public static class PngPalette
{
    /// <summary>The table, entry i being index i's colour (alpha 255 where tRNS gives none), or null
    /// when the file has no PLTE chunk before its image data (or its chunks are cut short).</summary>
    public static Rgba32[]? Read(ReadOnlySpan<byte> png)
    {
        Rgba32[]? table = null;
        for (long at = 8; at + 8 <= png.Length;) // after the 8-byte signature: length, type, data, CRC
        {
            uint length = BinaryPrimitives.ReadUInt32BigEndian(png[(int)at..]);
            if (at + 12 + length > png.Length) break;
            var type = png.Slice((int)at + 4, 4);
            var data = png.Slice((int)at + 8, (int)length);
            if (type.SequenceEqual("IDAT"u8)) break; // PLTE and tRNS come before the image data
            if (type.SequenceEqual("PLTE"u8))
            {
                table = new Rgba32[data.Length / 3];
                for (int i = 0; i < table.Length; i++) table[i] = new Rgba32(data[3 * i], data[3 * i + 1], data[3 * i + 2], byte.MaxValue);
            }
            else if (type.SequenceEqual("tRNS"u8) && table is not null)
                for (int i = 0; i < System.Math.Min(data.Length, table.Length); i++) table[i].A = data[i];
            at += 12 + length;
        }
        return table;
    }
}
