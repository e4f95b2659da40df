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
        try { return ReachesReal(HomeExpanded(root), RealPaths.Of(path)); }
        catch (Exception e) when (e is UnauthorizedAccessException or IOException) // as the search says it
        {
            throw new DatasetException($"cannot read the dataset root '{Quoted.Shortened(root)}': {e.Message}");
        }
    }

    /// <summary>Whether the search of <paramref name="root"/> reaches the real path <paramref name="wanted"/>. A folder: its tree. A pattern (`data/*`, as the search takes one that does not exist as written): the
    /// entries of its folders that match it, and a name to come that would (`--output data/run` was trained on by its
    /// rerun, once). A range: each path. A list or an archive names its images: nothing more. A path that does not exist
    /// yet: below it.</summary>
    static bool ReachesReal(string root, string wanted)
    {
        if (Directory.Exists(root)) return FoldersUnder(root, new VisitedFolders(), _ => { }).Any(folder => IsBelow(folder.Real, wanted));
        if (File.Exists(root)) return false;
        if (ExpandBraces(root) is { } expanded) return expanded.Any(r => ReachesReal(r, wanted));
        if (!HasWildcard(root)) return IsBelow(RealPaths.Of(root), wanted); // a folder to come (the synthetic set before its generation)
        var pattern = Path.GetFileName(root);
        foreach (var folder in PatternFolders(Path.GetDirectoryName(root) is { Length: > 0 } d ? d : "."))
        {
            if (Below(RealPaths.Of(folder), wanted)?.Split('/')[0] is { } first && !IsHidden(first) && System.IO.Enumeration.FileSystemName.MatchesSimpleExpression(pattern, first))
                return true;
            if (Directory.EnumerateDirectories(folder, pattern).Where(d => !IsHidden(Path.GetFileName(d))).Any(matched => ReachesReal(matched, wanted)))
                return true;
        }
        return false;
    }

    /// <summary>Whether <paramref name="path"/> is <paramref name="folder"/> or below it by folders the search does not skip (hidden ones).</summary>
    static bool IsBelow(string folder, string path) => path == folder || Below(folder, path) is { } relative && !IsHidden(relative);

    /// <summary><paramref name="path"/> relative to <paramref name="folder"/> when it lies below it, else null.</summary>
    static string? Below(string folder, string path) =>
        folder.TrimEnd('/') + "/" is var prefix && path.StartsWith(prefix, StringComparison.Ordinal) ? path[prefix.Length..] : null;
}
