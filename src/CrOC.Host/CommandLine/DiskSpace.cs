namespace CrOC.Host.CommandLine;

/// <summary>Free space and disk-full errors.</summary>
public static class DiskSpace
{
    const int ENOSPC = 28, EDQUOT = 122;

    /// <summary>True when <paramref name="e"/> is "no space left on device" (or a quota).</summary>
    public static bool IsDiskFull(IOException e) =>
        (e.HResult & 0xFFFF) is ENOSPC or EDQUOT || e.Message.Contains("No space left", StringComparison.OrdinalIgnoreCase) || e.Message.Contains("quota", StringComparison.OrdinalIgnoreCase);

    /// <summary>Bytes free for an unprivileged writer on the file system holding <paramref name="path"/>, or null.</summary>
    public static long? Free(string path)
    {
        try
        {
            var full = Path.GetFullPath(path);
            var drive = DriveInfo.GetDrives().Where(d => full.StartsWith(d.RootDirectory.FullName, StringComparison.Ordinal))
                .MaxBy(d => d.RootDirectory.FullName.Length);
            return drive?.AvailableFreeSpace;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { return null; }
    }

    public static string Describe(long bytes) => bytes >= 1 << 30 ? $"{bytes / (double)(1 << 30):F2} GiB" : bytes >= 1 << 20 ? $"{bytes / (double)(1 << 20):F1} MiB" : $"{bytes} bytes";
}
