using System.Buffers;

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
    /// <remarks>Vertical pass first (rows of the box's columns, vectorised along the row), then the
    /// horizontal pass as a vertical one on the transposed intermediate; every output sums its taps
    /// in order, in float32. PIL filters horizontally first: the two orders differ only by float32
    /// rounding (below 1e-5 on [0, 1] pixels, tested against the horizontal-first loop).</remarks>
    public static RgbImage ResizeBox(RgbImage image, double left, double top, double width, double height, int outWidth, int outHeight)
    {
        var (xs, xw) = Coefficients(left, width, image.Width, outWidth);
        var (ys, yw) = Coefficients(top, height, image.Height, outHeight);
        int colFirst = xs.Min();
        int cols = Enumerable.Range(0, outWidth).Max(o => xs[o] + xw[o].Length) - colFirst;
        var pool = ArrayPool<float>.Shared; // large temporaries: a new one per call costs more than the filtering
        var (verticalArray, transposedArray, horizontalArray) = (pool.Rent(outHeight * cols), pool.Rent(cols * outHeight), pool.Rent(outWidth * outHeight));
        try
        {
            return Filter(image, xs, xw, ys, yw, colFirst, cols, outWidth, outHeight,
                verticalArray.AsSpan(0, outHeight * cols), transposedArray.AsSpan(0, cols * outHeight), horizontalArray.AsSpan(0, outWidth * outHeight));
        }
        finally
        {
            pool.Return(verticalArray);
            pool.Return(transposedArray);
            pool.Return(horizontalArray);
        }
    }

    /// <summary>The two passes, with scratch rows <paramref name="vertical"/> (outHeight × cols),
    /// <paramref name="transposed"/> (cols × outHeight), <paramref name="horizontal"/> (outWidth × outHeight).</summary>
    static RgbImage Filter(RgbImage image, int[] xs, float[][] xw, int[] ys, float[][] yw, int colFirst, int cols, int outWidth, int outHeight,
        Span<float> vertical, Span<float> transposed, Span<float> horizontal)
    {
        var output = new RgbImage(outWidth, outHeight);
        var pixels = image.Pixels.AsSpan();
        var offsets = new int[System.Math.Max(xw.Max(w => w.Length), yw.Max(w => w.Length))];
        for (int c = 0; c < 3; c++)
        {
            var plane = pixels.Slice(c * image.Plane, image.Plane);
            for (int o = 0; o < outHeight; o++)
            {
                for (int i = 0; i < yw[o].Length; i++) offsets[i] = (ys[o] + i) * image.Width + colFirst;
                WeightedRows.Sum(vertical.Slice(o * cols, cols), plane, offsets.AsSpan(0, yw[o].Length), yw[o]);
            }
            WeightedRows.Transpose(vertical, outHeight, cols, transposed);
            for (int o = 0; o < outWidth; o++)
            {
                for (int i = 0; i < xw[o].Length; i++) offsets[i] = (xs[o] - colFirst + i) * outHeight;
                WeightedRows.Sum(horizontal.Slice(o * outHeight, outHeight), transposed, offsets.AsSpan(0, xw[o].Length), xw[o]);
            }
            var outPlane = output.Pixels.AsSpan(c * output.Plane, output.Plane);
            WeightedRows.Transpose(horizontal, outWidth, outHeight, outPlane);
        }
        PixelVectors.Apply(output, new ClampToUnit());
        return output;
    }
}
