using TorchSharp;

namespace CrOC.Host.Weights;

/// <summary>Tensors by name, in insertion order (a state dict).</summary>
public sealed class NamedTensors : OrderedDictionary<string, torch.Tensor>
{
    public NamedTensors() : base(StringComparer.Ordinal) { }

    public NamedTensors(IEnumerable<(string Name, torch.Tensor Tensor)> items) : this()
    {
        foreach (var (name, tensor) in items) Add(name, tensor);
    }

    /// <summary>From F# (string * Tensor) tuples.</summary>
    public NamedTensors(IEnumerable<Tuple<string, torch.Tensor>> items) : this(items.Select(t => (t.Item1, t.Item2))) { }

    /// <summary>The entries whose name starts with <paramref name="prefix"/>, with the prefix removed.</summary>
    public NamedTensors WithoutPrefix(string prefix) =>
        new(this.Where(kv => kv.Key.StartsWith(prefix, StringComparison.Ordinal)).Select(kv => (kv.Key[prefix.Length..], kv.Value)));

    /// <summary>Every entry with <paramref name="prefix"/> put in front of its name.</summary>
    public NamedTensors WithPrefix(string prefix) => new(this.Select(kv => (prefix + kv.Key, kv.Value)));
}

/// <summary>A weights file that cannot be read or does not fit the model; the message says why.</summary>
public sealed class WeightsException(string message) : Exception(message), CommandLine.IBadInput
{
    /// <summary>The file was read, but its tensors do not fit the model (a strict load's refusal).</summary>
    public bool Mismatch { get; init; }
}
