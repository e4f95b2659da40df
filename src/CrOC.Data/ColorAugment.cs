using System.Buffers;

namespace CrOC.Data;

/// <summary>
/// The photometric augmentations of DINO/CrOC (spec §9) on [0, 1] images, in place:
/// colour jitter (brightness, contrast, saturation, hue in random order), grayscale, Gaussian
/// blur, solarisation, and the final normalisation.
/// </summary>
public static class ColorAugment
{
    /// <summary>ImageNet mean and std (spec §9).</summary>
    public static readonly float[] Mean = [0.485f, 0.456f, 0.406f];
    public static readonly float[] Std = [0.229f, 0.224f, 0.225f];

    static float Luma(float r, float g, float b) => 0.299f * r + 0.587f * g + 0.114f * b;

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

    public static void Brightness(RgbImage image, float factor)
    {
        var p = image.Pixels;
        for (int i = 0; i < p.Length; i++) p[i] = System.Math.Clamp(p[i] * factor, 0f, 1f);
    }

    /// <summary>Blend with the mean luma: mean + f·(x − mean).</summary>
    public static void Contrast(RgbImage image, float factor)
    {
        var p = image.Pixels;
        int n = image.Plane;
        double sum = 0;
        for (int i = 0; i < n; i++) sum += Luma(p[i], p[n + i], p[2 * n + i]);
        float mean = (float)(sum / n);
        for (int i = 0; i < p.Length; i++) p[i] = System.Math.Clamp(mean + factor * (p[i] - mean), 0f, 1f);
    }

    /// <summary>Blend with the per-pixel luma: gray + f·(x − gray).</summary>
    public static void Saturation(RgbImage image, float factor)
    {
        var p = image.Pixels;
        int n = image.Plane;
        for (int i = 0; i < n; i++)
        {
            float gray = Luma(p[i], p[n + i], p[2 * n + i]);
            for (int c = 0; c < 3; c++) p[c * n + i] = System.Math.Clamp(gray + factor * (p[c * n + i] - gray), 0f, 1f);
        }
    }

    /// <summary>Rotates the hue by <paramref name="shift"/> turns (HSV).</summary>
    public static void Hue(RgbImage image, float shift)
    {
        var p = image.Pixels;
        int n = image.Plane;
        for (int i = 0; i < n; i++)
        {
            float r = p[i], g = p[n + i], b = p[2 * n + i];
            float max = System.Math.Max(r, System.Math.Max(g, b)), min = System.Math.Min(r, System.Math.Min(g, b));
            float delta = max - min;
            if (delta <= 0) continue; // gray: hue undefined, unchanged
            float h = max == r ? (g - b) / delta : max == g ? 2f + (b - r) / delta : 4f + (r - g) / delta;
            h = h / 6f + shift;
            h -= MathF.Floor(h);
            float s = delta / max, v = max;
            float sector = h * 6f;
            int k = (int)sector % 6;
            float f = sector - MathF.Floor(sector);
            float pp = v * (1 - s), q = v * (1 - s * f), t = v * (1 - s * (1 - f));
            (r, g, b) = k switch { 0 => (v, t, pp), 1 => (q, v, pp), 2 => (pp, v, t), 3 => (pp, q, v), 4 => (t, pp, v), _ => (v, pp, q) };
            p[i] = r; p[n + i] = g; p[2 * n + i] = b;
        }
    }

    /// <summary>Grayscale with three equal channels (torchvision's RandomGrayscale).</summary>
    public static void Grayscale(RgbImage image)
    {
        var p = image.Pixels;
        int n = image.Plane;
        for (int i = 0; i < n; i++)
        {
            float gray = Luma(p[i], p[n + i], p[2 * n + i]);
            p[i] = p[n + i] = p[2 * n + i] = gray;
        }
    }

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
    public static void Solarize(RgbImage image)
    {
        var p = image.Pixels;
        const float threshold = 128f / 255f;
        for (int i = 0; i < p.Length; i++) if (p[i] >= threshold) p[i] = 1f - p[i];
    }

    /// <summary>(x − mean) / std per channel.</summary>
    public static void Normalize(RgbImage image)
    {
        var p = image.Pixels;
        int n = image.Plane;
        for (int c = 0; c < 3; c++)
            for (int i = c * n; i < (c + 1) * n; i++) p[i] = (p[i] - Mean[c]) / Std[c];
    }

    /// <summary>Mirrors the image left-right.</summary>
    public static void FlipHorizontal(RgbImage image)
    {
        int w = image.Width;
        var p = image.Pixels;
        for (int row = 0; row < 3 * image.Height; row++)
            Array.Reverse(p, row * w, w);
    }
}
