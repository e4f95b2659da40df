using System.Collections.Concurrent;

namespace CrOC.Host.CommandLine;

/// <summary>
/// The output folders a command made (each level of each path it created), so that a command that
/// fails removes those it left empty: a failure leaves the disk as it was, apart from what it wrote.
/// Only those folders go, deepest first, each with rmdir, which refuses a folder that holds anything:
/// a file or folder put there meanwhile by anyone (another run's new folder) stays, with its parents.
/// </summary>
public static class MadeFolders
{
    /// <summary>The running command's record (flows into its tasks and threads; commands run side by side in tests).</summary>
    static readonly AsyncLocal<ConcurrentDictionary<string, bool>?> Made = new();

    /// <summary>Starts the record of a command.</summary>
    public static void Begin() => Made.Value = new();

    /// <summary>Makes the folder <paramref name="full"/> (a full path) and its missing parents; records those it made.</summary>
    public static void Make(string full)
    {
        var existing = DiskSpace.NearestExisting(full);
        var missing = new List<string>();
        for (var at = full; at != existing && at is not null; at = Path.GetDirectoryName(at)) missing.Add(at);
        Directory.CreateDirectory(full);
        foreach (var folder in missing) Made.Value?.TryAdd(folder, true);
    }

    /// <summary>What removes the running command's empty folders from another thread (a signal
    /// handler runs outside the command's flow, where its record is not seen).</summary>
    public static Func<List<string>> RemoverOfThisCommand()
    {
        var made = Made.Value;
        return () => RemoveEmpty(made);
    }

    /// <summary>Removes each recorded folder that is empty (deepest first); returns those removed.</summary>
    public static List<string> RemoveEmpty() => RemoveEmpty(Made.Value);

    static List<string> RemoveEmpty(ConcurrentDictionary<string, bool>? made)
    {
        if (made is null) return [];
        var removed = new List<string>();
        foreach (var folder in made.Keys.OrderByDescending(f => f.Length))
            if (made.TryRemove(folder, out _) && RemoveIfEmpty(folder)) removed.Add(folder);
        return removed;
    }

    static bool RemoveIfEmpty(string folder)
    {
        try
        {
            var info = new DirectoryInfo(folder);
            if (!info.Exists || info.LinkTarget is not null) return false;
            info.Delete(recursive: false); // refused when not empty
            return true;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { return false; }
    }
}
