using CrOC.Host.CommandLine;
using CrOC.Math;

namespace CrOC.Host.Runtime;

/// <summary>
/// Refuses, before any work, a ViT pass on the CPU whose memory cannot fit in this machine's (a large
/// size with a small patch: the tokens grow with the square of size / patch; a large batch), which would
/// otherwise swap, or be killed by the kernel without a word. The activations are an estimate from the
/// peak resident memory measured per token (AMD Zen 4, libtorch 2.10; ViT-Tiny and ViT-Small, 16 to
/// 448 px, batches of 8 to 8192): float32 training holds 28·D float32 values per token in every block
/// (the backward keeps them), bf16 training 17·D; a pass without a graph (inference) 32·D for the one
/// block it runs. Bf16 on the CPU runs attention as two matmuls around a softmax
/// (<c>Vit.attention</c>): the running block holds 10 bytes per attention score (the scores, their
/// softmax, libtorch's float32 rows), and under training every block keeps its bf16 softmax (2 bytes per
/// score); float32's fused kernel never holds all T² of them. The parameters count in float32: once at
/// inference, six times under training (student, teacher, gradients, AdamW's two moments, a bf16 shadow at
/// most). The estimate, with a training step's heads (<see cref="HeadBytes"/>), must fit in three
/// quarters of memory: the process itself (about 0.5 GB) and the rest of the machine need the remainder. (A lower bound of 8·D bf16 values per token, in half of
/// memory, let through passes that held 4 to 7 times it: a bench of 2 × 65,536 images at 16 px was
/// killed for memory once.)
/// </summary>
public static class MemoryFit
{
    /// <summary>The share of this machine's memory a pass's estimate may take (three quarters, as the refusal says).</summary>
    public const double PassShare = 0.75;

    /// <summary>The estimated peak bytes of <paramref name="images"/> images' activations, at
    /// <paramref name="vit"/>'s image size or at <paramref name="size"/> px when given.</summary>
    public static double ActivationBytes(Vit.VitConfig vit, long images, bool training, PrecisionChoice precision, int? size = null)
    {
        bool bf16 = precision == PrecisionChoice.Bf16;
        double tokens = Tokens(vit, size) + 1;
        double valuesPerToken = training ? (bf16 ? 17 : 28) * vit.Depth : 32;
        double scoreBytes = !bf16 ? 0 : training ? 10 + 2 * vit.Depth : 10;
        return images * tokens * (4.0 * valuesPerToken * vit.Dim + scoreBytes * vit.Heads * tokens);
    }

    /// <summary>The bytes of <paramref name="vit"/>'s parameters and what training keeps beside them.</summary>
    public static double ParameterBytes(Vit.VitConfig vit, bool training)
    {
        double count;
        try { count = Vit.parameterCount(vit); }
        catch (OverflowException) { count = double.MaxValue / 64; }
        return 4.0 * count * (training ? 6 : 1);
    }

    /// <summary>An estimate of the bytes of the CrOC heads under training: their parameters six times, as the
    /// backbone's; three more per last-layer weight (student's and teacher's weight-normalised copies, its
    /// gradient); per logit, float32 values measured as the peak memory's growth with the batch (fp32, 16 px,
    /// L or L_c = 10⁶): 17 for each of <paramref name="views"/> image rows (both networks' logits, softmaxes,
    /// the loss's terms and their gradients), 29 for each of <paramref name="objectsPerView"/> object rows per
    /// view (the largest K the clustering may select; 0 when no object loss runs: the cross-view terms hold
    /// more). Seven per logit, counted once, let a 16 px step of --out-dim-c 10⁷ at batch 2 hold about four
    /// times the count; a head of --head-hidden 10⁶ (10¹² weights) passed the backbone's check once and ran
    /// out of memory in its first step.</summary>
    public static double HeadBytes(Heads.HeadConfig head, long views, long objectsPerView)
    {
        double d = head.InDim, h = head.Hidden, b = head.Bottleneck, outputs = (double)head.OutDim + head.OutDimC;
        double lastWeights = (b + 1) * outputs, parameters = d * h + h + h * h + h + h * b + b + lastWeights;
        double imageLogits = views * (double)head.OutDim, objectLogits = views * (double)objectsPerView * head.OutDimC;
        return 4.0 * (6 * parameters + 3 * lastWeights + 17 * imageLogits + 29 * objectLogits);
    }

