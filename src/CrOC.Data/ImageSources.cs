namespace CrOC.Data;

/// <summary>A clear error about a dataset, given at start (never mid-epoch).</summary>
public sealed class DatasetException(string message) : Exception(message);

/// <summary>
/// The image files of a dataset, found from one or more roots, in a deterministic (ordinal) order:
/// a folder is searched recursively (an ImageNet-style ImageFolder tree or a flat folder such as
/// COCO's train2017), a pattern such as <c>/data/coco/*2017</c> names several folders, and a
/// <c>.txt</c> file lists images one per line (relative to the list's folder). Several roots
/// combine, e.g. COCO+ = train2017 + unlabeled2017.
/// </summary>
public static class ImageSources
{
    public static readonly string[] Extensions = [".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff"];

    public static bool IsImage(string path) => Extensions.Contains(Path.GetExtension(path).ToLowerInvariant());

    public static IReadOnlyList<string> Find(IEnumerable<string> roots)
    {
        var files = new List<string>();
        foreach (var root in roots)
        {
            var found = FindOne(root);
            if (found.Count == 0) throw new DatasetException($"no images under '{root}' (looked for {string.Join(", ", Extensions)})");
            files.AddRange(found);
        }
        if (files.Count == 0) throw new DatasetException("no dataset root was given");
        return files.Distinct(StringComparer.Ordinal).Order(StringComparer.Ordinal).ToList();
    }

    static List<string> FindOne(string root)
    {
        try
        {
            if (root.Contains('*') || root.Contains('?'))
            {
                var folder = Path.GetDirectoryName(root) is { Length: > 0 } d ? d : ".";
                if (!Directory.Exists(folder)) throw new DatasetException($"'{folder}' (from the pattern '{root}') is not a folder");
                var pattern = Path.GetFileName(root);
                return Directory.EnumerateFileSystemEntries(folder, pattern)
                    .SelectMany(p => Directory.Exists(p) ? FindOne(p) : IsImage(p) ? [Path.GetFullPath(p)] : [])
                    .ToList();
            }
            if (Directory.Exists(root))
                return Directory.EnumerateFiles(root, "*", new EnumerationOptions { RecurseSubdirectories = true, IgnoreInaccessible = true, AttributesToSkip = FileAttributes.Hidden })
                    .Where(IsImage).Select(Path.GetFullPath).ToList();
            if (File.Exists(root) && root.EndsWith(".txt", StringComparison.OrdinalIgnoreCase))
            {
                var folder = Path.GetDirectoryName(Path.GetFullPath(root))!;
                return File.ReadLines(root).Select(l => l.Trim()).Where(l => l.Length > 0 && !l.StartsWith('#'))
                    .Select(l => Path.GetFullPath(Path.Combine(folder, l))).ToList();
            }
            if (File.Exists(root) && IsImage(root)) return [Path.GetFullPath(root)];
        }
        catch (Exception e) when (e is UnauthorizedAccessException or IOException)
        {
            throw new DatasetException($"cannot read the dataset root '{root}': {e.Message}");
        }
        throw new DatasetException($"the dataset root '{root}' does not exist (a folder, a pattern with * or a .txt list of files)");
    }
}
