namespace CrOC.Data;

/// <summary>
/// torchvision's RandomResizedCrop box sampler, returning the box: area fraction ~ U(scale),
/// log aspect ratio ~ U(log ratio), width/height rounded half-to-even as Python's round, up to 10
/// tries, then a centre crop clamped to the ratio range.
/// </summary>
public static class RandomResizedCrop
{
    public static CropBox Sample(SampleRandom random, int width, int height, (double Low, double High) scale, (double Low, double High) ratio)
    {
        double area = (double)width * height;
        double logLow = System.Math.Log(ratio.Low), logHigh = System.Math.Log(ratio.High);
        for (int attempt = 0; attempt < 10; attempt++)
        {
            double targetArea = area * random.Uniform(scale.Low, scale.High);
            double aspect = System.Math.Exp(random.Uniform(logLow, logHigh));
            int w = (int)System.Math.Round(System.Math.Sqrt(targetArea * aspect), MidpointRounding.ToEven);
            int h = (int)System.Math.Round(System.Math.Sqrt(targetArea / aspect), MidpointRounding.ToEven);
            if (w > 0 && w <= width && h > 0 && h <= height)
            {
                int top = random.Int(0, height - h);
                int left = random.Int(0, width - w);
                return new CropBox(top, left, h, w, false);
            }
        }
        return CentreFallback(width, height, ratio);
    }

    /// <summary>The crop used when 10 tries fail: the whole image, narrowed to the ratio range.</summary>
    public static CropBox CentreFallback(int width, int height, (double Low, double High) ratio)
    {
        double inRatio = (double)width / height;
        int w, h;
        if (inRatio < ratio.Low) { w = width; h = (int)System.Math.Round(w / ratio.Low, MidpointRounding.ToEven); }
        else if (inRatio > ratio.High) { h = height; w = (int)System.Math.Round(h * ratio.High, MidpointRounding.ToEven); }
        else { w = width; h = height; }
        return new CropBox((height - h) / 2, (width - w) / 2, h, w, false);
    }
}
