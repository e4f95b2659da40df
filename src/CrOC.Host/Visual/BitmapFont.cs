using SixLabors.ImageSharp;
using SixLabors.ImageSharp.PixelFormats;

namespace CrOC.Host.Visual;

/// <summary>
/// A 5×8 pixel font (7 rows above the baseline, one for descenders) of the ASCII letters, digits and the punctuation the pictures use, drawn at an
/// integer scale, so that pictures carry their legends and captions without font files. Each glyph
/// is 40 bits: 8 rows of 5, the top row and the leftmost pixel first.
/// </summary>
public static class BitmapFont
{
    public const int Width = 5, Height = 8;

    static readonly Dictionary<char, long> Glyphs = new()
    {
        ['A'] = 0x7463F8C620,
        ['B'] = 0xF463E8C7C0,
        ['C'] = 0x74610845C0,
        ['D'] = 0xF46318C7C0,
        ['E'] = 0xFC21E843E0,
        ['F'] = 0xFC21E84200,
        ['G'] = 0x746178C5E0,
        ['H'] = 0x8C63F8C620,
        ['I'] = 0x71084211C0,
        ['J'] = 0x3884214980,
        ['K'] = 0x8CA98A4A20,
        ['L'] = 0x84210843E0,
        ['M'] = 0x8EEB58C620,
        ['N'] = 0x8E6B38C620,
        ['O'] = 0x746318C5C0,
        ['P'] = 0xF463E84200,
        ['Q'] = 0x74631AC9A0,
        ['R'] = 0xF463EA4A20,
        ['S'] = 0x7C20E087C0,
        ['T'] = 0xF908421080,
        ['U'] = 0x8C6318C5C0,
        ['V'] = 0x8C6318A880,
        ['W'] = 0x8C635AD540,
        ['X'] = 0x8C54454620,
        ['Y'] = 0x8C54421080,
        ['Z'] = 0xF8444443E0,
        ['a'] = 0x001C17C5E0,
        ['b'] = 0x842D98C7C0,
        ['c'] = 0x001D0845C0,
        ['d'] = 0x085B38C5E0,
        ['e'] = 0x001D1FC1C0,
        ['f'] = 0x3251C42100,
        ['g'] = 0x001F18BC2E,
        ['h'] = 0x842D98C620,
        ['i'] = 0x20184211C0,
        ['j'] = 0x100C210A4C,
        ['k'] = 0x84254C5240,
        ['l'] = 0x61084211C0,
        ['m'] = 0x00355AC620,
        ['n'] = 0x002D98C620,
        ['o'] = 0x001D18C5C0,
        ['p'] = 0x003D18FA10,
        ['q'] = 0x001F18BC21,
        ['r'] = 0x002D984200,
        ['s'] = 0x001D0707C0,
        ['t'] = 0x42388424C0,
        ['u'] = 0x002318CDA0,
        ['v'] = 0x002318A880,
        ['w'] = 0x00231AD540,
        ['x'] = 0x0022A22A20,
        ['y'] = 0x002318BC2E,
        ['z'] = 0x003E2223E0,
        ['0'] = 0x74675CC5C0,
        ['1'] = 0x23084211C0,
        ['2'] = 0x74422223E0,
        ['3'] = 0xF88820C5C0,
        ['4'] = 0x11952F8840,
        ['5'] = 0xFC3C10C5C0,
        ['6'] = 0x3221E8C5C0,
        ['7'] = 0xF844442100,
        ['8'] = 0x7462E8C5C0,
        ['9'] = 0x7462F08980,
        ['.'] = 0x0000003180,
        [','] = 0x0000061100,
        [':'] = 0x0318063000,
        [';'] = 0x0318061100,
        ['-'] = 0x0001F00000,
        ['+'] = 0x0109F21000,
        ['('] = 0x1110841040,
        [')'] = 0x4104211100,
        ['/'] = 0x0044444000,
        ['%'] = 0xC644444C60,
        ['='] = 0x003E0F8000,
        ['\''] = 0x2110000000,
        ['_'] = 0x00000003E0,
        ['?'] = 0x7442220080,
        ['['] = 0x72108421C0,
        [']'] = 0x70842109C0,
        ['<'] = 0x1111041040,
        ['>'] = 0x4104111100,
        ['*'] = 0x012AEA9000,
        ['|'] = 0x2108421080,
        ['±'] = 0x213E4203E0,
        ['#'] = 0x52BEAFA940,
        ['!'] = 0x2108420080,
        ['×'] = 0x0454454400,
        ['→'] = 0x0105F11000,
        ['²'] = 0x64888F0000
    };

    /// <summary>Width in pixels of <paramref name="text"/> at <paramref name="scale"/> (one blank column between glyphs).</summary>
    public static int Measure(string text, int scale) => text.Length == 0 ? 0 : (text.Length * (Width + 1) - 1) * scale;

    /// <summary>Draws <paramref name="text"/> with its top-left corner at (x, y); unknown characters are left blank.</summary>
    public static void Draw(Image<Rgb24> image, string text, int x, int y, int scale, Rgb24 colour)
    {
        foreach (char c in text)
        {
            if (Glyphs.TryGetValue(c, out long bits))
                for (int row = 0; row < Height; row++)
                    for (int column = 0; column < Width; column++)
                        if ((bits >> ((Height - 1 - row) * Width + (Width - 1 - column)) & 1) != 0)
                            Fill(image, x + column * scale, y + row * scale, scale, scale, colour);
            x += (Width + 1) * scale;
        }
    }

    /// <summary>Fills a rectangle, clipped to the image.</summary>
    public static void Fill(Image<Rgb24> image, int x, int y, int width, int height, Rgb24 colour)
    {
        for (int yy = System.Math.Max(0, y); yy < System.Math.Min(image.Height, y + height); yy++)
            for (int xx = System.Math.Max(0, x); xx < System.Math.Min(image.Width, x + width); xx++)
                image[xx, yy] = colour;
    }
}
