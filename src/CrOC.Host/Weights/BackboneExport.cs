namespace CrOC.Host.Weights;

/// <summary>Exports a backbone with the DINO/timm names (no `backbone.` prefix), loadable by
/// `timm`'s / DINO's `vit_small(...).load_state_dict(torch.load(path))`.</summary>
public static class BackboneExport
{
    /// <summary>Writes the `backbone.*` tensors of <paramref name="network"/> to <paramref name="path"/>:
    /// `.pth` as a PyTorch state dict, anything else as safetensors (with <paramref name="metadata"/>);
    /// over an existing file only when <paramref name="replace"/> (see <see cref="AtomicFile.Write"/>).</summary>
    public static void Write(string path, NamedTensors network, IReadOnlyDictionary<string, string>? metadata = null, bool replace = true)
    {
        var backbone = network.WithoutPrefix("backbone.");
        if (backbone.Count == 0) throw new WeightsException("the network has no backbone.* tensors to export");
        if (path.EndsWith(".pth", StringComparison.OrdinalIgnoreCase) || path.EndsWith(".pt", StringComparison.OrdinalIgnoreCase))
            PthWriter.Write(path, backbone, replace);
        else
            Safetensors.Write(path, backbone, metadata, replace);
    }
}
