using System.Numerics;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace CrOC.Data;

/// <summary>
/// The inner loop of the separable filters (resampling, blur): each destination row is a weighted
/// sum of source rows, d[x] = Σᵢ wᵢ·s[offsetᵢ + x], vectorised over x with <see cref="Vector{T}"/>
/// and accumulated in registers. Each value sums its terms from 0 in the order of the weights, as
/// the scalar loop does, so the result is the same bit for bit. Also the resampler's transposes.
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
    /// <paramref name="destination"/> (cols × rows): 8 × 8 blocks in AVX registers where the CPU has
    /// AVX, the edges (and every value elsewhere) one by one.</summary>
    public static void Transpose(ReadOnlySpan<float> source, int rows, int cols, Span<float> destination)
    {
        if (source.Length < rows * cols || destination.Length < rows * cols) throw new ArgumentException("buffers smaller than rows × cols");
        ref float s = ref MemoryMarshal.GetReference(source);
        ref float d = ref MemoryMarshal.GetReference(destination);
        int blockRows = Avx.IsSupported ? rows / 8 * 8 : 0, blockCols = Avx.IsSupported ? cols / 8 * 8 : 0;
        for (int r = 0; r < blockRows; r += 8) // in bounds: r + 8 ≤ rows, c + 8 ≤ cols, sizes checked above
            for (int c = 0; c < blockCols; c += 8)
                Transpose8x8(ref Unsafe.Add(ref s, r * cols + c), cols, ref Unsafe.Add(ref d, c * rows + r), rows);
        for (int r = 0; r < rows; r++)
            for (int c = r < blockRows ? blockCols : 0; c < cols; c++)
                Unsafe.Add(ref d, c * rows + r) = Unsafe.Add(ref s, r * cols + c);
    }

    /// <summary>One 8 × 8 block: rows of <paramref name="sourceStride"/> floats from
    /// <paramref name="source"/> become columns from <paramref name="destination"/>.</summary>
    static void Transpose8x8(ref float source, int sourceStride, ref float destination, int destinationStride)
    {
        nuint rowStride = (nuint)sourceStride;
        var (r0, r1, r2, r3) = (Vector256.LoadUnsafe(ref source), Vector256.LoadUnsafe(ref source, rowStride),
            Vector256.LoadUnsafe(ref source, 2 * rowStride), Vector256.LoadUnsafe(ref source, 3 * rowStride));
        var (r4, r5, r6, r7) = (Vector256.LoadUnsafe(ref source, 4 * rowStride), Vector256.LoadUnsafe(ref source, 5 * rowStride),
            Vector256.LoadUnsafe(ref source, 6 * rowStride), Vector256.LoadUnsafe(ref source, 7 * rowStride));
        // rows interleaved in pairs: [a0 b0 a1 b1 | a4 b4 a5 b5] and [a2 b2 a3 b3 | a6 b6 a7 b7]
        var (p0, p1) = (Avx.UnpackLow(r0, r1), Avx.UnpackHigh(r0, r1));
        var (p2, p3) = (Avx.UnpackLow(r2, r3), Avx.UnpackHigh(r2, r3));
        var (p4, p5) = (Avx.UnpackLow(r4, r5), Avx.UnpackHigh(r4, r5));
        var (p6, p7) = (Avx.UnpackLow(r6, r7), Avx.UnpackHigh(r6, r7));
        // pairs of pairs: column j of rows 0–3 in the low half, column j + 4 in the high half
        var (q0, q1, q2, q3) = (Avx.Shuffle(p0, p2, 0x44), Avx.Shuffle(p0, p2, 0xEE), Avx.Shuffle(p1, p3, 0x44), Avx.Shuffle(p1, p3, 0xEE));
        var (q4, q5, q6, q7) = (Avx.Shuffle(p4, p6, 0x44), Avx.Shuffle(p4, p6, 0xEE), Avx.Shuffle(p5, p7, 0x44), Avx.Shuffle(p5, p7, 0xEE));
        nuint columnStride = (nuint)destinationStride;
        Avx.Permute2x128(q0, q4, 0x20).StoreUnsafe(ref destination);
        Avx.Permute2x128(q1, q5, 0x20).StoreUnsafe(ref destination, columnStride);
        Avx.Permute2x128(q2, q6, 0x20).StoreUnsafe(ref destination, 2 * columnStride);
        Avx.Permute2x128(q3, q7, 0x20).StoreUnsafe(ref destination, 3 * columnStride);
        Avx.Permute2x128(q0, q4, 0x31).StoreUnsafe(ref destination, 4 * columnStride);
        Avx.Permute2x128(q1, q5, 0x31).StoreUnsafe(ref destination, 5 * columnStride);
        Avx.Permute2x128(q2, q6, 0x31).StoreUnsafe(ref destination, 6 * columnStride);
        Avx.Permute2x128(q3, q7, 0x31).StoreUnsafe(ref destination, 7 * columnStride);
    }
}
