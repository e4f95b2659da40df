using System.Text.RegularExpressions;

namespace CrOC.Data;

/// <summary>A clear error about a dataset, given at start (never mid-epoch).</summary>
public sealed class DatasetException(string message) : Exception(message);

/// <summary>
/// The images of a dataset, found from one or more roots, in a deterministic (ordinal) order of
/// their names: a folder is searched recursively (an ImageNet-style ImageFolder tree or a flat
/// folder such as COCO's train2017); a tar archive (WebDataset-style shard) is indexed without
/// extracting and its image members are read in place; <c>a.tar#sub/folder</c> keeps the members
/// under one folder of the archive; a pattern such as <c>/data/coco/*2017</c> or
/// <c>shards/train-{000..009}.tar</c> names several folders or archives; a <c>.txt</c> file lists
/// images, archives or folders one per line (relative to the list's folder). Several roots combine, e.g.
/// COCO+ = train2017 + unlabeled2017. A damaged archive contributes the members before the damage
/// and is reported to <c>warn</c>. A leading <c>~/</c> is the home folder.
/// </summary>
public static partial class ImageSources
{
    public static readonly string[] Extensions = [".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff"];

    /// <summary>A .txt list's largest size: ImageNet's 1.28 M training paths take ~100 MB.</summary>
    public const int ListLimit = 256 << 20;

    public static bool IsImage(string path) => Extensions.Contains(Path.GetExtension(path).ToLowerInvariant());

    public static IReadOnlyList<ImageEntry> Find(IEnumerable<string> roots, Action<string>? warn = null)
    {
        warn ??= line => Console.Error.WriteLine($"croc-data: {line}");
        var entries = new List<ImageEntry>();
        var visited = new VisitedFolders(); // folders searched, by real path, over all roots
        foreach (var root in roots)
        {
            var expanded = HomeExpanded(root);
            int revisitsBefore = visited.Revisits;
            var found = FindOne(expanded, warn, visited);
            if (found.Count == 0 && visited.Revisits > revisitsBefore) // a folder, or a pattern or list of folders, searched before ("no images" once)
            {
                warn($"'{root}' is a folder already searched (through another root or a link): its images count once");
                continue;
            }
            if (found.Count == 0) throw new DatasetException($"no images under '{root}' (looked for {string.Join(", ", Extensions)}, in folders and .tar archives)");
            entries.AddRange(found);
        }
        if (entries.Count == 0) throw new DatasetException("no dataset root was given");
        // .NET reads a name that is not valid UTF-8 with U+FFFD in place of its bad bytes, a name that
        // opens no file (and two such names can read alike): left out at start, said, not failed mid-run
        int undecodable = entries.RemoveAll(e => e.Member is null && e.Path.Contains('\uFFFD') && !File.Exists(e.Path));
        if (undecodable > 0) warn($"{undecodable} file name(s) are not valid UTF-8, which this program cannot open: left out (rename them, e.g. with `convmv -f latin1 -t utf8`)");
        if (entries.Count == 0) throw new DatasetException("no image under the dataset roots has a name this program can open (names must be valid UTF-8)");
        // one path given twice (a folder and a list): seen on the storage if any root saw it
        var named = entries.GroupBy(e => e.Name, StringComparer.Ordinal).Select(g => g.FirstOrDefault(e => !e.NamedOnly) ?? g.First()).ToList();
        if (entries.Count > named.Count) // 'a,a/*.jpg' counted once without a word once
            warn($"{entries.Count - named.Count} image(s) named by more than one root (a folder and a pattern or list of its files) count once");
        var unique = named.DistinctBy(RealNamer(), StringComparer.Ordinal).ToList();
        if (named.Count > unique.Count) // trained twice without a word once
            warn($"{named.Count - unique.Count} image(s) reached again through a link (a linked file, archive or folder) count once");
        return unique.OrderBy(e => e.Name, StringComparer.Ordinal).ToList();
    }

    /// <summary>A function naming an image by its real file (links resolved; "archive#member" with the
    /// archive's real path), folders' real paths cached: two names of one file give one real name.</summary>
    public static Func<ImageEntry, string> RealNamer()
    {
        var folders = new Dictionary<string, string>(StringComparer.Ordinal);
        string Real(string path)
        {
            try
            {
                if ((File.GetAttributes(path) & FileAttributes.ReparsePoint) != 0) return RealPaths.Of(path);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException) { return path; } // skipped later, as unreadable
            var folder = Path.GetDirectoryName(path)!;
            if (!folders.TryGetValue(folder, out var real)) folders[folder] = real = RealPaths.Of(folder);
            return Path.Join(real, Path.GetFileName(path));
        }
        return e => e.Member is null ? Real(e.Path) : $"{Real(e.Path)}{ImageEntry.ArchiveSeparator}{e.Member}";
    }

