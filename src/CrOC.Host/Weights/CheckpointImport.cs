using System.Collections;
using TorchSharp;

namespace CrOC.Host.Weights;

/// <summary>Which kind of file the weights came from.</summary>
public enum WeightsLayout
{
    /// <summary>A state dict with our names: backbone.* and head.*.</summary>
    Network,
    /// <summary>An official CrOC (or DINO) "full checkpoint": student (module.*), teacher, croc_loss, ...</summary>
    FullCheckpoint,
    /// <summary>A CrOC.NET training checkpoint: student.*, teacher.*, centre, centre_c, adam.* (older ones also rng.*).</summary>
    TrainingCheckpoint,
    /// <summary>A plain ViT backbone state dict with DINO/timm names (cls_token, blocks.0..., norm.*).</summary>
    BackboneOnly,
}

/// <summary>Weights read from a file, with every name in our convention (backbone.*, head.*);
/// <see cref="Lacking"/>: the network a checkpoint lacks, whose place the other one takes.</summary>
public sealed record ImportedWeights(
    WeightsLayout Layout,
    NamedTensors Student,
    NamedTensors? Teacher,
    torch.Tensor? Centre,
    torch.Tensor? CentreC,
    IReadOnlyList<string> Notes,
    IReadOnlyDictionary<string, string>? Metadata = null,
    NetworkChoice? Lacking = null);

/// <summary>Recognises the layouts of weight files (.pth or .safetensors) and brings their names
/// to ours (spec §12.3).</summary>
public static class CheckpointImport
{
    static readonly string[] BackboneRoots = ["cls_token", "pos_embed", "patch_embed.", "blocks.", "norm."];

    /// <summary>Refuses a weights path that is no file (bad input, before any other work).</summary>
    public static void ExpectFile(string path)
    {
        if (!File.Exists(path)) throw new WeightsException(Directory.Exists(path) ? $"{path} is a folder, not a weights file" : $"{path}: no such file");
        // a FIFO with no writer would block the read forever; a pipe (`<(…)`) cannot be read with seeks
        if (!CrOC.Data.RegularFile.IsReadable(path)) throw new WeightsException($"{path} is not a readable regular file (a pipe, FIFO or device, or no read permission): weights are read with seeks; save them to a file first");
    }

    public static ImportedWeights Import(string path)
    {
        ExpectFile(path);
        if (path.EndsWith(".safetensors", StringComparison.OrdinalIgnoreCase))
        {
            var (tensors, metadata) = Safetensors.Read(path);
            var (student, teacher) = (AsNetwork(tensors.WithoutPrefix("student.")), AsNetwork(tensors.WithoutPrefix("teacher.")));
            if (student.Count > 0 || teacher.Count > 0) // one network alone stands for both ("no ViT weights recognised" for a teacher alone once)
                return new ImportedWeights(WeightsLayout.TrainingCheckpoint, student.Count > 0 ? student : teacher, teacher.Count > 0 ? teacher : null,
                    tensors.GetValueOrDefault("centre"), tensors.GetValueOrDefault("centre_c"),
                    (student.Count, teacher.Count) switch
                    {
                        (> 0, 0) => ["no teacher.* tensors: the student's weights stand for both"],
                        (0, _) => ["no student.* tensors: the teacher's weights stand for both"],
                        _ => [],
                    }, metadata, student.Count == 0 ? NetworkChoice.Student : teacher.Count == 0 ? NetworkChoice.Teacher : null);
            return FromTensors(tensors, [], path) with { Metadata = metadata };
        }
        var read = PthReader.Read(path);
        var root = read as Hashtable ?? throw new WeightsException($"{path}: the pickle holds {(read is InertObject o ? Inert(o) : Described(read))}, not a dictionary of tensors");
        var notes = new List<string>();
        // timm, DeiT and MAE save {'model': state_dict}, mmcv {'state_dict': …}: "no tensors found" once
        if (root["student"] is null && root["teacher"] is null && !root.Values.OfType<torch.Tensor>().Any()
            && new[] { "model", "state_dict" }.FirstOrDefault(key => root[key] is Hashtable table && table.Values.OfType<torch.Tensor>().Any()) is { } nested)
        {
            var others = root.Keys.Cast<object>().Select(k => k.ToString() ?? "").Where(k => k != nested).Order(StringComparer.Ordinal).ToList();
            notes.Add($"the weights are the file's '{nested}' dictionary" + (others.Count > 0 ? $"; ignored: {string.Join(", ", others.Select(k => $"'{k}'"))}" : ""));
            root = (Hashtable)root[nested]!;
        }
        if (root["student"] is Hashtable || root["teacher"] is Hashtable)
            return FullCheckpoint(root, notes, path);
        return FromTensors(TensorsOf(root, notes, "", path), notes, path);
    }

