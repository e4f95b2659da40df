using SixLabors.ImageSharp;
using SixLabors.ImageSharp.Formats;
using SixLabors.ImageSharp.Formats.Png;
using SixLabors.ImageSharp.PixelFormats;
using SixLabors.ImageSharp.Processing.Processors.Quantization;

namespace CrOC.Data;

/// <summary>
/// A segmentation dataset in the Pascal VOC layout: JPEGImages/NAME.jpg,
/// SegmentationClass/NAME.png, ImageSets/Segmentation/SPLIT.txt. A mask PNG holds the class index
/// of each pixel: a palette PNG (PVOC12, the synthetic scenes) as its stored index, whatever
/// colours its table gives (as PIL reads it: two indices of one colour stay two classes); a
/// grayscale PNG (how COCO-Things / COCO-Stuff masks are usually prepared; 1, 2, 4, 8 and 16 bits,
/// with or without alpha) as its stored value; an RGB(A) PNG by its colour in the VOC palette; 255
/// means "ignore". Images are not turned by their EXIF orientation: the
/// masks are drawn on the stored pixel grid, as PIL and torchvision read both.
/// </summary>
public sealed class VocSegmentation
{
    readonly string root;
    readonly ImageDecoder decoder = new() { ApplyOrientation = false }; // masks are drawn on the stored grid

    public IReadOnlyList<string> Names { get; }

    public VocSegmentation(string root, string split)
    {
        this.root = root;
        var list = Path.Combine(root, "ImageSets", "Segmentation", split + ".txt");
        if (!File.Exists(list)) throw new DatasetException($"'{list}' not found: expected a Pascal VOC layout under '{root}'");
        Names = TextList.Lines(list, ImageSources.ListLimit);
        if (Names.Count == 0) throw new DatasetException($"'{list}' lists no images");
        // before any work: a missing file would otherwise surface only when its pass reaches it (after the probe's training, for validation)
        maskPaths = Names.Select(MaskOf).ToArray();
        var missing = Enumerable.Range(0, Names.Count).SelectMany(i => new[] { ImagePath(i), maskPaths[i] }).Where(p => !File.Exists(p)).ToList();
        if (missing.Count > 0)
        {
            var what = Directory.Exists(missing[0]) ? "a folder, not a file" : "file not found"; // a folder was "file not found" once
            throw new DatasetException($"{missing[0]}: {what} ({missing.Count} image or mask file(s) of the {Names.Count} names in '{list}' are missing)");
        }
    }

    public int Count => Names.Count;

    /// <summary>How many of the split's masks come from SegmentationClassAug/ (SBD's), for names SegmentationClass/ lacks.</summary>
    public int AugmentedMasks => maskPaths.Count(p => p.StartsWith(Path.Combine(root, "SegmentationClassAug") + Path.DirectorySeparatorChar, StringComparison.Ordinal));

    public string ImagePath(int i) => Path.Combine(root, "JPEGImages", Names[i] + ".jpg");

    /// <summary>Each name's mask, resolved once when the split is opened (see <see cref="MaskOf"/>).</summary>
    readonly string[] maskPaths;

    public string MaskPath(int i) => maskPaths[i];

    /// <summary>SegmentationClass/NAME.png, or, where it has none, SegmentationClassAug/NAME.png
    /// (SBD's masks for PVOC12's trainaug list, as they are usually unpacked beside VOC's).</summary>
    string MaskOf(string name)
    {
        var mask = Path.Combine(root, "SegmentationClass", name + ".png");
        var augmented = Path.Combine(root, "SegmentationClassAug", name + ".png");
        return !File.Exists(mask) && File.Exists(augmented) ? augmented : mask;
    }