    /// <summary>Whether a name has a hidden part (.git/, .ipynb_checkpoints/, macOS's ._x.jpg), which a search skips.</summary>
    static bool IsHidden(string relative) => relative.Split('/').Any(part => part.StartsWith('.') && part is not ("." or ".."));

    /// <summary>"~/x" as <paramref name="home"/>/x: a shell leaves the ~ after a comma (--data a,~/b) and
    /// in config files as it is.</summary>
    public static string HomeExpanded(string root, string? home) =>
        root.StartsWith("~/", StringComparison.Ordinal) && home is { Length: > 0 } ? Path.Combine(home, root[2..]) : root;

    /// <summary><see cref="HomeExpanded(string, string?)"/> with this process's home folder: $HOME, or the user's
    /// entry in the password database where HOME is unset, as a shell's ~ (a folder named '~' was made once).</summary>
    public static string HomeExpanded(string root) => HomeExpanded(root, Environment.GetFolderPath(Environment.SpecialFolder.UserProfile, Environment.SpecialFolderOption.DoNotVerify)); // a home not made yet is still the home

    /// <summary>A root as a full path, an archive's "#member" split off as <see cref="TarArchive.SplitName"/>
    /// splits it (what a record names, so that a run from another folder is not taken for the same data).</summary>
    public static string FullRoot(string root) =>
        TarArchive.SplitName(root) is var (archive, inside) ? $"{Path.GetFullPath(archive)}{ImageEntry.ArchiveSeparator}{inside}" : Path.GetFullPath(root);

    /// <summary>The file or folder a root's images are found in (~/ expanded): its archive
    /// (a.tar#folder), the folder before a pattern's first * ? or {…} (the search expands them
    /// there), or the root itself (a folder, a .txt list, an image).</summary>
    public static string Location(string root)
    {
        var expanded = HomeExpanded(root);
        if (TarArchive.SplitName(expanded) is var (archive, _)) return archive;
        int wildcard = expanded.IndexOfAny(['*', '?', '{']);
        return wildcard < 0 ? expanded : Path.GetDirectoryName(expanded[..wildcard]) is { Length: > 0 } folder ? folder : ".";
    }

    /// <summary>The image files of a list of paths, as entries (images given one by one).</summary>
    public static IReadOnlyList<ImageEntry> Files(IEnumerable<string> paths) => paths.Select(ImageEntry.File).ToList();

    /// <summary>The folders a search has visited, by real path, and how often one was reached again.</summary>
    sealed class VisitedFolders
    {
        readonly HashSet<string> folders = new(StringComparer.Ordinal);
        public int Revisits { get; private set; }

        /// <summary>Whether the folder of real path <paramref name="real"/> is new to the search (it is visited now).</summary>
        public bool Add(string real)
        {
            if (folders.Add(real)) return true;
            Revisits++;
            return false;
        }
    }

