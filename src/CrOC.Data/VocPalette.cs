namespace CrOC.Data;

/// <summary>The Pascal VOC colour map: class i ↦ RGB by interleaving the bits of i; 255 (the
/// "ignore" label of boundaries) is (224, 224, 192).</summary>
public static class VocPalette
{
    public const byte Ignore = 255;

    public static readonly (byte R, byte G, byte B)[] Colors = Enumerable.Range(0, 256).Select(Color).ToArray();

    static (byte, byte, byte) Color(int index)
    {
        int r = 0, g = 0, b = 0, c = index;
        for (int j = 0; j < 8; j++)
        {
            r |= ((c >> 0) & 1) << (7 - j);
            g |= ((c >> 1) & 1) << (7 - j);
            b |= ((c >> 2) & 1) << (7 - j);
            c >>= 3;
        }
        return ((byte)r, (byte)g, (byte)b);
    }

    static readonly Dictionary<int, byte> ByColor = Enumerable.Range(0, 256).ToDictionary(i => Key(Colors[i]), i => (byte)i);

    static int Key((byte R, byte G, byte B) c) => (c.R << 16) | (c.G << 8) | c.B;

    /// <summary>The class index of a palette colour, or null if the colour is not in the map.</summary>
    public static byte? IndexOf(byte r, byte g, byte b) => ByColor.TryGetValue((r << 16) | (g << 8) | b, out var i) ? i : null;
}
