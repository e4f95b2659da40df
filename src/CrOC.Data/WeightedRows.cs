using System.Numerics;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace CrOC.Data;

/// <summary>
/// The inner loop of the separable filters (resampling, blur): each destination row is a weighted
/// sum of source rows, d[x] = Σᵢ wᵢ·s[offsetᵢ + x], vectorised over x with <see cref="Vector{T}"/>
/// and accumulated in registers. Each value sums its terms from 0 in the order of the weights, as
/// the scalar loop does, so the result is the same bit for bit.
/// </summary>
static class WeightedRows
{
    /// <summary>d[x] = Σᵢ weights[i]·source[offsets[i] + x] for every x of <paramref name="destination"/>.</summary>
    public static void Sum(Span<float> destination, ReadOnlySpan<float> source, ReadOnlySpan<int> offsets, ReadOnlySpan<float> weights)
    {
        int n = destination.Length, taps = weights.Length, width = Vector<float>.Count, x = 0;
        if (offsets.Length != taps) throw new ArgumentException("one offset per weight");
        foreach (var offset in offsets)
            if (offset < 0 || offset + n > source.Length) throw new ArgumentOutOfRangeException(nameof(offsets), "a source row beyond the source");
        ref float s = ref MemoryMarshal.GetReference(source);
        ref float d = ref MemoryMarshal.GetReference(destination);
        for (; x <= n - width; x += width)
        {
            var sum = Vector<float>.Zero;
            for (int i = 0; i < taps; i++) sum += new Vector<float>(weights[i]) * Vector.LoadUnsafe(ref s, (nuint)(offsets[i] + x));
            sum.StoreUnsafe(ref d, (nuint)x);
        }
        for (; x < n; x++)
        {
            float sum = 0;
            for (int i = 0; i < taps; i++) sum += weights[i] * source[offsets[i] + x];
            destination[x] = sum;
        }
    }

    /// <summary>Writes the (rows × cols) row-major <paramref name="source"/> transposed into
    /// <paramref name="destination"/> (cols × rows), in cache-sized tiles.</summary>
    public static void Transpose(ReadOnlySpan<float> source, int rows, int cols, Span<float> destination)
    {
        if (source.Length < rows * cols || destination.Length < rows * cols) throw new ArgumentException("buffers smaller than rows × cols");
        const int tile = 32;
        ref float s = ref MemoryMarshal.GetReference(source);
        ref float d = ref MemoryMarshal.GetReference(destination);
        for (int r0 = 0; r0 < rows; r0 += tile)
            for (int c0 = 0; c0 < cols; c0 += tile)
                for (int r = r0; r < System.Math.Min(r0 + tile, rows); r++)
                    for (int c = c0; c < System.Math.Min(c0 + tile, cols); c++)
                        Unsafe.Add(ref d, c * rows + r) = Unsafe.Add(ref s, r * cols + c); // in bounds: checked above
    }
}