    static ImportedWeights FullCheckpoint(Hashtable root, List<string> notes, string path)
    {
        NamedTensors? Network(string key) =>
            root[key] is Hashtable table ? AsNetwork(StripWrappers(TensorsOf(table, notes, key + ".", path), path)) : null;
        var student = Network("student");
        var teacher = Network("teacher");
        torch.Tensor? centre = null, centreC = null;
        if (root["croc_loss"] is Hashtable loss)
        {
            centre = loss["center"] as torch.Tensor;
            centreC = loss["center_c"] as torch.Tensor;
        }
        else if (root["dino_loss"] is Hashtable dino)
        {
            centre = dino["center"] as torch.Tensor;
        }
        // in key order: a Hashtable's own order changes from process to process (string hashing)
        foreach (var entry in root.Cast<DictionaryEntry>().Select(e => (Key: e.Key as string ?? e.Key?.ToString() ?? "", e.Value)).OrderBy(e => e.Key, StringComparer.Ordinal))
        {
            var key = entry.Key;
            if (key is "student" or "teacher" or "croc_loss" or "dino_loss") continue;
            notes.Add(entry.Value switch
            {
                InertObject o => $"'{key}': {Inert(o)}, ignored",
                Hashtable => $"'{key}': ignored",
                var v => $"'{key}' = {Described(v)}",
            });
        }
        var weights = student ?? teacher!;
        if (student is null) notes.Add("no student: the teacher's weights stand for both");
        if (teacher is null) notes.Add(root.ContainsKey("teacher") ? "'teacher' is not a dictionary of tensors: the student's weights stand for both" : "no teacher: the student's weights stand for both");
        return new ImportedWeights(WeightsLayout.FullCheckpoint, weights, teacher, centre, centreC, notes,
            Lacking: student is null ? NetworkChoice.Student : teacher is null ? NetworkChoice.Teacher : null);
    }

    static ImportedWeights FromTensors(NamedTensors tensors, List<string> notes, string path)
    {
        if (tensors.Count == 0) throw new WeightsException($"{path}: no tensors found");
        static bool IsHead(string key) => key.StartsWith("head.", StringComparison.Ordinal);
        var stripped = StripWrappers(tensors, path);
        bool plainVit = stripped.Keys.Any(IsBackboneName);
        if (stripped.Keys.Any(k => k.StartsWith("backbone.", StringComparison.Ordinal)) || (!plainVit && stripped.Keys.Any(IsHead)))
            return new ImportedWeights(WeightsLayout.Network, stripped, null, null, null, notes);
        if (plainVit)
        {
            // a timm ViT keeps its classifier beside the backbone's names: not part of the backbone
            var head = stripped.Keys.Where(IsHead).ToList();
            if (head.Count > 0) notes.Add($"{string.Join(", ", head)}: a classifier head beside the backbone, ignored");
            return new ImportedWeights(WeightsLayout.BackboneOnly, new NamedTensors(stripped.Where(kv => !IsHead(kv.Key)).Select(kv => (kv.Key, kv.Value))).WithPrefix("backbone."), null, null, null, notes);
        }
        throw new WeightsException($"{path}: no ViT weights recognised (first keys: {string.Join(", ", tensors.Keys.Take(5))})");
    }

    /// <summary>A network's tensors as a training checkpoint names them: a plain ViT's (cls_token, blocks.…, as DINO's
    /// loader also accepts under 'teacher') put under backbone. ("no 'cls_token' tensor" once); other names as they are.</summary>
    static NamedTensors AsNetwork(NamedTensors network) =>
        network.Keys.Any(k => k.StartsWith("backbone.", StringComparison.Ordinal)) ? network
        : new(network.Select(kv => (IsBackboneName(kv.Key) ? "backbone." + kv.Key : kv.Key, kv.Value)));

