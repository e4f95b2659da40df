using SixLabors.ImageSharp;
using SixLabors.ImageSharp.Formats.Jpeg;
using SixLabors.ImageSharp.PixelFormats;

namespace CrOC.Data;

/// <summary>
/// Procedural scenes, the embedded dataset: several objects of six classes, each with its own
/// shape, colour and texture (jittered per instance), on a textured background, with the
/// per-pixel class mask (0 = background). Deterministic from (seed, index).
/// </summary>
public static class SyntheticScenes
{
    public static readonly string[] ClassNames = ["background", "disc", "square", "triangle", "ring", "cross", "ellipse"];

    /// <summary>Base colours (RGB in [0, 1]) of the object classes 1..6.</summary>
    static readonly float[][] BaseColors =
    [
        [0.85f, 0.20f, 0.15f], [0.20f, 0.70f, 0.25f], [0.20f, 0.30f, 0.85f],
        [0.90f, 0.80f, 0.15f], [0.80f, 0.25f, 0.75f], [0.15f, 0.75f, 0.80f],
    ];

    public sealed record SceneOptions(int Width = 128, int Height = 128, int MinObjects = 2, int MaxObjects = 4);

    public static (RgbImage Image, byte[] Mask) Generate(long seed, int index, SceneOptions? options = null)
    {
        var o = options ?? new SceneOptions();
        var random = new SampleRandom(seed, 0, index, 99);
        var image = new RgbImage(o.Width, o.Height);
        var mask = new byte[o.Width * o.Height];
        Background(image, random);
        int objects = random.Int(o.MinObjects, o.MaxObjects);
        for (int k = 0; k < objects; k++) DrawObject(image, mask, random, random.Int(1, BaseColors.Length));
        return (image, mask);
    }

    /// <summary>A smooth colour field (a few random plane waves) with fine noise, in muted tones.</summary>
    static void Background(RgbImage image, SampleRandom random)
    {
        var waves = Enumerable.Range(0, 3).Select(_ => (Fx: random.Uniform(-0.08, 0.08), Fy: random.Uniform(-0.08, 0.08), Phase: random.Uniform(0, 6.283))).ToArray();
        var tint = Enumerable.Range(0, 3).Select(_ => (float)random.Uniform(0.3, 0.6)).ToArray();
        for (int y = 0; y < image.Height; y++)
            for (int x = 0; x < image.Width; x++)
            {
                double field = waves.Sum(w => System.Math.Sin(w.Fx * x + w.Fy * y + w.Phase)) / 3.0;
                for (int c = 0; c < 3; c++)
                    image[c, y, x] = System.Math.Clamp(tint[c] + 0.15f * (float)field * (c + 1) / 2f + (float)random.Uniform(-0.04, 0.04), 0f, 1f);
            }
    }

    static void DrawObject(RgbImage image, byte[] mask, SampleRandom random, int cls)
    {
        int size = System.Math.Min(image.Width, image.Height);
        double radius = size * random.Uniform(0.12, 0.3);
        double cx = random.Uniform(radius * 0.5, image.Width - radius * 0.5), cy = random.Uniform(radius * 0.5, image.Height - radius * 0.5);
        double angle = random.Uniform(0, System.Math.PI);
        double cos = System.Math.Cos(angle), sin = System.Math.Sin(angle);
        var color = BaseColors[cls - 1].Select(v => System.Math.Clamp(v + (float)random.Uniform(-0.08, 0.08), 0f, 1f)).ToArray();
        float shade = (float)random.Uniform(0.85, 1.1);
        for (int y = 0; y < image.Height; y++)
            for (int x = 0; x < image.Width; x++)
            {
                // Local coordinates in units of the radius, rotated with the object.
                double dx = (x + 0.5 - cx) / radius, dy = (y + 0.5 - cy) / radius;
                double u = cos * dx + sin * dy, v = -sin * dx + cos * dy;
                if (!Inside(cls, u, v)) continue;
                float texture = Texture(cls, u, v, x, y, random);
                for (int c = 0; c < 3; c++) image[c, y, x] = System.Math.Clamp(color[c] * shade * texture, 0f, 1f);
                mask[y * image.Width + x] = (byte)cls;
            }
    }

