namespace CrOC.Data;

/// <summary>
/// PNG's five scanline filters (None, Sub, Up, Average, Paeth), undone in place, for rows whose
/// pixels are at most a byte (palette and gray images of 1 to 8 bits): the byte "to the left" is
/// the previous byte of the row (0 before the first), "above" the same byte of the previous row.
/// </summary>
public static class PngFilters
{
    /// <summary>Undoes filter <paramref name="type"/> on <paramref name="row"/>, given the unfiltered
    /// <paramref name="above"/> (zeros for a pass's first row); an unknown type is a <see cref="DecodeException"/>.</summary>
    public static void Undo(byte type, Span<byte> row, ReadOnlySpan<byte> above, string name)
    {
        switch (type)
        {
            case 0: break;
            case 1: for (int i = 1; i < row.Length; i++) row[i] += row[i - 1]; break;
            case 2: for (int i = 0; i < row.Length; i++) row[i] += above[i]; break;
            case 3: for (int i = 0; i < row.Length; i++) row[i] += (byte)(((i > 0 ? row[i - 1] : 0) + above[i]) >> 1); break;
            case 4: for (int i = 0; i < row.Length; i++) row[i] += Paeth(i > 0 ? row[i - 1] : (byte)0, above[i], i > 0 ? above[i - 1] : (byte)0); break;
            default: throw new DecodeException(name, $"a scanline of unknown filter type {type} (a damaged file?)");
        }
    }

    /// <summary>Whichever of left, above and upper-left is nearest to left + above − upper-left (ties in that order).</summary>
    static byte Paeth(byte a, byte b, byte c)
    {
        int p = a + b - c, pa = System.Math.Abs(p - a), pb = System.Math.Abs(p - b), pc = System.Math.Abs(p - c);
        return pa <= pb && pa <= pc ? a : pb <= pc ? b : c;
    }
}
