namespace CrOC.Host.Weights;

/// <summary>Exports a backbone with the DINO/timm names (no `backbone.` prefix), loadable by
/// `timm`'s / DINO's `vit_small(...).load_state_dict(torch.load(path))`.</summary>
public static class BackboneExport
{
    /// <summary>Writes the `backbone.*` tensors of <paramref name="network"/> to <paramref name="path"/>
    /// (see <see cref="Content"/>); over an existing file only when <paramref name="replace"/>
    /// (see <see cref="AtomicFile.Write"/>).</summary>
    public static void Write(string path, NamedTensors network, IReadOnlyDictionary<string, string>? metadata = null, bool replace = true) =>
        AtomicFile.WriteTogether([Content(path, network, metadata)], replace);

    /// <summary>The file of the `backbone.*` tensors of <paramref name="network"/> at <paramref name="path"/>,
    /// as one part of an atomic write: `.pth` as a PyTorch state dict, anything else as safetensors
    /// (with <paramref name="metadata"/>).</summary>
    public static AtomicFile.Content Content(string path, NamedTensors network, IReadOnlyDictionary<string, string>? metadata = null)
    {
        var backbone = network.WithoutPrefix("backbone.");
        if (backbone.Count == 0) throw new WeightsException("the network has no backbone.* tensors to export");
        return path.EndsWith(".pth", StringComparison.OrdinalIgnoreCase) || path.EndsWith(".pt", StringComparison.OrdinalIgnoreCase)
            ? PthWriter.Content(path, backbone)
            : Safetensors.Content(path, backbone, metadata);
    }
}