    static List<ImageEntry> FindOne(string root, Action<string> warn, VisitedFolders visited)
    {
        try
        {
            // a path that exists is taken literally: a folder named "imgs?" is not a pattern (matching itself)
            bool exists = Directory.Exists(root) || File.Exists(root);
            if (!exists && ExpandBraces(root) is { } expanded) return expanded.SelectMany(r => FindOne(r, warn, visited)).ToList();
            if (!exists && HasWildcard(root))
            {
                var folder = Path.GetDirectoryName(root) is { Length: > 0 } d ? d : ".";
                var folders = PatternFolders(folder).ToList();
                if (folders.Count == 0) throw new DatasetException(!HasWildcard(folder) ? $"'{folder}' (from the pattern '{root}') is not a folder" : $"no folder matches '{folder}' (from the pattern '{root}')");
                var pattern = Path.GetFileName(root);
                return folders.SelectMany(f => Directory.EnumerateFileSystemEntries(f, pattern)).Where(p => !IsHidden(Path.GetFileName(p)))
                    .SelectMany(p => Directory.Exists(p) || TarArchive.IsArchive(p) ? FindOne(p, warn, visited) : IsImage(p) ? [ImageEntry.File(p)] : [])
                    .ToList();
            }
            if (Directory.Exists(root) && Directory.Exists(Path.Combine(root, "JPEGImages")) && Directory.Exists(Path.Combine(root, "SegmentationClass")))
            {
                warn($"'{root}' is a Pascal VOC layout: its JPEGImages/ are the images (its masks are not)");
                return FindOne(Path.Combine(root, "JPEGImages"), warn, visited);
            }
            if (Directory.Exists(root))
                return FilesUnder(root, visited, warn).SelectMany(p => TarArchive.IsArchive(p) ? FindOne(p, warn, visited) : IsImage(p) ? [ImageEntry.File(p)] : []).ToList();
            if (File.Exists(root) && root.EndsWith(".txt", StringComparison.OrdinalIgnoreCase))
            {
                if (!visited.Add(RealPaths.Of(root))) return []; // a list reached again (one listing itself): its lines count once
                var folder = Path.GetDirectoryName(Path.GetFullPath(root))!;
                // an image file is taken as it is (a missing one is skipped when it does not decode);
                // every other line is a root of its own: a folder, archive, archive#folder, pattern, list, ~/…
                var lines = TextList.Lines(root, ListLimit).Select(l => Path.GetFullPath(Path.Combine(folder, HomeExpanded(l)))).ToList();
                var distinct = lines.Distinct(StringComparer.Ordinal).ToList(); // a line given 100,000 times was searched as often (1.7 GB of entries, then counted once)
                if (lines.Count > distinct.Count) warn($"'{root}' repeats {Counted.Of(lines.Count - distinct.Count, "line")}: each counts once");
                return distinct
                    .SelectMany(p => IsImage(p) && p.IndexOfAny(['*', '?', '{', ImageEntry.ArchiveSeparator]) < 0 ? [ImageEntry.File(p) with { NamedOnly = true }] : Listed(p, root, warn, visited)).ToList();
            }
            if (File.Exists(root) && IsImage(root)) return [ImageEntry.File(root)];
            if (TarArchive.Split(root) is var (archive, inside)) return Members(archive, inside.Trim('/'), warn);
        }
        catch (Exception e) when (e is UnauthorizedAccessException or IOException)
        {
            throw new DatasetException($"cannot read the dataset root '{Quoted.Shortened(root)}': {e.Message}");
        }
        if (File.Exists(root)) throw new DatasetException($"the dataset root '{root}' is a file of no kind a dataset can be: a folder, a .tar archive (uncompressed), a .txt list of files, or an image");
        var oneRoot = root.Contains(',') ? "; this option takes one root, not a comma-separated list" : ""; // eval-knn's --bank/--queries: their classes are folders below one root
        throw new DatasetException($"the dataset root '{Quoted.Shortened(root)}' does not exist (a folder, a .tar archive, a pattern with * or {{a..b}}, or a .txt list of files){oneRoot}");
    }

    /// <summary>A root that a list's line names; a refusal names the list (the innermost one, for lists of lists):
    /// a line of words read as a missing root was said without the list that held it.</summary>
    static List<ImageEntry> Listed(string line, string list, Action<string> warn, VisitedFolders visited)
    {
        try { return FindOne(line, warn, visited); }
        catch (DatasetException e) when (!e.Message.Contains(ListedIn, StringComparison.Ordinal))
        {
            throw new DatasetException($"{e.Message} ({ListedIn}'{Quoted.Shortened(list)}')");
        }
    }

    const string ListedIn = "a line of the list ";

    /// <summary>Whether a path holds a * or ? of a pattern (one that names no existing path).</summary>
    static bool HasWildcard(string path) => path.IndexOfAny(['*', '?']) >= 0;

    /// <summary>The folders a pattern's folder part names: itself, or with wildcards in it
    /// ("sh/*/train" of "sh/*/train/*.jpg") every folder matching each component, hidden ones skipped.</summary>
    static IEnumerable<string> PatternFolders(string folder)
    {
        if (!HasWildcard(folder)) return Directory.Exists(folder) ? [folder] : [];
        var parent = Path.GetDirectoryName(folder) is { Length: > 0 } p ? p : ".";
        var name = Path.GetFileName(folder);
        return PatternFolders(parent).SelectMany(f => Directory.EnumerateDirectories(f, name)).Where(d => !IsHidden(Path.GetFileName(d)));
    }

    /// <summary>The files under <paramref name="root"/>, hidden ones skipped, in the folders of <see cref="FoldersUnder"/>.</summary>
    static IEnumerable<string> FilesUnder(string root, VisitedFolders visited, Action<string> warn) =>
        FoldersUnder(root, visited, warn).SelectMany(folder => Directory.EnumerateFiles(folder.Path, "*", WalkOptions));

    static readonly EnumerationOptions WalkOptions = new() { IgnoreInaccessible = true, AttributesToSkip = FileAttributes.Hidden };

