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
        /// Emerald Rapids guest: ViT-S/16 step 4.95 s in bf16, 3.07 s in fp32).</summary>
        NoFasterThanFp32,
        /// <summary>AMX, or AVX512-BF16 on AMD's Zen 4 / Zen 5: the bf16 step 1.6× (Zen 4) to 1.8×
        /// (Sapphire Rapids with AMX) faster than fp32.</summary>
        FasterThanFp32,
    }

    /// <summary>The rate of a CPU with these /proc/cpuinfo <paramref name="flags"/> and
    /// <paramref name="vendor"/> ("GenuineIntel", "AuthenticAMD", …; null where unknown).</summary>
    public static Rate Of(IReadOnlySet<string> flags, string? vendor) =>
        flags.Contains("amx_bf16") || (flags.Contains("avx512_bf16") && vendor == "AuthenticAMD") ? Rate.FasterThanFp32
        : flags.Contains("avx512_bf16") ? Rate.NoFasterThanFp32
        : Rate.Emulated;

    /// <summary>The first CPU's `flags` and `vendor_id` in /proc/cpuinfo's lines ("name\t: value";
    /// `vmx flags` and the other CPUs' lines ignored); empty and null where absent (not x86).</summary>
    public static (HashSet<string> Flags, string? Vendor) Describe(IEnumerable<string> cpuinfo)
    {
        HashSet<string>? flags = null;
        string? vendor = null;
        foreach (var line in cpuinfo)
        {
            int colon = line.IndexOf(':');
            if (colon < 0) continue;
            string name = line[..colon].Trim(), value = line[(colon + 1)..].Trim();
            if (name == "flags") flags ??= value.Split(' ', StringSplitOptions.RemoveEmptyEntries).ToHashSet(StringComparer.Ordinal);
            else if (name == "vendor_id") vendor ??= value;
            if (flags is not null && vendor is not null) break;
        }
        return (flags ?? [], vendor);
    }

    /// <summary>This machine's rate.</summary>
    public static Rate OfThisCpu => thisCpu.Value;

    static readonly Lazy<Rate> thisCpu = new(() =>
    {
        var (flags, vendor) = Describe(File.Exists("/proc/cpuinfo") ? File.ReadLines("/proc/cpuinfo") : []);
        return Of(flags, vendor);
    });
}
