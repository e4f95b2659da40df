using TorchSharp;

namespace CrOC.Host.Weights;

/// <summary>What a load matched, and what it could not.</summary>
public sealed record BindingReport(int Loaded, IReadOnlyList<string> Missing, IReadOnlyList<string> Unexpected, IReadOnlyList<string> Misshaped)
{
    public bool Complete => Missing.Count == 0 && Unexpected.Count == 0 && Misshaped.Count == 0;

    public string Describe()
    {
        var parts = new List<string> { $"{Loaded} tensors loaded" };
        if (Missing.Count > 0) parts.Add($"missing from the file: {string.Join(", ", Missing)}");
        if (Unexpected.Count > 0) parts.Add($"not in the model: {string.Join(", ", Unexpected)}");
        if (Misshaped.Count > 0) parts.Add($"shape differs: {string.Join(", ", Misshaped)}");
        return string.Join("; ", parts);
    }
}

/// <summary>Copies named tensors into a model's tensors, checking names and shapes.</summary>
public static class StateDictBinding
{
    /// <summary>
    /// Copies every <paramref name="source"/> tensor into the <paramref name="target"/> tensor of the
    /// same name (in place, without gradient, converting the dtype). Strict: any missing,
    /// unexpected or mis-shaped name throws a <see cref="WeightsException"/> listing them all, and
    /// nothing is copied. Non-strict: the matching ones are copied and the rest is reported.
    /// </summary>
    public static BindingReport Bind(NamedTensors target, NamedTensors source, bool strict)
    {
        var targets = target.Select(kv => (Name: kv.Key, Tensor: kv.Value)).ToList();
        var names = targets.Select(t => t.Name).ToHashSet(StringComparer.Ordinal);
        var missing = targets.Where(t => !source.ContainsKey(t.Name)).Select(t => t.Name).ToList();
        var unexpected = source.Keys.Where(k => !names.Contains(k)).ToList();
        var misshaped = targets
            .Where(t => source.TryGetValue(t.Name, out var s) && !s.shape.SequenceEqual(t.Tensor.shape))
            .Select(t => $"{t.Name} (model [{string.Join(", ", t.Tensor.shape)}], file [{string.Join(", ", source[t.Name].shape)}])")
            .ToList();
        var loadable = targets.Where(t => source.TryGetValue(t.Name, out var s) && s.shape.SequenceEqual(t.Tensor.shape)).ToList();
        var report = new BindingReport(loadable.Count, missing, unexpected, misshaped);
        if (strict && !report.Complete)
            throw new WeightsException($"the weights do not fit the model ({report.Describe()}); --non-strict loads what fits");
        using (torch.no_grad())
        {
            foreach (var (name, tensor) in loadable) tensor.copy_(source[name]);
        }
        return report;
    }
}
