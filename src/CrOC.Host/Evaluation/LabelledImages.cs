using CrOC.Data;

namespace CrOC.Host.Evaluation;

/// <summary>
/// Images with class labels, for the k-NN evaluation: an ImageFolder tree — a folder, or a folder
/// inside a tar archive (<c>a.tar#tiny-imagenet-200/train</c>) — whose first level below the root
/// names the class (any depth below it), or a flat set whose classes come from an annotations
/// file (lines "file-name class …", as Tiny ImageNet's val_annotations.txt; a file or an archive
/// member). Labels index <see cref="Classes"/>.
/// </summary>
public sealed record LabelledImages(IReadOnlyList<ImageEntry> Images, int[] Labels, IReadOnlyList<string> Classes)
{
    /// <summary>Finds the images under <paramref name="root"/> and their classes; with
    /// <paramref name="classes"/> (a bank's) every class must be one of them.</summary>
    public static LabelledImages Find(string root, string? annotations = null, IReadOnlyList<string>? classes = null)
    {
        var images = ImageSources.Find([root]);
        Dictionary<string, string>? byName = annotations is null ? null : ReadAnnotations(annotations);
        Func<ImageEntry, string> classOf = byName is not null ? e => AnnotatedClass(byName, e) : FolderClasses(root);
        var names = images.Select(classOf).ToList();
        var known = classes ?? names.Distinct().Order(StringComparer.Ordinal).ToList();
        var index = known.Select((c, i) => (c, i)).ToDictionary(p => p.c, p => p.i);
        var labels = names.Select((c, i) => index.TryGetValue(c, out var l) ? l : throw NotInBank(images[i], c, known.Count, "")).ToArray();
        return new LabelledImages(images, labels, known);
    }

    /// <summary>Refuses <paramref name="queries"/> of a class none of these (bank) images has: they
    /// could never be right, and were scored without a word once; <paramref name="why"/> says, by
    /// label, how the class's images went (--bank-stride, undecodable).</summary>
    public void Covers(LabelledImages queries, Func<int, string> why)
    {
        var held = Labels.ToHashSet();
        int at = Array.FindIndex(queries.Labels, l => !held.Contains(l));
        if (at >= 0) throw NotInBank(queries.Images[at], Classes[queries.Labels[at]], held.Count, $" ({why(queries.Labels[at])})");
    }

    static DatasetException NotInBank(ImageEntry query, string label, int classes, string why) =>
        new($"{query.Name}: class '{label}' is not among the {Counted.Of(classes, "class", "classes")} of the bank{why}");

    /// <summary>How many of the images are of class <paramref name="label"/>.</summary>
    public int CountOf(int label) => Labels.Count(l => l == label);

    /// <summary>Every <paramref name="stride"/>-th image (a deterministic subset; 1: all).</summary>
    public LabelledImages Every(int stride) => stride <= 1 ? this : Keeping(i => i % stride == 0);

    /// <summary>The images whose index <paramref name="keep"/> accepts, in order.</summary>
    public LabelledImages Keeping(Func<int, bool> keep) =>
        new(Images.Where((_, i) => keep(i)).ToList(), Labels.Where((_, i) => keep(i)).ToArray(), Classes);

    /// <summary>Each image's class, the first path component below the root: root/CLASS/…/image; an
    /// archive found under a folder root counts as a folder named as it is without .tar (ImageNet's
    /// train/CLASS.tar). The root is read once, not per image.</summary>
    static Func<ImageEntry, string> FolderClasses(string root)
    {
        // the folder inside the archive the root names ("a.tar#train", "a.tar": ""); null for a folder root
        var inside = TarArchive.SplitName(root) is var (_, folder) ? folder.Trim('/') : TarArchive.IsArchive(root) ? "" : null;
        var rootParts = inside is null ? FolderParts(root) : [];
        return entry =>
        {
            var relative = (entry.Member, inside) switch
            {
                (not null, not null) => inside.Length == 0 ? entry.Member : entry.Member[(inside.Length + 1)..],
                (not null, null) => Path.ChangeExtension(BelowRoot(rootParts, root, entry.Path, entry.Name), null) + "/" + entry.Member,
                _ => BelowRoot(rootParts, root, entry.Path, entry.Name),
            };
            var parts = relative.Split('/', StringSplitOptions.RemoveEmptyEntries);
            if (parts.Length < 2) throw new DatasetException($"{entry.Name}: no class folder between the root '{root}' and the image (an ImageFolder tree, or give an annotations file)");
            return parts[0];
        };
    }

    /// <summary>The components of the folder a folder root names (a .txt list: its own folder).</summary>
    static string[] FolderParts(string root)
    {
        var folder = Path.GetFullPath(ImageSources.HomeExpanded(root));
        if (File.Exists(folder)) folder = Path.GetDirectoryName(folder)!;
        return folder.Split('/', StringSplitOptions.RemoveEmptyEntries);
    }

    /// <summary>A file's path below the root's folder <paramref name="rootParts"/>: a pattern's
    /// component ({a..b}, *, ?) stands for the one component it matched (folders/{0..3}/CLASS/…).</summary>
    static string BelowRoot(string[] rootParts, string root, string path, string name)
    {
        var parts = Path.GetFullPath(path).Split('/', StringSplitOptions.RemoveEmptyEntries);
        bool Matches(string pattern, string part) => pattern == part || pattern.IndexOfAny(['*', '?', '{']) >= 0;
        if (parts.Length <= rootParts.Length || !rootParts.Zip(parts).All(p => Matches(p.First, p.Second)))
            throw new DatasetException($"{name}: not below the folder of the root '{root}', so it has no class folder (an ImageFolder tree, or give an annotations file)");
        return string.Join('/', parts[rootParts.Length..]);
    }

    static string AnnotatedClass(Dictionary<string, string> byName, ImageEntry entry)
    {
        var name = Path.GetFileName(entry.Member ?? entry.Path);
        return byName.TryGetValue(name, out var c) ? c : throw new DatasetException($"{entry.Name}: not in the annotations file");
    }

    /// <summary>An annotations file's largest size: ImageNet's 50,000 validation names take ~2 MB.</summary>
    const int AnnotationsLimit = 64 << 20;

    /// <summary>A line as a message can show it: its first 80 characters, control characters and
    /// undecodable bytes as '?' (a binary file given as annotations wrote raw bytes to the terminal once).</summary>
    static string Printable(string line) =>
        new(line.Take(80).Select(c => char.IsControl(c) || c == '\uFFFD' ? '?' : c).Concat(line.Length > 80 ? "…" : "").ToArray());

    static Dictionary<string, string> ReadAnnotations(string path)
    {
        var map = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var line in TextList.Lines(path, AnnotationsLimit))
        {
            var fields = line.Split((char[])['\t', ' '], StringSplitOptions.RemoveEmptyEntries);
            if (fields.Length < 2) throw new DatasetException($"{path}: the line '{Printable(line)}' has no class (expected: file-name class …)");
            if (map.TryGetValue(fields[0], out var earlier) && earlier != fields[1])
                throw new DatasetException($"{path}: '{Printable(fields[0])}' is given two classes, '{Printable(earlier)}' and then '{Printable(fields[1])}'");
            map[fields[0]] = fields[1];
        }
        return map;
    }
}