    /// <summary>The image and its mask (row-major class indices, 255 = ignore), of the same size.</summary>
    public (RgbImage Image, byte[] Mask) Load(int i)
    {
        var image = decoder.Decode(ImagePath(i));
        var mask = LoadMask(MaskPath(i), out int width, out int height);
        if (width != image.Width || height != image.Height)
            throw new DatasetException($"{MaskPath(i)}: mask {width}x{height} does not match image {image.Width}x{image.Height}");
        return (image, mask);
    }

    /// <summary>A mask's class indices, row-major. Every failure of the file (missing, truncated, oversized,
    /// an unknown colour) is a <see cref="DatasetException"/> naming it; the process out of descriptors, an <see cref="IOException"/>.</summary>
    public static byte[] LoadMask(string path, out int width, out int height)
    {
        try { return ReadMask(path, out width, out height); }
        catch (DatasetException) { throw; }
        catch (IOException) { throw; } // the process out of descriptors (the decoder's one I/O exception): no fault of the mask's
        catch (Exception e) when (e is not OperationCanceledException)
        {
            var reason = e is DecodeException d ? d.Reason : $"{e.GetType().Name}: {e.Message}";
            throw new DatasetException($"{path}: unreadable mask ({reason})");
        }
    }

    static byte[] ReadMask(string path, out int width, out int height)
    {
        var bytes = Decoder.Read(ImageEntry.File(path)); // sized before it is read
        if (ExpansionBombs.Why(bytes) is { } bomb) throw new DatasetException($"{path}: unreadable mask ({bomb})"); // before Identify expands it
        IImageInfo? info;
        IImageFormat format;
        try { info = Image.Identify(bytes, out format); }
        catch (Exception e) when (ImageDecoder.IsMalformedInput(e) && Decoder.CutShort(bytes) is { } cut) { throw new DatasetException($"{path}: unreadable mask ({cut})"); } // as an image says it
        if (info is not null && format is not PngFormat)
            throw new DatasetException($"{path}: a {format.Name} file, not a PNG: masks are PNGs (a lossy format would change the class indices)");
        var png = info?.Metadata.GetPngMetadata();
        return png?.ColorType switch
        {
            PngColorType.Grayscale or PngColorType.GrayscaleWithAlpha => png.BitDepth is PngBitDepth.Bit16
                ? Gray16(bytes, path, out width, out height) : Gray(bytes, path, png.BitDepth, out width, out height),
            PngColorType.Palette => Indexed(bytes, path, out width, out height),
            _ => Colours(bytes, path, out width, out height),
        };
    }

    /// <summary>The decoder whose limits and settings (first frame only, one thread) masks are read with.</summary>
    static readonly ImageDecoder Decoder = new();

    /// <summary>Gray PNGs of 1, 2, 4 or 8 bits: ImageSharp scales a b-bit value by 255 / (2^b − 1)
    /// on the way to 8 bits; dividing by it gives the stored index back exactly.</summary>
    static byte[] Gray(byte[] bytes, string path, PngBitDepth? depth, out int width, out int height)
    {
        int scale = depth switch { PngBitDepth.Bit1 => 255, PngBitDepth.Bit2 => 85, PngBitDepth.Bit4 => 17, _ => 1 };
        return Pixels<L8>(bytes, path, (p, _, _) => (byte)(p.PackedValue / scale), out width, out height);
    }

    /// <summary>16-bit gray PNGs: the stored value is the index; above 255 it cannot be one.</summary>
    static byte[] Gray16(byte[] bytes, string path, out int width, out int height)
    {
        string? wide = null;
        var mask = Pixels<L16>(bytes, path, (p, x, y) =>
        {
            if (p.PackedValue > byte.MaxValue) wide ??= $"value {p.PackedValue} at ({x}, {y})";
            return (byte)System.Math.Min(p.PackedValue, (ushort)byte.MaxValue);
        }, out width, out height);
        if (wide is not null) throw new DatasetException($"{path}: 16-bit mask {wide} is not a class index (0..254) nor 255 (ignored)");
        return mask;
    }