    /// <summary>The peak bytes of one joint-space clustering of <paramref name="problems"/> problems of 2 ×
    /// <paramref name="tokens"/> keys of width <paramref name="dim"/>, official config: 24·d + 2400 bytes per
    /// token and problem, above measured peak RSS less the process's own ~0.2 GB (Zen 4; 2N 1.25·10⁵–2·10⁶, d 8–256: 2.4–7.7 kB per token).
    /// Counting the keys alone (8·d bytes) let a clustering 15 times their size start, and the kernel end it.</summary>
    public static double ClusteringBytes(long problems, int tokens, int dim) => problems * 2.0 * tokens * (24.0 * dim + 2400);

    /// <summary>Throws <see cref="OptionException"/> (exit 2) when <paramref name="bytes"/>, a lower bound on
    /// what <paramref name="what"/> holds, exceeds <paramref name="share"/> of <paramref name="available"/>
    /// (this machine's memory): half for a bound a computation holds several times, more for sizes known exactly.</summary>
    public static void CheckBytes(double bytes, string what, string remedy, double share = 0.5, long? available = null)
    {
        long memory = available ?? GC.GetGCMemoryInfo().TotalAvailableMemoryBytes;
        if (bytes > memory * share)
            throw new OptionException($"{what} need at least {ByteSize.Describe(bytes)}, more than {(share == 0.5 ? "half" : $"{share:P0}")} of this machine's {ByteSize.Describe(memory)}; {remedy}");
    }

    static long Tokens(Vit.VitConfig vit, int? size) => size is int s ? (long)(s / vit.Patch) * (s / vit.Patch) : vit.Tokens;

    /// <summary>Throws <see cref="OptionException"/> (exit 2) when <see cref="ActivationBytes"/> plus
    /// <see cref="ParameterBytes"/> plus <paramref name="heads"/> exceed <see cref="PassShare"/> of <paramref name="available"/>
    /// bytes (this machine's memory by default) in the resolved <paramref name="precision"/>; <paramref name="options"/>
    /// names what sets the size ("--size 4096 with --patch 1"); <paramref name="size"/>: the input side
    /// when it is not <paramref name="vit"/>'s (a frozen backbone evaluated at another size).</summary>
    /// <paramref name="heads"/>: the bytes of a training step's heads (<see cref="HeadBytes"/>), 0 for a backbone
    /// alone; <paramref name="headOptions"/>: the options that size them, advised when the heads weigh most (null: none the command has).
    public static void Check(Vit.VitConfig vit, long images, bool training, PrecisionChoice precision, string options, long? available = null, int? size = null, double heads = 0, string? headOptions = null)
    {
        long memory = available ?? GC.GetGCMemoryInfo().TotalAvailableMemoryBytes;
        double activations = ActivationBytes(vit, images, training, precision, size), parameters = ParameterBytes(vit, training);
        if (activations + parameters + heads <= memory * PassShare) return;
        var held = heads > 0 ? $"the activations of {images} image(s), the parameters and the heads need about {ByteSize.Describe(activations)} + {ByteSize.Describe(parameters)} + {ByteSize.Describe(heads)}"
            : $"the activations of {images} image(s) and the parameters need about {ByteSize.Describe(activations)} + {ByteSize.Describe(parameters)}";
        var remedy = headOptions is not null && heads >= System.Math.Max(activations, parameters) ? $"use smaller heads ({headOptions}) or a smaller batch" : "use a smaller size, a larger patch or a smaller batch";
        throw new OptionException($"{options} gives {Tokens(vit, size) + 1:N0} tokens per image: {held}, more than three quarters of this machine's {ByteSize.Describe(memory)}; {remedy}");
    }
}
