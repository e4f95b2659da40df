using System.Numerics;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace CrOC.Data;

/// <summary>A per-pixel operation on one vector of pixels: the red, green and blue lanes of the
/// same Vector&lt;float&gt;.Count pixels, changed in place.</summary>
interface IPixelOperation
{
    void Apply(ref Vector<float> red, ref Vector<float> green, ref Vector<float> blue);
}

/// <summary>Runs an <see cref="IPixelOperation"/> (a struct: the JIT specialises and inlines it)
/// over every pixel of a planar image, a vector at a time, in pixel order.</summary>
static class PixelVectors
{
    public static void Apply<T>(RgbImage image, T operation) where T : struct, IPixelOperation => Apply(image, ref operation);

    /// <summary>As above, for operations that gather state (read it from <paramref name="operation"/>
    /// afterwards). The last partial vector runs on a zero-padded copy whose padding is discarded.</summary>
    public static void Apply<T>(RgbImage image, ref T operation) where T : struct, IPixelOperation
    {
        int n = image.Plane, width = Vector<float>.Count, i = 0;
        ref float red = ref MemoryMarshal.GetArrayDataReference(image.Pixels);
        ref float green = ref Unsafe.Add(ref red, n);
        ref float blue = ref Unsafe.Add(ref red, 2 * n);
        for (; i <= n - width; i += width) // in bounds: Pixels holds 3·n values
        {
            var (r, g, b) = (Vector.LoadUnsafe(ref red, (nuint)i), Vector.LoadUnsafe(ref green, (nuint)i), Vector.LoadUnsafe(ref blue, (nuint)i));
            operation.Apply(ref r, ref g, ref b);
            r.StoreUnsafe(ref red, (nuint)i);
            g.StoreUnsafe(ref green, (nuint)i);
            b.StoreUnsafe(ref blue, (nuint)i);
        }
        if (i == n) return;
        Span<float> padded = stackalloc float[3 * width];
        padded.Clear();
        var pixels = image.Pixels.AsSpan();
        for (int c = 0; c < 3; c++) pixels.Slice(c * n + i, n - i).CopyTo(padded.Slice(c * width));
        var (pr, pg, pb) = (new Vector<float>(padded), new Vector<float>(padded.Slice(width)), new Vector<float>(padded.Slice(2 * width)));
        operation.Apply(ref pr, ref pg, ref pb);
        pr.CopyTo(padded);
        pg.CopyTo(padded.Slice(width));
        pb.CopyTo(padded.Slice(2 * width));
        for (int c = 0; c < 3; c++) padded.Slice(c * width, n - i).CopyTo(pixels.Slice(c * n + i));
    }
}
