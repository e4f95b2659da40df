using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;

namespace CrOC.Data;

/// <summary>One row of interleaved 8-bit RGB (r g b r g b …) to three float32 planes scaled to
/// [0, 1]: value · (1/255), the same float for every byte as the scalar loop gives.</summary>
static class InterleavedRows
{
    const float Scale = 1f / 255f;

    // Byte shuffles taking the red, green or blue bytes of 4 pixels (12 bytes) into the low byte of
    // four 32-bit lanes (indices ≥ 16 give 0).
    static readonly Vector128<byte> Reds = Vector128.Create((byte)0, 255, 255, 255, 3, 255, 255, 255, 6, 255, 255, 255, 9, 255, 255, 255);
    static readonly Vector128<byte> Greens = Vector128.Create((byte)1, 255, 255, 255, 4, 255, 255, 255, 7, 255, 255, 255, 10, 255, 255, 255);
    static readonly Vector128<byte> Blues = Vector128.Create((byte)2, 255, 255, 255, 5, 255, 255, 255, 8, 255, 255, 255, 11, 255, 255, 255);

    public static void ToPlanes(ReadOnlySpan<byte> row, Span<float> red, Span<float> green, Span<float> blue)
    {
        int n = red.Length, x = 0;
        if (row.Length < 3 * n || green.Length != n || blue.Length != n) throw new ArgumentException("a row of 3 bytes per pixel and three planes of its width");
        ref byte source = ref MemoryMarshal.GetReference(row);
        if (Vector128.IsHardwareAccelerated)
            for (; x + 6 <= n; x += 4) // 16 bytes read from 3·x: in bounds while x + 6 ≤ n (then 3·x + 16 ≤ 3·n − 2)
            {
                var bytes = Vector128.LoadUnsafe(ref source, (nuint)(3 * x));
                Plane(bytes, Reds).StoreUnsafe(ref MemoryMarshal.GetReference(red), (nuint)x);
                Plane(bytes, Greens).StoreUnsafe(ref MemoryMarshal.GetReference(green), (nuint)x);
                Plane(bytes, Blues).StoreUnsafe(ref MemoryMarshal.GetReference(blue), (nuint)x);
            }
        for (; x < n; x++)
        {
            red[x] = row[3 * x] * Scale;
            green[x] = row[3 * x + 1] * Scale;
            blue[x] = row[3 * x + 2] * Scale;
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static Vector128<float> Plane(Vector128<byte> bytes, Vector128<byte> shuffle) =>
        Vector128.ConvertToSingle(Vector128.Shuffle(bytes, shuffle).AsInt32()) * Scale;
}
