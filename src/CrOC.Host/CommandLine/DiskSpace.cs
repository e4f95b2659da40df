namespace CrOC.Host.CommandLine;

/// <summary>Free space and disk-full errors.</summary>
public static class DiskSpace
{
    const int ENOSPC = 28, EDQUOT = 122;

    /// <summary>True when <paramref name="e"/> is "no space left on device" or "quota exceeded", by its
    /// error number (a message can name a path holding any word).</summary>
    public static bool IsDiskFull(IOException e) => (e.HResult & 0xFFFF) is ENOSPC or EDQUOT;

    /// <summary>Bytes free for an unprivileged writer on the file system holding <paramref name="path"/>, or null:
    /// asked of its nearest existing folder (statvfs follows symbolic links, so a runs/ that links to
    /// /scratch is measured on /scratch, not on the file system the link sits on).</summary>
    public static long? Free(string path)
    {
        try
        {
            var nearest = NearestExisting(Path.GetFullPath(path));
            return new DriveInfo(Directory.Exists(nearest) ? nearest : Path.GetDirectoryName(nearest) ?? "/").AvailableFreeSpace;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { return null; }
    }

    /// <summary>The full path <paramref name="full"/> itself, or its nearest ancestor, that exists (as a
    /// folder or a file; "/" at the end).</summary>
    public static string NearestExisting(string full)
    {
        var at = full;
        while (!Directory.Exists(at) && !File.Exists(at) && Path.GetDirectoryName(at) is { } parent) at = parent;
        return at;
    }

    /// <summary>Whether the folder <paramref name="root"/> holds <paramref name="path"/> (whole path
    /// components: /run does not hold /runs/x).</summary>
    public static bool Holds(string root, string path)
    {
        var trimmed = Path.TrimEndingDirectorySeparator(root);
        return trimmed == "/" || path == trimmed || path.StartsWith(trimmed + Path.DirectorySeparatorChar, StringComparison.Ordinal);
    }

}
