using SixLabors.ImageSharp;
using SixLabors.ImageSharp.Formats.Png;
using SixLabors.ImageSharp.PixelFormats;
using SixLabors.ImageSharp.Processing.Processors.Quantization;

namespace CrOC.Data;

/// <summary>
/// A segmentation dataset in the Pascal VOC layout: JPEGImages/NAME.jpg,
/// SegmentationClass/NAME.png, ImageSets/Segmentation/SPLIT.txt. Masks are VOC-palette PNGs
/// (PVOC12, the synthetic scenes) or 8-bit grayscale PNGs holding the class index (how
/// COCO-Things / COCO-Stuff masks are usually prepared); 255 means "ignore".
/// </summary>
public sealed class VocSegmentation
{
    readonly string root;
    readonly ImageDecoder decoder = new();

    public IReadOnlyList<string> Names { get; }

    public VocSegmentation(string root, string split)
    {
        this.root = root;
        var list = Path.Combine(root, "ImageSets", "Segmentation", split + ".txt");
        if (!File.Exists(list)) throw new DatasetException($"'{list}' not found: expected a Pascal VOC layout under '{root}'");
        Names = File.ReadLines(list).Select(l => l.Trim()).Where(l => l.Length > 0).ToList();
        if (Names.Count == 0) throw new DatasetException($"'{list}' lists no images");
    }

    public int Count => Names.Count;

    public string ImagePath(int i) => Path.Combine(root, "JPEGImages", Names[i] + ".jpg");
    public string MaskPath(int i) => Path.Combine(root, "SegmentationClass", Names[i] + ".png");

    /// <summary>The image and its mask (row-major class indices, 255 = ignore), of the same size.</summary>
    public (RgbImage Image, byte[] Mask) Load(int i)
    {
        var image = decoder.Decode(ImagePath(i));
        var mask = LoadMask(MaskPath(i), out int width, out int height);
        if (width != image.Width || height != image.Height)
            throw new DatasetException($"{MaskPath(i)}: mask {width}x{height} does not match image {image.Width}x{image.Height}");
        return (image, mask);
    }

    public static byte[] LoadMask(string path, out int width, out int height)
    {
        var info = Image.Identify(path) ?? throw new DatasetException($"{path}: not an image");
        bool gray = info.Metadata.GetPngMetadata().ColorType is PngColorType.Grayscale;
        using var image = Image.Load<Rgb24>(path);
        int w = image.Width, h = image.Height;
        var mask = new byte[w * h];
        string? unknown = null;
        image.ProcessPixelRows(rows =>
        {
            for (int y = 0; y < rows.Height; y++)
            {
                var row = rows.GetRowSpan(y);
                for (int x = 0; x < row.Length; x++)
                {
                    var p = row[x];
                    if (gray) { mask[y * w + x] = p.R; continue; }
                    var index = VocPalette.IndexOf(p.R, p.G, p.B);
                    if (index is null) unknown ??= $"({p.R}, {p.G}, {p.B}) at ({x}, {y})";
                    mask[y * w + x] = index ?? VocPalette.Ignore;
                }
            }
        });
        if (unknown is not null) throw new DatasetException($"{path}: colour {unknown} is not in the VOC palette");
        (width, height) = (w, h);
        return mask;
    }

    /// <summary>Writes a mask as a VOC-palette PNG (exact colours, no dithering).</summary>
    public static void SaveMask(byte[] mask, int width, int height, string path)
    {
        using var image = new Image<Rgb24>(width, height);
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
        image.SaveAsPng(path, new PngEncoder
        {
            ColorType = PngColorType.Palette,
            BitDepth = PngBitDepth.Bit8,
            Quantizer = new PaletteQuantizer(palette, new QuantizerOptions { Dither = null, MaxColors = 256 }),
        });
    }
}
