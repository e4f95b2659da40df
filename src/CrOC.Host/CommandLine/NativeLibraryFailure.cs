namespace CrOC.Host.CommandLine;

/// <summary>
/// A native library that did not load, as one line. .NET's message names the library, then gives the
/// loader's (dlerror's) reason for each file it tried, one per line ("PATH: REASON"): the reason of a file
/// that exists says why it failed (a missing dependency, a file that is no library); when none exists, the
/// library was not found.
/// </summary>
public static class NativeLibraryFailure
{
    public static string Describe(DllNotFoundException e)
    {
        var lines = e.Message.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        var name = lines.Length > 0 ? lines[0].Split('\'').ElementAtOrDefault(1) ?? lines[0] : "?";
        var tried = lines.Skip(1).Where(line => line.Contains(": ")).ToList();
        var reason = tried.FirstOrDefault(line => File.Exists(line[..line.IndexOf(": ", StringComparison.Ordinal)])) ?? tried.FirstOrDefault();
        return $"could not load the native library {name}{(reason is null ? "" : $" ({reason})")}: the installation is incomplete or broken, or the process ran out of open files (ulimit -n)";
    }
}
