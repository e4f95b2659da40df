using SixLabors.ImageSharp;
using SixLabors.ImageSharp.Formats.Png;

namespace CrOC.Data;

/// <summary>The "Software: croc-host" text chunk of the PNGs croc-host draws or predicts, so that a
/// rerun recognises its own earlier output and replaces no other PNG.</summary>
public static class PictureMark
{
    const string Keyword = "Software", Maker = "croc-host";

    /// <summary>Marks <paramref name="picture"/> (before it is saved as PNG).</summary>
    public static void Add(Image picture) => picture.Metadata.GetPngMetadata().TextData.Add(new PngTextData(Keyword, Maker, "", ""));

    /// <summary>Whether <paramref name="path"/> is a PNG that carries the mark; a file that cannot be read
    /// as one (damaged, cut short, unreadable) does not, and is kept.</summary>
    public static bool IsOn(string path)
    {
        using var stream = RegularFile.Open(path); // not a FIFO, which would block
        if (stream is null) return false;
        try { return ExpansionBombs.Why(stream) is null && Image.Identify(stream)?.Metadata.GetPngMetadata().TextData.Any(t => t.Keyword == Keyword && t.Value == Maker) == true; }
        catch (Exception e) when (ImageDecoder.IsMalformedInput(e)) { return false; }
    }
}
