using CrOC.Math;

namespace CrOC.Host.Weights;

/// <summary>Reads a ViT's architecture off its backbone tensors (names without `backbone.`).</summary>
public static class BackboneShape
{
    /// <summary>The configuration the tensors were made for. The head count cannot be seen in
    /// the shapes: it is <paramref name="heads"/>, or D/64 (ViT-Ti/S/B all use 64-wide heads).</summary>
    public static Vit.VitConfig Infer(NamedTensors backbone, int? heads = null)
    {
        TorchSharp.torch.Tensor Get(string name) => backbone.TryGetValue(name, out var t) ? t : throw new WeightsException($"no '{name}' tensor: not a ViT backbone");
        // A size read off a shape: the tensor has at least `rank` dimensions and the size is positive.
        int Size(string name, int rank, Index dimension)
        {
            var shape = Get(name).shape;
            if (shape.Length < rank || shape[dimension] < 1 || shape[dimension] > int.MaxValue)
                throw new WeightsException($"'{name}' has shape [{string.Join(", ", shape)}]: not a ViT backbone's");
            return (int)shape[dimension];
        }
        int dim = Size("cls_token", 3, ^1);
        int patch = Size("patch_embed.proj.weight", 4, ^1);
        int tokens = Size("pos_embed", 3, 1) - 1;
        int grid = (int)System.Math.Round(System.Math.Sqrt(tokens));
        if (tokens < 1 || grid * grid != tokens) throw new WeightsException($"pos_embed holds {tokens} patch positions, not a square grid of at least one");
        int depth = 0;
        while (backbone.ContainsKey($"blocks.{depth}.norm1.weight")) depth++;
        int hidden = Size("blocks.0.mlp.fc1.weight", 2, 0);
        if (hidden % dim != 0) throw new WeightsException($"the MLP's hidden width {hidden} is not a whole multiple of the width {dim} (this ViT's MLP ratio is a whole number)");
        int headCount = heads ?? System.Math.Max(1, dim / 64);
        if (dim % headCount != 0) throw new WeightsException($"width {dim} is not divisible by {headCount} heads");
        return new Vit.VitConfig(imageSize: grid * patch, patch: patch, dim: dim, depth: depth, heads: headCount, mlpRatio: hidden / dim, eps: 1e-6);
    }
}
