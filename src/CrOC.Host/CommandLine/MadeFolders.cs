using System.Collections.Concurrent;

namespace CrOC.Host.CommandLine;

/// <summary>
/// The output folders a command made (the topmost new one of each path), so that a command that
/// fails removes those it left empty: a failure leaves the disk as it was, apart from what it wrote.
/// Only folders holding nothing but empty folders go (deepest first, each rmdir refusing a non-empty
/// folder, so a file written meanwhile by anyone stays); links are never followed.
/// </summary>
public static class MadeFolders
{
    /// <summary>The running command's record (flows into its tasks and threads; commands run side by side in tests).</summary>
    static readonly AsyncLocal<ConcurrentDictionary<string, bool>?> Made = new();

    /// <summary>Starts the record of a command.</summary>
    public static void Begin() => Made.Value = new();

    /// <summary>Makes the folder <paramref name="full"/> (a full path) and its missing parents; records the topmost made.</summary>
    public static void Make(string full)
    {
        string? topmostNew = null;
        for (var at = full; at is not null && !Directory.Exists(at) && !File.Exists(at); at = Path.GetDirectoryName(at)) topmostNew = at;
        Directory.CreateDirectory(full);
        if (topmostNew is not null) Made.Value?.TryAdd(topmostNew, true);
    }

    /// <summary>Removes each recorded folder that holds nothing but empty folders; returns those removed.</summary>
    public static List<string> RemoveEmpty()
    {
        var made = Made.Value;
        if (made is null) return [];
        var removed = new List<string>();
        foreach (var folder in made.Keys.OrderByDescending(f => f.Length))
            if (made.TryRemove(folder, out _) && RemoveIfEmpty(folder)) removed.Add(folder);
        return removed;
    }

    /// <summary>Removes <paramref name="folder"/> when it (recursively) holds only empty real folders.</summary>
    static bool RemoveIfEmpty(string folder)
    {
        try
        {
            var info = new DirectoryInfo(folder);
            if (!info.Exists || info.LinkTarget is not null) return false;
            foreach (var entry in info.EnumerateFileSystemInfos())
                if (entry is not DirectoryInfo sub || sub.LinkTarget is not null || !RemoveIfEmpty(sub.FullName)) return false;
            info.Delete(recursive: false);
            return true;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { return false; }
    }
}
