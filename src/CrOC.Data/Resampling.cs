namespace CrOC.Data;

/// <summary>
/// Bicubic resampling of a box of an image, as PIL's `Image.resize(..., BICUBIC, box)` which
/// torchvision's RandomResizedCrop calls: separable, Keys cubic with a = −0.5, and the kernel
/// widened by the scale when shrinking (antialiasing); results are clipped to [0, 1].
/// </summary>
public static class Resampling
{
    const double Support = 2.0;

    static double Cubic(double x)
    {
        const double a = -0.5;
        x = System.Math.Abs(x);
        if (x < 1.0) return ((a + 2.0) * x - (a + 3.0)) * x * x + 1.0;
        if (x < 2.0) return (((x - 5.0) * x + 8.0) * x - 4.0) * a;
        return 0.0;
    }

    /// <summary>For each output sample: the first input index and its normalised weights.</summary>
    static (int[] Start, float[][] Weights) Coefficients(double boxStart, double boxLength, int inSize, int outSize)
    {
        double scale = boxLength / outSize;
        double filterScale = System.Math.Max(scale, 1.0);
        double support = Support * filterScale;
        var start = new int[outSize];
        var weights = new float[outSize][];
        for (int o = 0; o < outSize; o++)
        {
            double center = boxStart + (o + 0.5) * scale;
            int min = System.Math.Max((int)(center - support + 0.5), 0);
            int max = System.Math.Min((int)(center + support + 0.5), inSize);
            var w = new double[System.Math.Max(max - min, 1)];
            double total = 0;
            for (int i = 0; i < max - min; i++)
            {
                w[i] = Cubic((i + min - center + 0.5) / filterScale);
                total += w[i];
            }
            start[o] = System.Math.Min(min, inSize - 1);
            weights[o] = w.Select(v => (float)(total != 0 ? v / total : 0)).ToArray();
        }
        return (start, weights);
    }

    /// <summary>Resizes the box (left, top, width, height) of <paramref name="image"/> to
    /// <paramref name="outWidth"/> × <paramref name="outHeight"/>.</summary>
    public static RgbImage ResizeBox(RgbImage image, double left, double top, double width, double height, int outWidth, int outHeight)
    {
        var (xs, xw) = Coefficients(left, width, image.Width, outWidth);
        var (ys, yw) = Coefficients(top, height, image.Height, outHeight);
        int rowFirst = ys.Min();
        int rowLast = Enumerable.Range(0, outHeight).Max(o => ys[o] + yw[o].Length - 1);
        int rows = rowLast - rowFirst + 1;
        var horizontal = new float[rows * outWidth];
        var output = new RgbImage(outWidth, outHeight);
        for (int c = 0; c < 3; c++)
        {
            int plane = c * image.Plane;
            for (int r = 0; r < rows; r++)
            {
                int rowAt = plane + (rowFirst + r) * image.Width;
                for (int o = 0; o < outWidth; o++)
                {
                    var w = xw[o];
                    int at = rowAt + xs[o];
                    float sum = 0;
                    for (int i = 0; i < w.Length; i++) sum += w[i] * image.Pixels[at + i];
                    horizontal[r * outWidth + o] = sum;
                }
            }
            int outPlane = c * output.Plane;
            for (int o = 0; o < outHeight; o++)
            {
                var w = yw[o];
                int first = ys[o] - rowFirst;
                for (int x = 0; x < outWidth; x++)
                {
                    float sum = 0;
                    for (int i = 0; i < w.Length; i++) sum += w[i] * horizontal[(first + i) * outWidth + x];
                    output.Pixels[outPlane + o * outWidth + x] = System.Math.Clamp(sum, 0f, 1f);
                }
            }
        }
        return output;
    }
}
