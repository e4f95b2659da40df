using System.Runtime.InteropServices;
using System.Runtime.Intrinsics.X86;

namespace CrOC.Host.Runtime;

/// <summary>
/// libtorch's bundled MKL takes its generic (slow) kernels on x86-64 CPUs that are not Intel's: it
/// asks <c>mkl_serv_intel_cpu_true()</c> and trusts the vendor string, not the instruction set
/// (measured on AMD EPYC Zen 3: ViT-S/16 fp32 step 8.1 → 6.7–7.1 s with MKL's AVX2 kernels).
/// Before libtorch is loaded, this loads a 4 kB shared object that defines that one function as
/// <c>return 1</c> into the process's global symbol scope, which binds MKL's call to it; the
/// kernels it then picks are those MKL runs on Intel CPUs with the same instruction set.
/// Only on Linux x86-64, only where the vendor is not Intel, and not when
/// <c>CROC_MKL_VENDOR_CHECK=keep</c>. Anything that fails leaves MKL as it is.
/// </summary>
public static class MklVendorCheck
{
    public const string Variable = "CROC_MKL_VENDOR_CHECK";

    /// <summary>One line for logs: what was done and why.</summary>
    public static string Status { get; private set; } = "MKL: vendor check untouched";

    /// <summary>The CPU vendor string from CPUID leaf 0 ("GenuineIntel", "AuthenticAMD", …), or
    /// null off x86.</summary>
    public static string? CpuVendor()
    {
        if (!X86Base.IsSupported) return null;
        var (_, ebx, ecx, edx) = X86Base.CpuId(0, 0);
        var bytes = new byte[12];
        BitConverter.TryWriteBytes(bytes.AsSpan(0), ebx);
        BitConverter.TryWriteBytes(bytes.AsSpan(4), edx);
        BitConverter.TryWriteBytes(bytes.AsSpan(8), ecx);
        return System.Text.Encoding.ASCII.GetString(bytes);
    }

    /// <summary>Whether to answer MKL's vendor question for it: Linux x86-64, a vendor other than
    /// Intel, and <paramref name="setting"/> (the variable's value) not "keep".</summary>
    public static bool Wanted(string? setting, string? vendor, bool linuxX64) =>
        linuxX64 && vendor is not null && vendor != "GenuineIntel" && !KeepSetting.Asked(setting);

    /// <summary>Call first thing in the process, before anything touches libtorch.</summary>
    public static void ApplyFromEnvironment()
    {
        var vendor = CpuVendor();
        bool linuxX64 = OperatingSystem.IsLinux() && RuntimeInformation.ProcessArchitecture == Architecture.X64;
        if (!Wanted(Environment.GetEnvironmentVariable(Variable), vendor, linuxX64))
        {
            Status = vendor == "GenuineIntel" || !linuxX64 ? "MKL: vendor check untouched" : $"MKL: vendor check kept ({Variable}=keep)";
            return;
        }
        Status = Load(out var reason)
            ? $"MKL: Intel kernels on {vendor} ({Variable}=keep to leave MKL's vendor check)"
            : $"MKL: vendor check kept on {vendor} ({reason})";
    }

    static bool Load(out string reason)
    {
        var path = Path.Combine(Path.GetTempPath(), $"croc-mkl-{Environment.ProcessId}-{Guid.NewGuid():N}.so");
        try
        {
            using (var file = new FileStream(path, FileMode.CreateNew, FileAccess.Write)) file.Write(AnswerLibrary.Bytes());
            const int now = 2, global = 0x100;
            var handle = Native.dlopen(path, now | global);
            reason = handle == IntPtr.Zero ? $"dlopen: {Marshal.PtrToStringAnsi(Native.dlerror()) ?? "failed"}" : "";
            return handle != IntPtr.Zero;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or DllNotFoundException or EntryPointNotFoundException)
        {
            reason = e.Message;
            return false;
        }
        finally
        {
            try { File.Delete(path); } catch (IOException) { } // the mapping outlives the file
        }
    }

    static class Native
    {
        [DllImport("libc.so.6")] public static extern IntPtr dlopen(string file, int mode);
        [DllImport("libc.so.6")] public static extern IntPtr dlerror();
    }
}