    /// <summary>The folders under <paramref name="root"/> (itself first), hidden ones skipped, each visited once by
    /// its real path (<paramref name="visited"/>, shared by a search's roots): a link back to a parent
    /// folder is no cycle, a second link to a folder, or a second root naming it, no duplicate. A link
    /// to a folder that holds the root (`up -> ..`) is left out, said: it would bring in the parent's
    /// whole tree. Each folder is named as the files below it are (under the root as given), with its real path.</summary>
    static IEnumerable<(string Path, string Real)> FoldersUnder(string root, VisitedFolders visited, Action<string> warn)
    {
        var rootReal = RealPaths.Of(root);
        var pending = new Stack<(string Path, string Real)>([(root, rootReal)]); // each folder's real path resolved once
        while (pending.TryPop(out var next))
        {
            if (!visited.Add(next.Real)) continue;
            yield return next;
            foreach (var folder in new DirectoryInfo(next.Path).EnumerateDirectories("*", WalkOptions).Reverse())
            {
                // a plain folder's real path is its parent's and its name (resolving each anew walked the whole
                // depth every time: a tree 1,500 deep took 33 s); a link is resolved
                var sub = Path.Join(next.Path, folder.Name);
                if (folder.Name.Contains('\uFFFD') && !Directory.Exists(sub)) // a name not valid UTF-8 (see Find): its whole dataset was refused as "cannot be read" once
                {
                    warn($"the folder '{Quoted.Printable(sub)}' has a name that is not valid UTF-8, which this program cannot open: left out (rename it, e.g. with `convmv -f latin1 -t utf8`)");
                    continue;
                }
                var real = folder.Attributes.HasFlag(FileAttributes.ReparsePoint) ? RealPaths.Of(sub) : Path.Join(next.Real, folder.Name);
                if (real != rootReal && rootReal.StartsWith(real.TrimEnd('/') + "/", StringComparison.Ordinal))
                    warn($"'{Quoted.Printable(sub)}' leads to '{Quoted.Printable(real)}', which holds the dataset root '{root}': left out (it would bring in that folder's whole tree)");
                else pending.Push((sub, real));
            }
        }
    }

    static List<ImageEntry> Members(string path, string inside, Action<string> warn)
    {
        var archive = TarArchive.Open(path);
        if (archive.Problem is not null) warn(archive.Problem);
        foreach (var note in archive.Notes) warn(note);
        var prefix = inside.Length == 0 ? "" : inside + "/";
        return archive.Members.Where(m => m.Name.StartsWith(prefix, StringComparison.Ordinal) && IsImage(m.Name) && !IsHidden(m.Name[prefix.Length..]))
            .Select(m => ImageEntry.InArchive(archive.Path, m)).ToList();
    }

    /// <summary>The roots of the first numeric range "{a..b}" of <paramref name="root"/> (zero-padded
    /// as a is: {000..009}), or null when it has none.</summary>
    static IEnumerable<string>? ExpandBraces(string root)
    {
        var matches = BraceRange().Matches(root);
        if (matches.Count == 0) return null;
        // every range checked, and all of them together: each one's limit alone let two in a row name 10^12 paths (a search without end)
        double paths = 1;
        foreach (Match range in matches)
        {
            if (!long.TryParse(range.Groups[1].Value, out long first) || !long.TryParse(range.Groups[2].Value, out long last) || last < first || last - first + 1 > MaxRangePaths)
                throw new DatasetException($"bad range '{range.Value}' in '{Quoted.Shortened(root)}'");
            paths *= last - first + 1;
        }
        if (paths > MaxBracePaths)
            throw new DatasetException($"the ranges in '{Quoted.Shortened(root)}' name {paths:N0} paths together, more than {MaxBracePaths:N0}");
        var match = matches[0];
        var (from, to) = (match.Groups[1].Value, match.Groups[2].Value);
        long a = long.Parse(from), b = long.Parse(to);
        int width = from.Length > 1 && from[0] == '0' ? from.Length : 0;
        return Enumerable.Range(0, (int)(b - a + 1)).Select(i => root[..match.Index] + (a + i).ToString().PadLeft(width, '0') + root[(match.Index + match.Length)..]);
    }

    /// <summary>The most paths one brace range may name ({0..999999}), and all of a root's ranges together
    /// (imgs/{000..999}/{0000..1299}.jpg names 1.3 million).</summary>
    const long MaxRangePaths = 1_000_000, MaxBracePaths = 10_000_000;

    [GeneratedRegex(@"\{(\d+)\.\.(\d+)\}")]
    private static partial Regex BraceRange();
}
