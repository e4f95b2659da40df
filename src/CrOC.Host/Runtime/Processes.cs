using System.Diagnostics;

namespace CrOC.Host.Runtime;

/// <summary>Other processes of this machine, for cleaning up after one that was killed.</summary>
public static class Processes
{
    /// <summary>Whether a process with id <paramref name="pid"/> is running now.</summary>
    public static bool IsRunning(int pid)
    {
        try
        {
            using var process = Process.GetProcessById(pid);
            return !process.HasExited;
        }
        catch (ArgumentException) { return false; }
    }
}
