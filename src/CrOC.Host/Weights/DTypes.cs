using TorchSharp;

namespace CrOC.Host.Weights;

/// <summary>The element types the weight formats carry, by their names in each format.</summary>
static class DTypes
{
    static readonly (torch.ScalarType Type, string Safetensors, string PyTorchStorage)[] Table =
    [
        (torch.ScalarType.Float64, "F64", "DoubleStorage"),
        (torch.ScalarType.Float32, "F32", "FloatStorage"),
        (torch.ScalarType.Float16, "F16", "HalfStorage"),
        (torch.ScalarType.BFloat16, "BF16", "BFloat16Storage"),
        (torch.ScalarType.Int64, "I64", "LongStorage"),
        (torch.ScalarType.Int32, "I32", "IntStorage"),
        (torch.ScalarType.Int16, "I16", "ShortStorage"),
        (torch.ScalarType.Int8, "I8", "CharStorage"),
        (torch.ScalarType.Byte, "U8", "ByteStorage"),
        (torch.ScalarType.Bool, "BOOL", "BoolStorage"),
    ];

    static T Lookup<T>(Func<(torch.ScalarType Type, string Safetensors, string PyTorchStorage), bool> match, Func<(torch.ScalarType Type, string Safetensors, string PyTorchStorage), T> pick, string error)
    {
        foreach (var row in Table) if (match(row)) return pick(row);
        throw new WeightsException(error);
    }

    public static torch.ScalarType FromSafetensors(string name) => Lookup(r => r.Safetensors == name, r => r.Type, $"unsupported safetensors dtype '{name}'");
    public static string ToSafetensors(torch.ScalarType type) => Lookup(r => r.Type == type, r => r.Safetensors, $"dtype {type} cannot be written");
    /// <summary>Whether a storage of PyTorch's class <paramref name="name"/> ("FloatStorage") is read.</summary>
    public static bool ReadsStorage(string name) => Table.Any(r => r.PyTorchStorage == name);
    public static torch.ScalarType FromStorage(string name) => Lookup(r => r.PyTorchStorage == name, r => r.Type, $"unsupported PyTorch storage '{name}'");
    public static string ToStorage(torch.ScalarType type) => Lookup(r => r.Type == type, r => r.PyTorchStorage, $"dtype {type} cannot be written");

    public static int Size(torch.ScalarType type) => type switch
    {
        torch.ScalarType.Float64 or torch.ScalarType.Int64 => 8,
        torch.ScalarType.Float32 or torch.ScalarType.Int32 => 4,
        torch.ScalarType.Float16 or torch.ScalarType.BFloat16 or torch.ScalarType.Int16 => 2,
        _ => 1,
    };

    /// <summary>The raw little-endian bytes of a tensor (copied to the CPU, made contiguous).</summary>
    public static byte[] BytesOf(torch.Tensor tensor)
    {
        using var scope = torch.NewDisposeScope();
        var cpu = tensor.detach().cpu().contiguous();
        return cpu.bytes.ToArray();
    }

    /// <summary>A fresh CPU tensor of <paramref name="shape"/> holding <paramref name="data"/>.</summary>
    public static torch.Tensor FromBytes(torch.ScalarType type, long[] shape, byte[] data)
    {
        long bytes;
        try { bytes = checked(shape.Aggregate(1L, (a, d) => d < 0 ? throw new WeightsException("a negative dimension") : checked(a * d)) * Size(type)); }
        catch (OverflowException) { bytes = -1; }
        if (data.Length != bytes)
            throw new WeightsException($"{data.Length} bytes do not fill a {type} tensor of shape [{string.Join(", ", shape)}]");
        var tensor = torch.empty(shape, dtype: type);
        tensor.bytes = data;
        return tensor;
    }
}
