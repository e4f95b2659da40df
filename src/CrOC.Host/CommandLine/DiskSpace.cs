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
            var folder = Path.GetFullPath(path);
            while (!Directory.Exists(folder)) folder = Path.GetDirectoryName(folder) ?? "/";
            return new DriveInfo(folder).AvailableFreeSpace;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { return null; }
    }

    /// <summary>Whether the folder <paramref name="root"/> holds <paramref name="path"/> (whole path
    /// components: /run does not hold /runs/x).</summary>
    public static bool Holds(string root, string path)
    {
        var trimmed = Path.TrimEndingDirectorySeparator(root);
        return trimmed == "/" || path == trimmed || path.StartsWith(trimmed + Path.DirectorySeparatorChar, StringComparison.Ordinal);
    }

    public static string Describe(long bytes) => bytes >= 1 << 30 ? $"{bytes / (double)(1 << 30):F2} GiB" : bytes >= 1 << 20 ? $"{bytes / (double)(1 << 20):F1} MiB" : $"{bytes} bytes";
}
