namespace CrOC.Data;

/// <summary>
/// A small deterministic generator (xoshiro256**, seeded by SplitMix64) for per-sample
/// randomness: the stream of sample <c>index</c> in <c>epoch</c> of run <c>seed</c> is the same
/// whatever the number of workers or the order in which samples are processed.
/// </summary>
public sealed class SampleRandom
{
    ulong s0, s1, s2, s3;

    public SampleRandom(long seed, long epoch, long index, long stream = 0)
    {
        ulong x = Mix((ulong)seed) ^ Mix((ulong)epoch + 0x9E3779B97F4A7C15UL) ^ Mix((ulong)index * 0xBF58476D1CE4E5B9UL + 17) ^ Mix((ulong)stream + 0x94D049BB133111EBUL);
        s0 = SplitMix(ref x); s1 = SplitMix(ref x); s2 = SplitMix(ref x); s3 = SplitMix(ref x);
    }

    static ulong Mix(ulong z)
    {
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
        return z ^ (z >> 31);
    }

    static ulong SplitMix(ref ulong x) => Mix(x += 0x9E3779B97F4A7C15UL);

    public ulong NextUInt64()
    {
        ulong result = RotateLeft(s1 * 5, 7) * 9;
        ulong t = s1 << 17;
        s2 ^= s0; s3 ^= s1; s1 ^= s2; s0 ^= s3; s2 ^= t; s3 = RotateLeft(s3, 45);
        return result;
    }

    static ulong RotateLeft(ulong x, int k) => (x << k) | (x >> (64 - k));

    /// <summary>Uniform in [0, 1).</summary>
    public double NextDouble() => (NextUInt64() >> 11) * (1.0 / (1UL << 53));

    /// <summary>Uniform in [low, high).</summary>
    public double Uniform(double low, double high) => low + (high - low) * NextDouble();

    /// <summary>Uniform integer in [low, high] (both inclusive), as Python's randint.</summary>
    public int Int(int low, int high) => low + (int)(NextUInt64() % (ulong)(high - low + 1));

    public bool Chance(double probability) => probability >= 1.0 || (probability > 0.0 && NextDouble() < probability);

    /// <summary>A random permutation of 0..n−1 (Fisher–Yates).</summary>
    public int[] Permutation(int n)
    {
        var p = Enumerable.Range(0, n).ToArray();
        for (int i = n - 1; i > 0; i--)
        {
            int j = (int)(NextUInt64() % (ulong)(i + 1));
            (p[i], p[j]) = (p[j], p[i]);
        }
        return p;
    }
}
