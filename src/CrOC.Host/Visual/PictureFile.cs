using CrOC.Data;
using CrOC.Host.Weights;
using SixLabors.ImageSharp;

namespace CrOC.Host.Visual;

/// <summary>The PNG pictures croc-host draws: written whole or not at all, and marked
/// (<see cref="PictureMark"/>), so that a rerun recognises its own earlier picture and replaces no
/// other PNG (<see cref="CommandLine.OutputPaths.Replaceable"/>).</summary>
public static class PictureFile
{
    public static void Write(Image picture, string path) => WriteTogether([(picture, path)]);

    /// <summary>Pictures that belong together (a picture and its attention maps): all are replaced, or none.</summary>
    public static void WriteTogether(IReadOnlyList<(Image Picture, string Path)> pictures)
    {
        foreach (var (picture, _) in pictures) PictureMark.Add(picture);
        AtomicFile.WriteTogether([.. pictures.Select(p => new AtomicFile.Content(p.Path, s => p.Picture.SaveAsPng(s)))],
            replaceOnlyIf: PictureMark.IsOn); // a PNG put there meanwhile is kept
    }
}
