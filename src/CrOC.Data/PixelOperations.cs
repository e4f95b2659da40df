using System.Numerics;

namespace CrOC.Data;

/// <summary>The vector forms of the colour formulas of <see cref="ColorAugment"/>: each lane does the
/// float32 arithmetic of the scalar formula in the same order (no fused multiply-adds), and clamping
/// selects as Math.Clamp does, so the results equal the scalar ones bit for bit.</summary>
static class PixelOperations
{
    public static Vector<float> Luma(Vector<float> r, Vector<float> g, Vector<float> b) =>
        new Vector<float>(0.299f) * r + new Vector<float>(0.587f) * g + new Vector<float>(0.114f) * b;

    /// <summary>Math.Clamp(x, 0, 1) lane by lane.</summary>
    public static Vector<float> Clamp01(Vector<float> x)
    {
        x = Vector.ConditionalSelect(Vector.LessThan(x, Vector<float>.Zero), Vector<float>.Zero, x);
        return Vector.ConditionalSelect(Vector.GreaterThan(x, Vector<float>.One), Vector<float>.One, x);
    }
}

readonly struct ClampToUnit : IPixelOperation
{
    public void Apply(ref Vector<float> red, ref Vector<float> green, ref Vector<float> blue) =>
        (red, green, blue) = (PixelOperations.Clamp01(red), PixelOperations.Clamp01(green), PixelOperations.Clamp01(blue));
}

readonly struct Scale(float factor) : IPixelOperation
{
    public void Apply(ref Vector<float> red, ref Vector<float> green, ref Vector<float> blue)
    {
        red = PixelOperations.Clamp01(red * factor);
        green = PixelOperations.Clamp01(green * factor);
        blue = PixelOperations.Clamp01(blue * factor);
    }
}

/// <summary>Σ luma in float64, lane after lane (pixel order).</summary>
struct LumaSum : IPixelOperation
{
    public double Total;

    public void Apply(ref Vector<float> red, ref Vector<float> green, ref Vector<float> blue)
    {
        var luma = PixelOperations.Luma(red, green, blue);
        for (int lane = 0; lane < Vector<float>.Count; lane++) Total += luma[lane];
    }
}

readonly struct BlendWithConstant(float constant, float factor) : IPixelOperation
{
    public void Apply(ref Vector<float> red, ref Vector<float> green, ref Vector<float> blue)
    {
        var c = new Vector<float>(constant);
        red = PixelOperations.Clamp01(c + factor * (red - c));
        green = PixelOperations.Clamp01(c + factor * (green - c));
        blue = PixelOperations.Clamp01(c + factor * (blue - c));
    }
}

readonly struct BlendWithLuma(float factor) : IPixelOperation
{
    public void Apply(ref Vector<float> red, ref Vector<float> green, ref Vector<float> blue)
    {
        var gray = PixelOperations.Luma(red, green, blue);
        red = PixelOperations.Clamp01(gray + factor * (red - gray));
        green = PixelOperations.Clamp01(gray + factor * (green - gray));
        blue = PixelOperations.Clamp01(gray + factor * (blue - gray));
    }
}

readonly struct ToLuma : IPixelOperation
{
    public void Apply(ref Vector<float> red, ref Vector<float> green, ref Vector<float> blue) =>
        red = green = blue = PixelOperations.Luma(red, green, blue);
}

readonly struct SolarizeAbove : IPixelOperation
{
    const float Threshold = 128f / 255f;

    static Vector<float> Invert(Vector<float> x) =>
        Vector.ConditionalSelect(Vector.GreaterThanOrEqual(x, new Vector<float>(Threshold)), Vector<float>.One - x, x);

    public void Apply(ref Vector<float> red, ref Vector<float> green, ref Vector<float> blue) =>
        (red, green, blue) = (Invert(red), Invert(green), Invert(blue));
}

readonly struct Standardize : IPixelOperation
{
    public void Apply(ref Vector<float> red, ref Vector<float> green, ref Vector<float> blue)
    {
        var (mean, std) = (ColorAugment.Mean, ColorAugment.Std);
        red = (red - new Vector<float>(mean[0])) / new Vector<float>(std[0]);
        green = (green - new Vector<float>(mean[1])) / new Vector<float>(std[1]);
        blue = (blue - new Vector<float>(mean[2])) / new Vector<float>(std[2]);
    }
}

/// <summary>Hue rotation by <c>shift</c> turns through HSV, branch-free: every lane computes each
/// case and selects; lanes with max = min (grays, hue undefined) keep their values.</summary>
readonly struct HueRotation(float shift) : IPixelOperation
{
    public void Apply(ref Vector<float> red, ref Vector<float> green, ref Vector<float> blue)
    {
        var (r, g, b) = (red, green, blue);
        var max = Vector.Max(r, Vector.Max(g, b));
        var min = Vector.Min(r, Vector.Min(g, b));
        var delta = max - min;
        var (two, four, six, one) = (new Vector<float>(2f), new Vector<float>(4f), new Vector<float>(6f), Vector<float>.One);
        var h = Vector.ConditionalSelect(Vector.Equals(max, r), (g - b) / delta,
                Vector.ConditionalSelect(Vector.Equals(max, g), two + (b - r) / delta, four + (r - g) / delta));
        h = h / six + new Vector<float>(shift);
        h -= Vector.Floor(h);
        var s = delta / max;
        var v = max;
        var sector = h * six;
        var k = Vector.ConvertToInt32(sector); // h ∈ [0, 1]: sector ∈ [0, 6], truncation = (int)
        k = Vector.ConditionalSelect(Vector.Equals(k, new Vector<int>(6)), Vector<int>.Zero, k); // % 6
        var f = sector - Vector.Floor(sector);
        var p = v * (one - s);
        var q = v * (one - s * f);
        var t = v * (one - s * (one - f));
        var keep = Vector.LessThanOrEqual(delta, Vector<float>.Zero);
        red = Vector.ConditionalSelect(keep, r, BySector(k, v, q, p, p, t, v));
        green = Vector.ConditionalSelect(keep, g, BySector(k, t, v, v, q, p, p));
        blue = Vector.ConditionalSelect(keep, b, BySector(k, p, p, t, v, v, q));
    }

    /// <summary>The value for sector k ∈ {0, …, 5} in each lane.</summary>
    static Vector<float> BySector(Vector<int> k, Vector<float> s0, Vector<float> s1, Vector<float> s2, Vector<float> s3, Vector<float> s4, Vector<float> s5)
    {
        var value = s5;
        value = Vector.ConditionalSelect(Vector.Equals(k, new Vector<int>(4)), s4, value);
        value = Vector.ConditionalSelect(Vector.Equals(k, new Vector<int>(3)), s3, value);
        value = Vector.ConditionalSelect(Vector.Equals(k, new Vector<int>(2)), s2, value);
        value = Vector.ConditionalSelect(Vector.Equals(k, new Vector<int>(1)), s1, value);
        return Vector.ConditionalSelect(Vector.Equals(k, Vector<int>.Zero), s0, value);
    }
}
