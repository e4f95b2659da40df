namespace CrOC.Host.Runtime;

/// <summary>How this CPU runs bfloat16 matmuls: the fact `--precision auto` decides by.</summary>
public static class CpuBf16
{
    public enum Rate
    {
        /// <summary>No bf16 instructions: libtorch emulates bf16, several times slower than fp32.</summary>
        Emulated,
        /// <summary>AVX512-BF16 on an Intel CPU without AMX (Cooper Lake; Sapphire or Emerald Rapids
        /// guests whose AMX is hidden): its bf16 dot products do no more flops per cycle than its
        /// fp32 FMAs, so the casts around them make a bf16 step slower than fp32 (measured on an
        /// Emerald Rapids guest: ViT-S/16 step 5.11 s in bf16, 3.20 s in fp32).</summary>
        NoFasterThanFp32,
        /// <summary>AMX, or AVX512-BF16 on AMD's Zen 4 / Zen 5 (512-bit bf16 dot products at twice
        /// their fp32 FMA rate): the bf16 step 1.6–2× faster than fp32.</summary>
        FasterThanFp32,
    }

    /// <summary>The rate of a CPU with these /proc/cpuinfo <paramref name="flags"/> and CPUID
    /// <paramref name="vendor"/> ("GenuineIntel", "AuthenticAMD", …; null off x86).</summary>
    public static Rate Of(IReadOnlySet<string> flags, string? vendor) =>
        flags.Contains("amx_bf16") || flags.Contains("avx512_bf16") && vendor == "AuthenticAMD" ? Rate.FasterThanFp32
        : flags.Contains("avx512_bf16") ? Rate.NoFasterThanFp32
        : Rate.Emulated;

    /// <summary>This machine's rate (its first CPU's flags).</summary>
    public static Rate OfThisCpu => thisCpu.Value;

    static readonly Lazy<Rate> thisCpu = new(() => Of(CpuFlags(), MklVendorCheck.CpuVendor()));

    static HashSet<string> CpuFlags() =>
        File.Exists("/proc/cpuinfo")
        && File.ReadLines("/proc/cpuinfo").FirstOrDefault(l => l.StartsWith("flags", StringComparison.Ordinal)) is { } line
            ? line[(line.IndexOf(':') + 1)..].Split(' ', StringSplitOptions.RemoveEmptyEntries).ToHashSet(StringComparer.Ordinal)
            : [];
}
