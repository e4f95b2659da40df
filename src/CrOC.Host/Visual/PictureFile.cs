using CrOC.Data;
using CrOC.Host.Weights;
using SixLabors.ImageSharp;

namespace CrOC.Host.Visual;

/// <summary>The PNG pictures croc-host draws: written whole or not at all, and marked
/// (<see cref="PictureMark"/>), so that a rerun recognises its own earlier picture and replaces no
/// other PNG (<see cref="CommandLine.OutputPaths.Replaceable"/>).</summary>
public static class PictureFile
{
    public static void Write(Image picture, string path)
    {
        PictureMark.Add(picture);
        AtomicFile.Write(path, s => picture.SaveAsPng(s), replaceOnlyIf: PictureMark.IsOn); // a PNG put there meanwhile is kept
    }
}
