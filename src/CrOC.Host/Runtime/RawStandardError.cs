using Microsoft.Win32.SafeHandles;

namespace CrOC.Host.Runtime;

/// <summary>
/// A line written straight to file descriptor 2 with CoreLib's types alone, for when the console's own
/// writer cannot be used: out of open files, the assemblies it needs (its encoder) do not load, and
/// the failure's line was lost (exit 1 or 134 with nothing said, once).
/// </summary>
public static class RawStandardError
{
    /// <summary>Writes <paramref name="line"/> and a newline; a standard error that takes nothing loses it.</summary>
    public static void WriteLine(string line)
    {
        try
        {
            using var stderr = new FileStream(new SafeFileHandle(2, ownsHandle: false), FileAccess.Write, bufferSize: 0);
            stderr.Write(System.Text.Encoding.UTF8.GetBytes(line + "\n"));
        }
        catch (Exception) { /* no standard error: the exit code says it */ }
    }
}
