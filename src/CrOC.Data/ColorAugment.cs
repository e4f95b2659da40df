using System.Buffers;

namespace CrOC.Data;

/// <summary>
/// The photometric augmentations of DINO/CrOC (spec §9) on [0, 1] images, in place:
/// colour jitter (brightness, contrast, saturation, hue in random order), grayscale, Gaussian
/// blur, solarisation, and the final normalisation. The per-pixel operations run on whole vectors
/// (<see cref="PixelVectors"/>, <see cref="PixelOperations"/>) with the arithmetic of the scalar
/// formulas, so their results are the same bit for bit.
/// </summary>
public static class ColorAugment
{
    /// <summary>ImageNet mean and std (spec §9).</summary>
    public static readonly float[] Mean = [0.485f, 0.456f, 0.406f];
    public static readonly float[] Std = [0.229f, 0.224f, 0.225f];

    /// <summary>torchvision's ColorJitter(b, c, s, h): factors b ~ U(1−b, 1+b) etc., hue shift
    /// ~ U(−h, h), applied in a random order.</summary>
    public static void Jitter(RgbImage image, SampleRandom random, double brightness, double contrast, double saturation, double hue)
    {
        var order = random.Permutation(4);
        double fb = random.Uniform(System.Math.Max(0, 1 - brightness), 1 + brightness);
        double fc = random.Uniform(System.Math.Max(0, 1 - contrast), 1 + contrast);
        double fs = random.Uniform(System.Math.Max(0, 1 - saturation), 1 + saturation);
        double fh = random.Uniform(-hue, hue);
        foreach (var op in order)
        {
            switch (op)
            {
                case 0: Brightness(image, (float)fb); break;
                case 1: Contrast(image, (float)fc); break;
                case 2: Saturation(image, (float)fs); break;
                default: Hue(image, (float)fh); break;
            }
        }
    }

    /// <summary>clamp(f·x, 0, 1).</summary>
    public static void Brightness(RgbImage image, float factor) => PixelVectors.Apply(image, new Scale(factor));

    /// <summary>Blend with the mean luma: clamp(mean + f·(x − mean), 0, 1); the mean is summed in
    /// float64 in pixel order.</summary>
    public static void Contrast(RgbImage image, float factor)
    {
        var sum = new LumaSum();
        PixelVectors.Apply(image, ref sum);
        PixelVectors.Apply(image, new BlendWithConstant((float)(sum.Total / image.Plane), factor));
    }

    /// <summary>Blend with the per-pixel luma: clamp(gray + f·(x − gray), 0, 1).</summary>
    public static void Saturation(RgbImage image, float factor) => PixelVectors.Apply(image, new BlendWithLuma(factor));

    /// <summary>Rotates the hue by <paramref name="shift"/> turns (HSV); grays stay unchanged.</summary>
    public static void Hue(RgbImage image, float shift) => PixelVectors.Apply(image, new HueRotation(shift));

    /// <summary>Grayscale with three equal channels (torchvision's RandomGrayscale).</summary>
    public static void Grayscale(RgbImage image) => PixelVectors.Apply(image, new ToLuma());

    /// <summary>Gaussian blur with standard deviation <paramref name="sigma"/> pixels (PIL's
    /// GaussianBlur(radius=σ)), separable, edges clamped. Both passes run along rows (vectorised;
    /// the horizontal one over an edge-extended copy of the row): each output sums its taps in
    /// kernel order, as the scalar loop does.</summary>
    public static void GaussianBlur(RgbImage image, double sigma)
    {
        int radius = System.Math.Max(1, (int)System.Math.Ceiling(3 * sigma));
        var kernel = new float[2 * radius + 1];
        double total = 0;
        for (int i = -radius; i <= radius; i++) total += kernel[i + radius] = (float)System.Math.Exp(-0.5 * i * i / (sigma * sigma));
        for (int i = 0; i < kernel.Length; i++) kernel[i] /= (float)total;
        var sourceArray = ArrayPool<float>.Shared.Rent(image.Plane); // a large temporary: pooled
        try { Blur(image, kernel, sourceArray.AsSpan(0, image.Plane)); }
        finally { ArrayPool<float>.Shared.Return(sourceArray); }
    }

    /// <summary>The two passes of <see cref="GaussianBlur"/> with an odd-length kernel; <paramref name="source"/>
    /// is scratch of one plane.</summary>
    static void Blur(RgbImage image, float[] kernel, Span<float> source)
    {
        int w = image.Width, h = image.Height, radius = kernel.Length / 2;
        var extended = new float[w + 2 * radius];
        var taps = Enumerable.Range(0, kernel.Length).ToArray(); // the horizontal pass's offsets in `extended`
        var rows = new int[kernel.Length];
        for (int c = 0; c < 3; c++)
        {
            var plane = image.Pixels.AsSpan(c * image.Plane, image.Plane);
            for (int y = 0; y < h; y++)
            {
                var row = plane.Slice(y * w, w);
                extended.AsSpan(0, radius).Fill(row[0]);
                row.CopyTo(extended.AsSpan(radius));
                extended.AsSpan(radius + w).Fill(row[w - 1]);
                WeightedRows.Sum(row, extended, taps, kernel);
            }
            plane.CopyTo(source);
            for (int y = 0; y < h; y++)
            {
                for (int k = -radius; k <= radius; k++) rows[k + radius] = System.Math.Clamp(y + k, 0, h - 1) * w;
                WeightedRows.Sum(plane.Slice(y * w, w), source, rows, kernel);
            }
        }
    }

    /// <summary>PIL's solarize(threshold 128): values ≥ 128/255 are inverted.</summary>
    public static void Solarize(RgbImage image) => PixelVectors.Apply(image, new SolarizeAbove());

    /// <summary>(x − mean) / std per channel (<see cref="Mean"/>, <see cref="Std"/>).</summary>
    public static void Normalize(RgbImage image) => PixelVectors.Apply(image, new Standardize());

    /// <summary>Mirrors the image left-right.</summary>
    public static void FlipHorizontal(RgbImage image)
    {
        int w = image.Width;
        var p = image.Pixels;
        for (int row = 0; row < 3 * image.Height; row++)
            Array.Reverse(p, row * w, w);
    }
}