    static bool IsBackboneName(string key) => BackboneRoots.Any(root => key.StartsWith(root, StringComparison.Ordinal));

    /// <summary>The prefixes wrappers add to a module's names: DistributedDataParallel's and torch.compile's.</summary>
    static readonly string[] WrapperPrefixes = ["module.", "_orig_mod."];

    /// <summary>Removes the wrappers' prefixes (in any order: DDP around a compiled model, or the reverse); two names
    /// that become one are refused.</summary>
    static NamedTensors StripWrappers(NamedTensors tensors, string path)
    {
        var stripped = new NamedTensors();
        var original = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var (key, tensor) in tensors)
        {
            var name = key;
            while (WrapperPrefixes.FirstOrDefault(p => name.StartsWith(p, StringComparison.Ordinal)) is { } prefix) name = name[prefix.Length..];
            if (!stripped.TryAdd(name, tensor))
                throw new WeightsException($"{path}: {string.Join(" and ", new[] { original[name], key }.OrderByDescending(n => n.Length).Select(n => $"'{CrOC.Data.Quoted.Printable(n)}'"))} are both in the file (one name with and without a wrapper's prefix: DistributedDataParallel's 'module.', torch.compile's '_orig_mod.'): which one holds the weights is unclear");
            original[name] = key;
        }
        return stripped;
    }

    /// <summary>An inert object as a note names it.</summary>
    static string Inert(InertObject o) => $"an object of {CrOC.Data.Quoted.Printable(o.ClassName)} (read as inert data; nothing was run)";

    /// <summary>A pickled value as a note shows it: Python's words for None and booleans, numbers and dates
    /// culture-invariant, containers and bytes by their size (never .NET's type names).</summary>
    static string Described(object? value) => value switch
    {
        null => "None",
        bool b => b ? "True" : "False",
        string text => $"'{CrOC.Data.Quoted.Printable(text)}'",
        byte[] bytes => $"{bytes.Length} bytes",
        DateTime time => time.ToString("yyyy-MM-dd HH:mm:ss.FFFFFF", System.Globalization.CultureInfo.InvariantCulture),
        torch.Tensor tensor => $"a {tensor.dtype} tensor of shape [{string.Join(", ", tensor.shape)}]",
        ArrayList list => $"a list of {list.Count}",
        object?[] tuple => $"a tuple of {tuple.Length}",
        HashSet<object> set => $"a set of {set.Count}",
        double number => double.IsNaN(number) ? "nan" : double.IsInfinity(number) ? (number > 0 ? "inf" : "-inf") : number.ToString("R", System.Globalization.CultureInfo.InvariantCulture),
        int or long or System.Numerics.BigInteger or decimal => ((IFormattable)value).ToString(null, System.Globalization.CultureInfo.InvariantCulture),
        Razorvine.Pickle.Objects.ClassDictConstructor reference => $"a reference to {CrOC.Data.Quoted.Printable($"{reference.module}.{reference.name}")}",
        Razorvine.Pickle.IObjectConstructor => "a reference to a function or class",
        _ => "a value of another kind", // Razorvine's own types (a complex number, an exception) print .NET's names
    };

    /// <summary>The tensors of a dictionary by their keys' text, in a stable (sorted) order; other
    /// entries are noted; two keys of one text (1 and '1') are refused.</summary>
    static NamedTensors TensorsOf(Hashtable table, List<string> notes, string where, string path)
    {
        var tensors = new NamedTensors();
        foreach (var (key, value) in table.Cast<DictionaryEntry>().Select(e => (Key: e.Key.ToString() ?? "", e.Value)).OrderBy(e => e.Key, StringComparer.Ordinal))
        {
            if (value is InertObject { UnreadTensor: true } unread) // its network would load without it: refused as what it is
                throw new WeightsException($"{path}: '{where}{key}' is a tensor this reader does not read ({CrOC.Data.Quoted.Printable(unread.ClassName)})");
            if (value is not torch.Tensor t) notes.Add($"'{where}{key}': {(value is InertObject o ? Inert(o) : "not a tensor")}, skipped");
            else if (!tensors.TryAdd(key, t)) throw new WeightsException($"{path}: two keys of '{where}' read as '{key}' (a number and a string?): which one holds the weights is unclear");
        }
        return tensors;
    }
}
