using CrOC.Host.CommandLine;
using CrOC.Math;

namespace CrOC.Host.Runtime;

/// <summary>
/// Refuses, before any work, a ViT pass whose attention scores cannot fit in this machine's memory
/// (a large --size with a small --patch: the scores grow with the fourth power of size / patch), which
/// would otherwise swap or allocate for minutes without a word. The estimate is a lower bound: the
/// float32 scores and their softmax, B × heads × N² each, for one block at inference and for every
/// block under training (the backward keeps them).
/// </summary>
public static class MemoryFit
{
    /// <summary>Bytes of the attention scores and softmax of <paramref name="images"/> images.</summary>
    public static double AttentionBytes(Vit.VitConfig vit, long images, bool training) =>
        2.0 * 4 * images * vit.Heads * System.Math.Pow(vit.Tokens + 1, 2) * (training ? vit.Depth : 1);

    /// <summary>Throws <see cref="OptionException"/> (exit 2) when <see cref="AttentionBytes"/> exceeds
    /// <paramref name="available"/> bytes (this machine's memory by default); <paramref name="options"/>
    /// names what sets the size ("--size 4096 with --patch 1").</summary>
    public static void Check(Vit.VitConfig vit, long images, bool training, string options, long? available = null)
    {
        long memory = available ?? GC.GetGCMemoryInfo().TotalAvailableMemoryBytes;
        double need = AttentionBytes(vit, images, training);
        if (need > memory)
            throw new OptionException($"{options} gives {vit.Tokens + 1:N0} tokens per image: the attention scores of {images} image(s) alone need {Size(need)}, more than this machine's {Size(memory)}; use a smaller size, a larger patch or a smaller batch");
    }

    static string Size(double bytes) =>
        bytes >= 1L << 50 ? $"{bytes / (1L << 50):F1} PiB" : bytes >= 1L << 40 ? $"{bytes / (1L << 40):F1} TiB" : $"{bytes / (1L << 30):F1} GiB";
}
