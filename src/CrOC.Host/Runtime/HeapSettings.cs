using System.Runtime.InteropServices;

namespace CrOC.Host.Runtime;

/// <summary>
/// glibc's malloc serves blocks above its mmap threshold (128 kB, adapting up to 32 MB) with fresh
/// mappings and unmaps them on free, and trims the heap's free top: libtorch's activations and
/// gradients (a ViT-S/16 step allocates and frees several GB) then come back as new pages that the
/// kernel faults in and zeroes, step after step (≈ 90k page faults and 0.3–0.5 s of system time per
/// ViT-S/16 B = 8 fp32 step on Zen 3). With mmap off and trimming off, freed blocks stay in the heap
/// and are reused: peak RSS about 4 % higher, the faults gone from the steady state.
/// Only with glibc on Linux, and not when <c>CROC_MALLOC=keep</c>.
/// </summary>
public static class HeapSettings
{
    public const string Variable = "CROC_MALLOC";

    /// <summary>One line for logs: what was done.</summary>
    public static string Status { get; private set; } = "malloc: glibc defaults";

    /// <summary>Whether to change glibc's settings: on Linux and unless <paramref name="setting"/>
    /// (the variable's value) is "keep".</summary>
    public static bool Wanted(string? setting, bool linux) =>
        linux && !KeepSetting.Asked(setting);

    /// <summary>Call early, before the large allocations start.</summary>
    public static void ApplyFromEnvironment()
    {
        if (!Wanted(Environment.GetEnvironmentVariable(Variable), OperatingSystem.IsLinux()))
        {
            Status = OperatingSystem.IsLinux() ? $"malloc: glibc defaults ({Variable}=keep)" : "malloc: not Linux; defaults";
            return;
        }
        Status = Apply() ? $"malloc: heap reused, no mmap, no trim ({Variable}=keep for glibc defaults)" : "malloc: not glibc, or it refused mallopt; defaults";
    }

    /// <summary>Turns glibc's mmap and trimming off; false where that is not glibc or it refuses.</summary>
    public static bool Apply()
    {
        try
        {
            const int trimThreshold = -1, mmapMax = -4;
            return Native.mallopt(mmapMax, 0) == 1 && Native.mallopt(trimThreshold, int.MaxValue) == 1;
        }
        catch (Exception e) when (e is DllNotFoundException or EntryPointNotFoundException)
        {
            return false;
        }
    }

    static class Native
    {
        [DllImport("libc.so.6")] public static extern int mallopt(int parameter, int value);
    }
}
