using TorchSharp;

namespace CrOC.Host.Runtime;

/// <summary>Asked for a device this build or machine does not have.</summary>
public sealed class DeviceException(string message) : Exception(message), CommandLine.IBadInput;

/// <summary>Turns `--device cpu|cuda|cuda:N` into a torch device, checking that it exists.</summary>
public static class Devices
{
    /// <summary>Whether <paramref name="name"/> is cpu, cuda or cuda:N (N ≥ 0).</summary>
    public static bool IsWellFormed(string name) => name is "cpu" or "cuda" || IndexOf(name) is not null;

    /// <summary>The refusal of a name that is not <see cref="IsWellFormed"/>.</summary>
    public static string FormatRule(string name) => $"--device must be cpu, cuda or cuda:N (N ≥ 0), not '{name}'";

    /// <summary>N of cuda:N, else null.</summary>
    static int? IndexOf(string name) =>
        name.StartsWith("cuda:", StringComparison.Ordinal) && int.TryParse(name.AsSpan(5), System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out int n) ? n : null;

    /// <summary><paramref name="name"/> "cuda" without an index picks GPU <paramref name="localRank"/>
    /// (one GPU per process of a machine under mpirun).</summary>
    public static torch.Device Resolve(string name, int localRank = 0)
    {
        if (name == "cpu") return torch.CPU;
        if (!IsWellFormed(name)) throw new CommandLine.OptionException(FormatRule(name)); // a usage error: the report points at --help
        if (!torch.cuda.is_available())
            throw new DeviceException($"--device {name} was asked for, but CUDA is not available (this build uses the CPU natives libtorch-cpu-linux-x64; the README says how to switch to TorchSharp's CUDA package)");
        int index = IndexOf(name) ?? localRank;
        int count = torch.cuda.device_count();
        if (index >= count)
            throw new DeviceException($"--device {name}: GPU {index} does not exist (this machine has {count}); under mpirun, start at most {count} processes per machine or name the GPU");
        return torch.device(DeviceType.CUDA, index);
    }
}

/// <summary>`--precision`: float32, bf16 mixed precision (float32 master weights), or auto.</summary>
public enum PrecisionChoice { Auto, Fp32, Bf16 }

/// <summary>Chooses the compute precision of `--precision auto`.</summary>
public static class Precisions
{
    /// <summary>Auto → bf16 mixed precision where it is faster than fp32 (CUDA, or a CPU whose bf16
    /// matmuls outrun its fp32 ones: <see cref="CpuBf16.Rate.FasterThanFp32"/>), else fp32; Fp32 and
    /// Bf16 stay as asked. The official recipe trains in (fp16) mixed precision. bf16 asked for on a
    /// CPU where it is slower than fp32 (emulated, or bf16 instructions at the fp32 rate): said once
    /// per process.</summary>
    public static PrecisionChoice Resolve(PrecisionChoice requested, string device)
    {
        bool cuda = device.StartsWith("cuda", StringComparison.Ordinal);
        if (requested == PrecisionChoice.Bf16 && !cuda && SlowerThanFp32Note(CpuBf16.OfThisCpu) is { } note && Interlocked.Exchange(ref slowerSaid, 1) == 0)
            Console.WriteLine(note);
        return requested != PrecisionChoice.Auto ? requested : cuda || CpuBf16.OfThisCpu == CpuBf16.Rate.FasterThanFp32 ? PrecisionChoice.Bf16 : PrecisionChoice.Fp32;
    }

    /// <summary>The note for `--precision bf16` on a CPU of this rate, or null where bf16 is the faster.</summary>
    public static string? SlowerThanFp32Note(CpuBf16.Rate rate) => rate switch
    {
        CpuBf16.Rate.Emulated => "note: this CPU has no bf16 instructions (AVX512-BF16 or AMX): --precision bf16 runs emulated, several times slower than fp32 (auto picks fp32 here)",
        CpuBf16.Rate.NoFasterThanFp32 => "note: this CPU's bf16 instructions (AVX512-BF16 on an Intel CPU without AMX) multiply no faster than fp32: --precision bf16 is slower than fp32 here (auto picks fp32)",
        _ => null,
    };

    static int slowerSaid;

    /// <summary>The math core's precision of a resolved choice (Auto must be resolved first).</summary>
    public static CrOC.Math.Layers.Precision ToLayers(PrecisionChoice resolved) => resolved switch
    {
        PrecisionChoice.Fp32 => CrOC.Math.Layers.Precision.Fp32,
        PrecisionChoice.Bf16 => CrOC.Math.Layers.Precision.Bf16,
        _ => throw new ArgumentException("--precision auto must be resolved for a device first"),
    };
}
