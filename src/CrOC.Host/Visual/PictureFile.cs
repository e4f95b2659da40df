using CrOC.Host.Weights;
using SixLabors.ImageSharp;
using SixLabors.ImageSharp.Formats.Png;

namespace CrOC.Host.Visual;

/// <summary>The PNG pictures croc-host draws: written whole or not at all, and marked with a
/// "Software: croc-host" text chunk, so that a rerun recognises its own earlier picture and
/// replaces no other PNG (<see cref="CommandLine.OutputPaths.Replaceable"/>).</summary>
public static class PictureFile
{
    const string Keyword = "Software", Maker = "croc-host";

    public static void Write(Image picture, string path)
    {
        picture.Metadata.GetPngMetadata().TextData.Add(new PngTextData(Keyword, Maker, "", ""));
        AtomicFile.Write(path, s => picture.SaveAsPng(s));
    }

    /// <summary>Whether <paramref name="path"/> is a PNG that <see cref="Write"/> made.</summary>
    public static bool IsEarlierPicture(string path)
    {
        try { return Image.Identify(path)?.Metadata.GetPngMetadata().TextData.Any(t => t.Keyword == Keyword && t.Value == Maker) == true; }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or ImageFormatException) { return false; }
    }
}