    /// <summary>Palette PNGs: each pixel's stored index (<see cref="PngIndices"/>), under <see cref="Decoder"/>'s
    /// limits. An index beyond the file's table is refused (a damaged or mislabelled mask), except 255, the
    /// ignore label, which names no class and so needs no colour.</summary>
    static byte[] Indexed(byte[] bytes, string path, out int width, out int height)
    {
        Decoder.Check(bytes, path);
        var (mask, w, h, entries) = PngIndices.Read(bytes, path);
        int outside = Array.FindIndex(mask, i => i >= entries && i != VocPalette.Ignore);
        if (outside >= 0)
            throw new DatasetException($"{path}: the pixel at ({outside % w}, {outside / w}) holds index {mask[outside]}, which has no entry in the file's palette of {entries} entries");
        (width, height) = (w, h);
        return mask;
    }

    /// <summary>RGB(A) PNGs (and anything ImageSharp decodes that is not a PNG of another kind): each
    /// pixel's colour in the VOC palette.</summary>
    static byte[] Colours(byte[] bytes, string path, out int width, out int height)
    {
        string? unknown = null;
        var mask = Pixels<Rgb24>(bytes, path, (p, x, y) =>
        {
            var index = VocPalette.IndexOf(p.R, p.G, p.B);
            if (index is null) unknown ??= $"({p.R}, {p.G}, {p.B}) at ({x}, {y})";
            return index ?? VocPalette.Ignore;
        }, out width, out height);
        if (unknown is not null) throw new DatasetException($"{path}: colour {unknown} is not in the VOC palette (an RGB mask's colours name VOC's classes; a palette or grayscale PNG holds class indices)");
        return mask;
    }

    /// <summary>Row-major labels of the pixels, under <see cref="Decoder"/>'s limits.</summary>
    static byte[] Pixels<TPixel>(byte[] bytes, string path, Func<TPixel, int, int, byte> label, out int width, out int height) where TPixel : unmanaged, IPixel<TPixel>
    {
        using var image = Decoder.Load<TPixel>(bytes, path);
        int w = image.Width;
        var mask = new byte[(long)w * image.Height];
        image.ProcessPixelRows(rows =>
        {
            for (int y = 0; y < rows.Height; y++)
            {
                var row = rows.GetRowSpan(y);
                for (int x = 0; x < row.Length; x++) mask[(long)y * w + x] = label(row[x], x, y);
            }
        });
        (width, height) = (w, image.Height);
        return mask;
    }

    /// <summary>Writes a mask as a VOC-palette PNG (exact colours, no dithering).</summary>
    public static void SaveMask(byte[] mask, int width, int height, string path)
    {
        using var file = File.Create(path);
        SaveMask(mask, width, height, file);
    }

    /// <summary>A mask as a VOC-palette PNG into <paramref name="stream"/>; a prediction is <paramref name="marked"/> (<see cref="PictureMark"/>).</summary>
    public static void SaveMask(byte[] mask, int width, int height, Stream stream, bool marked = false)
    {
        using var image = new Image<Rgb24>(width, height);
        if (marked) PictureMark.Add(image);
        image.ProcessPixelRows(rows =>
        {
            for (int y = 0; y < rows.Height; y++)
            {
                var row = rows.GetRowSpan(y);
                for (int x = 0; x < row.Length; x++)
                {
                    var c = VocPalette.Colors[mask[y * width + x]];
                    row[x] = new Rgb24(c.R, c.G, c.B);
                }
            }
        });
        var palette = VocPalette.Colors.Select(c => Color.FromRgb(c.R, c.G, c.B)).ToArray();
        image.SaveAsPng(stream, new PngEncoder
        {
            ColorType = PngColorType.Palette,
            BitDepth = PngBitDepth.Bit8,
            Quantizer = new PaletteQuantizer(palette, new QuantizerOptions { Dither = null, MaxColors = 256 }),
        });
    }
}
