using CrOC.Host.CommandLine;
using CrOC.Math;

namespace CrOC.Host.Runtime;

/// <summary>
/// Refuses, before any work, a ViT pass on the CPU whose activations cannot fit in this machine's
/// memory (a large size with a small patch: the tokens grow with the square of size / patch), which
/// would otherwise swap or allocate for minutes without a word. The estimate is a lower bound, in
/// bf16's 2 bytes per value whatever the precision: per token and block the q, k, v, attention
/// output and MLP hidden values (8·D) for one block at inference, for every block under training
/// (the backward keeps them). Attention scores count in bf16 only, which runs attention as two
/// matmuls around a softmax (<c>Vit.attention</c>): the scores and their softmax of one block, and
/// under training every block's softmax; float32's fused kernel never holds all T² of them. The
/// parameters count too, in float32: once at inference, six times under training (student, teacher,
/// gradients, AdamW's two moments, a bf16 shadow at most). A step holds several times this bound
/// (a run at half of memory by it was killed for memory once), so the bound must fit in half.
/// </summary>
public static class MemoryFit
{
    /// <summary>The lower bound on the bytes of <paramref name="images"/> images' activations, at
    /// <paramref name="vit"/>'s image size or at <paramref name="size"/> px when given.</summary>
    public static double ActivationBytes(Vit.VitConfig vit, long images, bool training, PrecisionChoice precision, int? size = null)
    {
        double tokens = Tokens(vit, size) + 1;
        double scores = precision == PrecisionChoice.Bf16 ? 2.0 * images * vit.Heads * tokens * tokens * (training ? vit.Depth + 1 : 2) : 0;
        return 2.0 * images * tokens * 8 * vit.Dim * (training ? vit.Depth : 1) + scores;
    }

    /// <summary>The bytes of <paramref name="vit"/>'s parameters and what training keeps beside them.</summary>
    public static double ParameterBytes(Vit.VitConfig vit, bool training)
    {
        double count;
        try { count = Vit.parameterCount(vit); }
        catch (OverflowException) { count = double.MaxValue / 64; }
        return 4.0 * count * (training ? 6 : 1);
    }

    /// <summary>A lower bound on the bytes of the CrOC heads under training: their parameters six times, as the
    /// backbone's; three more per last-layer weight (student's and teacher's weight-normalised copies, its
    /// gradient); seven per logit (both networks' logits, the teacher's softmax, the student's log-softmax,
    /// the loss's product and two gradients) for <paramref name="views"/> image rows and
    /// <paramref name="objectsPerView"/> object rows per view (the largest K the clustering may select; 0 when
    /// no object loss runs). A head of --head-hidden 10⁶ (10¹² weights) passed the backbone's check once and
    /// ran out of memory in its first step.</summary>
    public static double HeadBytes(Heads.HeadConfig head, long views, long objectsPerView)
    {
        double d = head.InDim, h = head.Hidden, b = head.Bottleneck, outputs = (double)head.OutDim + head.OutDimC;
        double lastWeights = (b + 1) * outputs, parameters = d * h + h + h * h + h + h * b + b + lastWeights;
        double logits = views * (double)head.OutDim + views * (double)objectsPerView * head.OutDimC;
        return 4.0 * (6 * parameters + 3 * lastWeights + 7 * logits);
    }

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
    /// <see cref="ParameterBytes"/> exceed half of <paramref name="available"/> bytes (this machine's memory by default) in the resolved
    /// <paramref name="precision"/>; <paramref name="options"/>
    /// names what sets the size ("--size 4096 with --patch 1"); <paramref name="size"/>: the input side
    /// when it is not <paramref name="vit"/>'s (a frozen backbone evaluated at another size).</summary>
    /// <paramref name="heads"/>: the bytes of a training step's heads (<see cref="HeadBytes"/>), 0 for a backbone
    /// alone; <paramref name="headOptions"/>: the options that size them, advised when the heads weigh most (null: none the command has).
    public static void Check(Vit.VitConfig vit, long images, bool training, PrecisionChoice precision, string options, long? available = null, int? size = null, double heads = 0, string? headOptions = null)
    {
        long memory = available ?? GC.GetGCMemoryInfo().TotalAvailableMemoryBytes;
        double activations = ActivationBytes(vit, images, training, precision, size), parameters = ParameterBytes(vit, training);
        if (activations + parameters + heads <= memory / 2.0) return;
        var held = heads > 0 ? $"the activations of {images} image(s), the parameters and the heads need at least {ByteSize.Describe(activations)} + {ByteSize.Describe(parameters)} + {ByteSize.Describe(heads)}"
            : $"the activations of {images} image(s) and the parameters need at least {ByteSize.Describe(activations)} + {ByteSize.Describe(parameters)}";
        var remedy = headOptions is not null && heads >= System.Math.Max(activations, parameters) ? $"use smaller heads ({headOptions}) or a smaller batch" : "use a smaller size, a larger patch or a smaller batch";
        throw new OptionException($"{options} gives {Tokens(vit, size) + 1:N0} tokens per image: {held}, more than half of this machine's {ByteSize.Describe(memory)} (a step holds several times this bound); {remedy}");
    }
}
