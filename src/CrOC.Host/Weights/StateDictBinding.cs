using CrOC.Data;
using TorchSharp;

namespace CrOC.Host.Weights;

/// <summary>What a load matched, and what it could not.</summary>
public sealed record BindingReport(int Loaded, IReadOnlyList<string> Missing, IReadOnlyList<string> Unexpected, IReadOnlyList<string> Misshaped)
{
    public bool Complete => Missing.Count == 0 && Unexpected.Count == 0 && Misshaped.Count == 0;

    public string Describe()
    {
        var parts = new List<string> { $"{Counted.Of(Loaded, "tensor")} loaded" };
        if (Missing.Count > 0) parts.Add($"missing from the file: {string.Join(", ", Missing)}");
        if (Unexpected.Count > 0) parts.Add($"not in the model: {string.Join(", ", Unexpected)}");
        if (Misshaped.Count > 0) parts.Add($"shape differs: {string.Join(", ", Misshaped)}");
        return string.Join("; ", parts);
    }
}

/// <summary>Copies named tensors into a model's tensors, checking names and shapes.</summary>
public static class StateDictBinding
{
    /// <summary>What a bind of <paramref name="source"/> into <paramref name="target"/> would load and miss.</summary>
    public static BindingReport Compare(NamedTensors target, NamedTensors source)
    {
        var missing = target.Keys.Where(k => !source.ContainsKey(k)).ToList();
        var unexpected = source.Keys.Where(k => !target.ContainsKey(k)).ToList();
        var misshaped = target
            .Where(t => source.TryGetValue(t.Key, out var s) && !s.shape.SequenceEqual(t.Value.shape))
            .Select(t => $"{t.Key} (model [{string.Join(", ", t.Value.shape)}], file [{string.Join(", ", source[t.Key].shape)}])")
            .ToList();
        int loadable = target.Count(t => source.TryGetValue(t.Key, out var s) && s.shape.SequenceEqual(t.Value.shape));
        return new BindingReport(loadable, missing, unexpected, misshaped);
    }

    /// <summary>
    /// Copies every <paramref name="source"/> tensor into the <paramref name="target"/> tensor of the
    /// same name (in place, without gradient, converting the dtype). Strict: any missing,
    /// unexpected or mis-shaped name throws a <see cref="WeightsException"/> listing them all, and
    /// nothing is copied. Non-strict: the matching ones are copied and the rest is reported.
    /// </summary>
    public static BindingReport Bind(NamedTensors target, NamedTensors source, bool strict)
    {
        var report = Compare(target, source);
        if (strict && !report.Complete)
            throw new WeightsException($"the weights do not fit the model ({report.Describe()})") { Mismatch = true };
        using (torch.no_grad())
        {
            foreach (var (name, tensor) in target)
                if (source.TryGetValue(name, out var s) && s.shape.SequenceEqual(tensor.shape)) tensor.copy_(s);
        }
        return report;
    }
}
