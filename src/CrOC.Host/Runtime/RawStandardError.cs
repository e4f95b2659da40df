using System.Runtime.InteropServices;

namespace CrOC.Host.Runtime;

/// <summary>
/// A line written straight to file descriptor 2 with CoreLib's types alone, for when the console's own
/// writer cannot be used: out of open files, the assemblies it needs (its encoder) do not load, and
/// the failure's line was lost (exit 1 or 134 with nothing said, once).
/// </summary>
public static class RawStandardError
{
    /// <summary>Writes <paramref name="line"/> and a newline with write(2) (at the descriptor's shared offset, as the
    /// console's own writes: a stream's pwrite would be overwritten by them under `>log 2>&amp;1`); a standard
    /// error that takes nothing loses it.</summary>
    public static void WriteLine(string line)
    {
        try
        {
            var bytes = System.Text.Encoding.UTF8.GetBytes(line + "\n");
            for (int done = 0; done < bytes.Length;)
            {
                nint n = Native.write(2, bytes[done..], bytes.Length - done);
                if (n <= 0) return;
                done += (int)n;
            }
        }
        catch (Exception) { /* no standard error: the exit code says it */ }
    }

    static class Native
    {
        [DllImport("libc", SetLastError = true)] public static extern nint write(int descriptor, byte[] buffer, nint count);
    }
}
