namespace CrOC.Data;

public static partial class ImageSources
{
    /// <summary>Whether a search of the folder <paramref name="root"/> reaches <paramref name="path"/> (which may not
    /// exist yet): it lies, below no hidden folder, in a folder the search visits — the root's own tree or a linked
    /// folder's, by real paths. An output there would be taken for data, or replace it (a run's --output or eval-seg's
    /// predictions under a dataset whose JPEGImages/ is a link were let through, being outside the root's real path).
    /// It lists the tree's folders as the search does: 0.11 s for 200 folders of 2,000 files, where the search takes 1.8 s.</summary>
    public static bool Reaches(string root, string path)
    {
        var wanted = RealPaths.Of(path);
        if (!Directory.Exists(root)) return IsBelow(RealPaths.Of(root), wanted); // a folder to come (the synthetic set before its generation)
        try { return FoldersUnder(root, new VisitedFolders(), _ => { }).Any(folder => IsBelow(folder.Real, wanted)); }
        catch (Exception e) when (e is UnauthorizedAccessException or IOException) // as the search says it
        {
            throw new DatasetException($"cannot read the dataset root '{Quoted.Shortened(root)}': {e.Message}");
        }
    }

    /// <summary>Whether <paramref name="path"/> is <paramref name="folder"/> or below it by folders the search does not skip (hidden ones).</summary>
    static bool IsBelow(string folder, string path)
    {
        if (path == folder) return true;
        var prefix = folder.TrimEnd('/') + "/";
        return path.StartsWith(prefix, StringComparison.Ordinal) && !IsHidden(path[prefix.Length..]);
    }
}