    static bool Inside(int cls, double u, double v) => cls switch
    {
        1 => u * u + v * v <= 1.0,                                            // disc
        2 => System.Math.Abs(u) <= 0.8 && System.Math.Abs(v) <= 0.8,          // square
        3 => v >= -0.7 && v <= 0.9 && System.Math.Abs(u) <= (0.9 - v) * 0.6, // triangle
        4 => u * u + v * v <= 1.0 && u * u + v * v >= 0.35,                   // ring
        5 => (System.Math.Abs(u) <= 0.3 && System.Math.Abs(v) <= 1.0) || (System.Math.Abs(v) <= 0.3 && System.Math.Abs(u) <= 1.0), // cross
        _ => u * u / 1.0 + v * v / 0.36 <= 1.0,                               // ellipse
    };

    /// <summary>A multiplicative texture per class: radial shading, checkers, stripes, dots, speckle, bands.</summary>
    static float Texture(int cls, double u, double v, int x, int y, SampleRandom random) => cls switch
    {
        1 => (float)(1.0 - 0.35 * (u * u + v * v)),
        2 => ((int)System.Math.Floor(u * 4 + 8) + (int)System.Math.Floor(v * 4 + 8)) % 2 == 0 ? 1.0f : 0.7f,
        3 => System.Math.Sin((u + v) * 12) > 0 ? 1.0f : 0.65f,
        4 => (x / 3 + y / 3) % 2 == 0 ? 1.0f : 0.8f,
        5 => (float)random.Uniform(0.7, 1.0),
        _ => System.Math.Sin(v * 18) > 0 ? 1.0f : 0.7f,
    };

    /// <summary>Writes <paramref name="train"/> + <paramref name="val"/> scenes in the Pascal VOC layout
    /// under <paramref name="root"/>: JPEGImages/scene_NNNNN.jpg, SegmentationClass/scene_NNNNN.png
    /// (VOC palette), ImageSets/Segmentation/{train,val}.txt, and labels.txt (class names).</summary>
    public static void WriteVoc(string root, int train, int val, long seed, SceneOptions? options = null, CancellationToken cancel = default)
    {
        var images = Directory.CreateDirectory(Path.Combine(root, "JPEGImages")).FullName;
        var masks = Directory.CreateDirectory(Path.Combine(root, "SegmentationClass")).FullName;
        var sets = Directory.CreateDirectory(Path.Combine(root, "ImageSets", "Segmentation")).FullName;
        var names = Enumerable.Range(0, train + val).Select(i => $"scene_{i:D5}").ToArray();
        Parallel.For(0, names.Length, new ParallelOptions { MaxDegreeOfParallelism = Environment.ProcessorCount, CancellationToken = cancel }, i =>
        {
            var (image, mask) = Generate(seed, i, options);
            SaveJpeg(image, Path.Combine(images, names[i] + ".jpg"));
            VocSegmentation.SaveMask(mask, image.Width, image.Height, Path.Combine(masks, names[i] + ".png"));
        });
        File.WriteAllLines(Path.Combine(sets, "train.txt"), names.Take(train));
        File.WriteAllLines(Path.Combine(sets, "val.txt"), names.Skip(train));
        File.WriteAllLines(Path.Combine(root, "labels.txt"), ClassNames);
    }

    public static void SaveJpeg(RgbImage image, string path, int quality = 92)
    {
        using var output = new Image<Rgb24>(image.Width, image.Height);
        output.ProcessPixelRows(rows =>
        {
            for (int y = 0; y < rows.Height; y++)
            {
                var row = rows.GetRowSpan(y);
                for (int x = 0; x < row.Length; x++)
                    row[x] = new Rgb24(ToByte(image[0, y, x]), ToByte(image[1, y, x]), ToByte(image[2, y, x]));
            }
        });
        output.SaveAsJpeg(path, new JpegEncoder { Quality = quality });
    }

    static byte ToByte(float v) => (byte)System.Math.Clamp((int)System.Math.Round(v * 255f), 0, 255);
}
