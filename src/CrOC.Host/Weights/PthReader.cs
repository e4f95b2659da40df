using System.Collections;
using System.IO.Compression;
using System.Text.RegularExpressions;
using CrOC.Data;
using Razorvine.Pickle;
using Razorvine.Pickle.Objects;
using TorchSharp;

namespace CrOC.Host.Weights;

/// <summary>An object of a Python class the reader does not know (e.g. the `args` namespace of an
/// official checkpoint), kept as inert data: its class name and pickled state, never executed.
/// <paramref name="UnreadTensor"/>: it stands for a tensor that was not read (a dtype or a subclass this reader does not read).</summary>
public sealed record InertObject(string ClassName, IDictionary State, bool UnreadTensor = false);

/// <summary>
/// Reads PyTorch `.pth` files (the zip format of `torch.save` since PyTorch 1.6) without running
/// any code: the pickle is interpreted by Razorvine.Pickle, which only builds tensors (through the
/// constructors registered here), containers and plain values; other classes become
/// <see cref="InertObject"/>s. Untrusted input: sizes are checked against the archive (exactly:
/// dtype × elements must equal the stored bytes) before any tensor is made, every shape and offset
/// with checked arithmetic; the pickle may be at most <see cref="MaxPickleBytes"/>, nested at most
/// <see cref="MaxDepth"/> deep and hold at most <see cref="MaxObjects"/> objects (a deep or
/// self-referencing pickle cannot exhaust the stack, a shared-reference bomb cannot exhaust the time):
/// before unpickling, <see cref="PickleScan"/> bounds the values, marks and memo entries its opcodes
/// make (keys and call arguments too) and its integers' widths; after, the tree is measured, counting
/// each path to a shared object.
/// </summary>
public static partial class PthReader
{
    public const long MaxPickleBytes = 256L << 20;
    public const int MaxDepth = 64;
    public const long MaxObjects = 10_000_000;
    /// <summary>The most bytes deflate can expand one stored byte to (torch.save stores storages uncompressed: 1).</summary>
    const long MaxDeflateRatio = 1032;

    static PthReader()
    {
        Unpickler.registerConstructor("torch._utils", "_rebuild_tensor", new RebuildTensor());
        Unpickler.registerConstructor("torch._utils", "_rebuild_tensor_v2", new RebuildTensor());
        Unpickler.registerConstructor("torch._utils", "_rebuild_parameter", new RebuildParameter());
        Unpickler.registerConstructor("torch._utils", "_rebuild_parameter_with_state", new RebuildParameter()); // PyTorch 2: a Parameter with Python attributes
        Unpickler.registerConstructor("torch._tensor", "_rebuild_from_type_v2", new RebuildFromType());
        Unpickler.registerConstructor("collections", "OrderedDict", new NewDictionary());
        Unpickler.registerConstructor("collections", "defaultdict", new NewDictionary());
        Unpickler.registerConstructor("collections", "deque", new NewList()); // a loss history: APPENDS fill it
        Unpickler.registerConstructor("datetime", "datetime", new AwareDateTime(ArchiveUnpickler.Registered("datetime.datetime")));
    }

    /// <summary>The most functions or classes without a constructor one file's pickle may call: each is met by
    /// reading the pickle again (Razorvine names one per attempt), after which it is an <see cref="InertCall"/>.</summary>
    const int MaxUnknownCalls = 32;

    /// <summary>The most pickle bytes one file's readings may parse in all (twice the largest pickle).</summary>
    const long ReadingsBudget = 2 * MaxPickleBytes;

    /// <summary>Held while constructors are registered and pickles read: Razorvine keeps its constructors in one static table.</summary>
    static readonly object Registry = new();

    /// <summary>A reader's failure in words: an early end, a damaged zip, else its message's first line (without .NET's type names).</summary>
    static string Reason(Exception e) => e switch
    {
        EndOfStreamException => "it ends early: truncated?",
        InvalidDataException => $"not a whole zip archive, as torch.save writes: {e.Message.Split('\n')[0]}",
        // an inert call is a dictionary: the APPENDS of a list subclass's items cannot land in it (.NET's cast error once)
        InvalidCastException when e.Message.Contains(nameof(InertCall), StringComparison.Ordinal) => "its pickle adds items to an object of a class this reader does not know (a list subclass?), which it cannot keep as inert data; nothing was run",
        _ => e.Message.Split('\n')[0],
    };

    /// <summary>The unpickled object tree: dictionaries are <see cref="Hashtable"/>s, lists
    /// <see cref="ArrayList"/>s, tuples object[]s, tensors <see cref="torch.Tensor"/>s.</summary>
    public static object? Read(string path)
    {
        try
        {
            using var stream = File.OpenRead(path);
            return Read(stream);
        }
        catch (WeightsException e)
        {
            throw new WeightsException($"{path}: {e.Message}");
        }
        catch (Exception e)
        {
            // Whatever a malformed archive or pickle makes the readers throw is a refusal, not a crash.
            throw new WeightsException($"{path}: not a readable PyTorch file ({Reason(e)})");
        }
    }

    /// <summary>Razorvine's refusal of a class or function it has no constructor for, naming it: "… construction of ClassDict (for posix.system) …".</summary>
    [GeneratedRegex(@"construction of ClassDict \(for ([^)]+)\)")]
    private static partial Regex UnknownCall();

    /// <summary>How the legacy format starts: PROTO 2, then its magic number 0x1950a86a20f9469cfc6c pickled as LONG1.</summary>
    static readonly byte[] LegacyStart = [0x80, 0x02, 0x8a, 0x0a, 0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19];

    /// <summary>Whether a file of <paramref name="length"/> bytes starts as a safetensors file does: a little-endian
    /// header length that fits the file, then the header's '{'.</summary>
    static bool LooksLikeSafetensors(ReadOnlySpan<byte> start, long length) =>
        start.Length > 8 && start[8] == (byte)'{' && BitConverter.ToUInt64(start[..8]) is var header && header >= 2 && header <= (ulong)(length - 8);

    public static object? Read(Stream stream)
    {
        Span<byte> start = stackalloc byte[LegacyStart.Length]; // the zip signature, or what else the file is
        stream.ReadExactly(start[..4]); // shorter than a signature: no readable file
        start = start[..(4 + stream.ReadAtLeast(start[4..], start.Length - 4, throwOnEndOfStream: false))];
        if (start is not [0x50, 0x4b, 0x03, 0x04, ..])
            throw new WeightsException(LooksLikeSafetensors(start, stream.Length)
                ? "a safetensors file (a header length, then JSON), not a PyTorch .pth: give it a .safetensors name" // called a legacy PyTorch file once
                : start.SequenceEqual(LegacyStart) // "not a PyTorch file … re-save with a recent PyTorch" once, which writes it so too when asked
                    ? "a PyTorch file in the legacy format (a bare pickle, as torch.save(..., _use_new_zipfile_serialization=False) writes), which this tool does not read: save it again without that option (the zip format, PyTorch's default since 1.6)"
                    : "not a PyTorch file (torch.save writes a zip archive since PyTorch 1.6)");
        stream.Position = 0;
        using var archive = new ZipArchive(stream, ZipArchiveMode.Read, leaveOpen: true);
        static bool Named(ZipArchiveEntry e, string name) => e.FullName.EndsWith("/" + name, StringComparison.Ordinal) || e.FullName == name;
        // its data.pkl is a scripted module's state ("holds no dictionary" once), its code in code/
        if (archive.Entries.Any(e => Named(e, "constants.pkl")))
            throw new WeightsException("a TorchScript archive (torch.jit.save), not weights as torch.save writes them: save the model's state_dict() with torch.save");
        var pickle = archive.Entries.FirstOrDefault(e => Named(e, "data.pkl")) ?? throw new WeightsException("the archive has no data.pkl");
        if (pickle.Length > MaxPickleBytes) throw new WeightsException($"the pickle has {pickle.Length} bytes, more than the limit of {MaxPickleBytes}");
        var prefix = pickle.FullName[..^"data.pkl".Length];
        if (archive.GetEntry(prefix + "byteorder") is { } order)
        {
            using var content = order.Open();
            var head = new byte[16]; // "little" or "big": the rest of a longer entry is never read
            var byteOrder = System.Text.Encoding.ASCII.GetString(head, 0, content.ReadAtLeast(head, head.Length, throwOnEndOfStream: false)).Trim();
            if (byteOrder == "big") throw new WeightsException("its storages are big-endian; only little-endian files are read (re-save it on a little-endian machine)");
            if (byteOrder != "little") throw new WeightsException("its byteorder entry says neither 'little' nor 'big' (a damaged archive)");
        }
        // From memory, not the entry's stream: Razorvine's stream reader allocates whatever length an
        // opcode claims before reading it (a flipped bit in a string's length: a 1 GB array), while
        // its array reader only slices what is there.
        var bytes = PickleBytes(pickle);
        PickleScan.Check(bytes, MaxObjects);
        return InertCopy.Of(Unpickle(bytes, archive, prefix, stream.Length));
    }

    /// <summary>The pickle's tree; a call of a function or class without a constructor (a numpy scalar beside the
    /// weights refused the whole file once) is registered as an <see cref="InertCall"/> and the pickle read again,
    /// its storages kept from the attempt before and the tensors a failed attempt built freed; the registrations
    /// are this file's alone (removed as it ends: what a file holds never changes how the next one reads).</summary>
    static object Unpickle(byte[] bytes, ZipArchive archive, string prefix, long archiveBytes)
    {
        var storages = new Dictionary<string, Storage>();
        var madeInert = new List<string>();
        // each name is one more reading of the pickle: at most MaxUnknownCalls, and at most ReadingsBudget bytes in all
        long mostReadings = System.Math.Min(MaxUnknownCalls, ReadingsBudget / System.Math.Max(1, bytes.Length));
        lock (Registry)
            try
            {
                while (true)
                {
                    foreach (var storage in storages.Values) storage.Materialised = 0; // the views bound holds for each reading
                    using var attempt = torch.NewDisposeScope();
                    try
                    {
                        using var unpickler = new ArchiveUnpickler(archive, prefix, archiveBytes, storages);
                        var tree = unpickler.loads(bytes);
                        attempt.MoveToOuter(attempt.DisposablesView.ToList());
                        return tree;
                    }
                    catch (PickleException e) when (UnknownCall().Match(e.Message) is { Success: true } call)
                    {
                        var name = call.Groups[1].Value;
                        int dot = name.LastIndexOf('.');
                        // Razorvine keys a constructor by "module.name", so any split registers it; a name the pattern cut
                        // short (a ')' inside it) would come back: refused rather than read again
                        if (dot <= 0 || madeInert.Contains(name))
                            throw new WeightsException($"its pickle calls '{Quoted.Printable(name)}', which this reader cannot keep as inert data (refused; nothing was run)");
                        if (madeInert.Count >= mostReadings)
                            throw new WeightsException($"its pickle of {bytes.Length:N0} bytes calls more than {mostReadings} functions or classes that a weights file does not need, each one more reading of it (refused; nothing was run)");
                        Unpickler.registerConstructor(name[..dot], name[(dot + 1)..], new InertCall.Constructor(name));
                        madeInert.Add(name);
                    }
                }
            }
            finally { ArchiveUnpickler.Forget(madeInert); }
    }

    /// <summary>The pickle's bytes as they arrive, at most <see cref="MaxPickleBytes"/>: not sized by the
    /// length the zip directory claims, which a damaged directory sets to anything.</summary>
    static byte[] PickleBytes(ZipArchiveEntry pickle)
    {
        using var stream = pickle.Open();
        return BoundedFile.ReadAtMost(stream, (int)MaxPickleBytes) ?? throw new WeightsException($"the pickle has more than {MaxPickleBytes} bytes, the limit");
    }

    /// <summary>A copy of the unpickled tree in which Razorvine's ClassDicts of unknown classes are
    /// <see cref="InertObject"/>s; refuses trees deeper than <see cref="MaxDepth"/> or larger than
    /// <see cref="MaxObjects"/> nodes (counting shared references each time they are reached) before
    /// copying anything: 30 levels of 10 references to one list are 10³⁰ paths in 539 bytes, whose copy
    /// allocated 2.9 GB before reaching the limit.</summary>
    static class InertCopy
    {
        public static object? Of(object? root)
        {
            long visited = 0;
            Measure(root, 0, ref visited);
            return Copy(root);
        }

        /// <summary>Visits the tree as <see cref="Copy"/> will, allocating nothing but dictionary enumerators.</summary>
        static void Measure(object? value, int depth, ref long visited)
        {
            if (++visited > MaxObjects) throw new WeightsException($"the pickle holds more than {MaxObjects} objects");
            if (depth > MaxDepth && value is ClassDict or Hashtable or ArrayList or object?[])
                throw new WeightsException($"the pickle is nested deeper than {MaxDepth} levels");
            switch (value)
            {
                case IDictionary table: // a ClassDict too
                    foreach (DictionaryEntry entry in table) Measure(entry.Value, depth + 1, ref visited);
                    break;
                case ArrayList list:
                    for (int i = 0; i < list.Count; i++) Measure(list[i], depth + 1, ref visited);
                    break;
                case object?[] tuple:
                    foreach (var item in tuple) Measure(item, depth + 1, ref visited);
                    break;
            }
        }

        static object? Copy(object? value) => value switch
        {
            ClassDict dict => new InertObject(dict.ClassName, Table(dict)),
            ClassDictConstructor constructor => new InertObject($"{constructor.module}.{constructor.name}", new Hashtable()),
            InertCall call => new InertObject(call.ClassName, Table(call), call.UnreadTensor),
            Hashtable table => Table(table),
            ArrayList list => new ArrayList(list.Cast<object?>().Select(Copy).ToList()),
            object?[] tuple => tuple.Select(Copy).ToArray(),
            _ => value,
        };

        static Hashtable Table(IDictionary table)
        {
            var copy = new Hashtable();
            foreach (DictionaryEntry entry in table) copy[entry.Key] = Copy(entry.Value);
            return copy;
        }
    }

    /// <summary>Storage bytes behind the persistent ids ('storage', type, key, location, numel).</summary>
    /// <remarks>Views of it may together materialise at most <see cref="MaxViewsPerStorage"/> × its
    /// elements (tied weights, qkv slices): a small pickle cannot rebuild a large storage over and over.</remarks>
    sealed class Storage(torch.ScalarType type, long elements, byte[] data)
    {
        public const long MaxViewsPerStorage = 4;
        public torch.ScalarType Type { get; } = type;
        public long Elements { get; } = elements;
        public byte[] Data { get; } = data;
        /// <summary>Elements its views have built so far (mutable: one reader's count).</summary>
        public long Materialised { get; set; }
    }

    /// <remarks><paramref name="archiveBytes"/>: the file's length, which bounds what its zip directory may claim.</remarks>
    /// <remarks><paramref name="storages"/>: those read so far, by key (kept across a file's attempts).</remarks>
    sealed class ArchiveUnpickler(ZipArchive archive, string prefix, long archiveBytes, Dictionary<string, Storage> storages) : Unpickler
    {
        /// <summary>The constructor registered for "module.name" (Razorvine's own, before this reader registers its own).</summary>
        public static IObjectConstructor Registered(string name) => objectConstructors[name];

        /// <summary>Removes the constructors registered for a file ("module.name"), under <see cref="Registry"/>.</summary>
        public static void Forget(IEnumerable<string> names)
        {
            foreach (var name in names) objectConstructors.Remove(name);
        }

        protected override object persistentLoad(object pid)
        {
            if (pid is not object[] { Length: >= 5 } id || id[0] as string != "storage")
                throw new WeightsException("unknown persistent id in the pickle");
            var typeName = id[1] switch
            {
                ClassDictConstructor c => c.name,
                ClassDict d => d.ClassName.Split('.')[^1],
                _ => throw new WeightsException("unknown storage type in the pickle"),
            };
            // torch writes the key as text; a huge integer there took minutes to format (a 1.6 KB file: 136 s)
            var key = id[2] as string ?? throw new WeightsException("a storage key in the pickle that is not text");
            long elements = Convert.ToInt64(id[4]);
            if (storages.TryGetValue(key, out var known)) return known;
            // its tensors become inert (a complex tensor in an optimiser's state refused the whole file once)
            if (!DTypes.ReadsStorage(typeName)) return new UnreadStorage(typeName);
            var type = DTypes.FromStorage(typeName);
            if (elements < 0) throw new WeightsException($"storage '{key}' has {elements} elements");
            long bytes = checked(elements * DTypes.Size(type));
            var entry = archive.GetEntry($"{prefix}data/{key}") ?? throw new WeightsException($"storage '{key}' is missing from the archive");
            if (entry.Length != bytes || bytes > int.MaxValue)
                throw new WeightsException($"storage '{key}' holds {entry.Length} bytes, but {elements} {type} elements need {bytes}");
            // Checked before the array is made: a damaged directory's claim is bounded by the bytes that are there
            // (its claimed compressed size too: at most the file's)
            long archived = System.Math.Min(entry.CompressedLength, archiveBytes);
            if (bytes > archived * MaxDeflateRatio)
                throw new WeightsException($"storage '{key}' claims {bytes} bytes, more than its {archived} bytes in the archive can hold (a damaged archive)");
            var data = new byte[bytes];
            using (var content = entry.Open()) content.ReadExactly(data);
            return storages[key] = new Storage(type, elements, data);
        }
    }

    /// <summary>A storage of a dtype <see cref="DTypes"/> does not read: not read; its tensors are <see cref="InertCall"/>s.</summary>
    sealed record UnreadStorage(string TypeName);

    /// <summary>torch._utils._rebuild_tensor_v2(storage, offset, size, stride, requires_grad, hooks, ...).</summary>
    sealed class RebuildTensor : IObjectConstructor
    {
        public object construct(object[] args)
        {
            if (args is [UnreadStorage unread, ..]) return new InertCall($"torch.Tensor of {unread.TypeName} (a dtype this reader does not read)", unreadTensor: true);
            if (args.Length < 4 || args[0] is not Storage storage)
                throw new WeightsException("malformed tensor record in the pickle");
            long offset = Convert.ToInt64(args[1]);
            var shape = ((object[])args[2]).Select(Convert.ToInt64).ToArray();
            var stride = ((object[])args[3]).Select(Convert.ToInt64).ToArray();
            if (shape.Length != stride.Length || offset < 0 || shape.Any(n => n < 0) || stride.Any(s => s < 0))
                throw new WeightsException("a tensor record has a bad shape, stride or offset");
            long last = checked(offset + shape.Zip(stride, (n, s) => n == 0 ? 0 : checked((n - 1) * s)).Sum());
            if (shape.All(n => n > 0) && last >= storage.Elements)
                throw new WeightsException("a tensor reaches outside its storage");
            // stride 0 or overlapping strides would let a few stored values become gigabytes
            long elements = shape.Aggregate(1L, (n, d) => checked(n * d));
            if (elements > storage.Elements - offset)
                throw new WeightsException($"a tensor of {elements} elements is built from {storage.Elements - offset} stored ones (repeated or overlapping strides)");
            storage.Materialised = checked(storage.Materialised + elements);
            if (storage.Materialised > Storage.MaxViewsPerStorage * storage.Elements)
                throw new WeightsException($"the pickle rebuilds one storage into more than {Storage.MaxViewsPerStorage}× its size");
            using var scope = torch.NewDisposeScope();
            var flat = DTypes.FromBytes(storage.Type, [storage.Elements], storage.Data);
            return flat.as_strided(shape, stride, offset).contiguous().clone().MoveToOuterDisposeScope();
        }
    }

    /// <summary>torch._utils._rebuild_parameter(data, requires_grad, hooks): the data tensor.</summary>
    sealed class RebuildParameter : IObjectConstructor
    {
        public object construct(object[] args) => args.Length > 0 && args[0] is torch.Tensor t ? t : throw new WeightsException("malformed parameter record");
    }

    /// <summary>torch._tensor._rebuild_from_type_v2(func, new_type, args, state) (PyTorch 2: a tensor or Parameter
    /// with Python attributes): func(*args), a tensor rebuild, the attributes dropped, where the type is a Parameter or
    /// a plain tensor; another type (a subclass whose attributes may change what its values mean) is inert data.</summary>
    sealed class RebuildFromType : IObjectConstructor
    {
        public object construct(object[] args) => args switch
        {
            [IObjectConstructor rebuild and (RebuildTensor or RebuildParameter), ClassDictConstructor { module: "torch.nn.parameter", name: "Parameter" } or ClassDictConstructor { module: "torch" or "torch._tensor", name: "Tensor" }, object[] inner, ..] => rebuild.construct(inner),
            [IObjectConstructor and (RebuildTensor or RebuildParameter), ClassDictConstructor type, object[], ..] => new InertCall($"{type.module}.{type.name} (a tensor subclass, not read)", unreadTensor: true),
            _ => throw new WeightsException("malformed tensor record in the pickle (a rebuild from a type)"),
        };
    }

    /// <summary>datetime.datetime(bytes, tzinfo), a date with its time zone (Razorvine reads naive ones alone: "expected 1 or 7
    /// args, got 2" refused the whole file once): its naive part, as Razorvine reads it; the zone is dropped.</summary>
    sealed class AwareDateTime(IObjectConstructor naive) : IObjectConstructor
    {
        public object construct(object[] args) => naive.construct(args is [byte[] or string, _] ? [args[0]] : args);
    }

    /// <summary>collections.deque(…) as a list, which APPENDS fills.</summary>
    sealed class NewList : IObjectConstructor
    {
        public object construct(object[] args) => new ArrayList();
    }

    /// <summary>collections.OrderedDict() as a <see cref="PickledOrderedDict"/>, which SETITEMS fills.</summary>
    sealed class NewDictionary : IObjectConstructor
    {
        public object construct(object[] args) => new PickledOrderedDict();
    }

    /// <summary>An OrderedDict's items. `nn.Module.state_dict()` sets an attribute, `_metadata` (module
    /// versions), which pickle restores with BUILD → __setstate__({'_metadata': …}): not needed, dropped.</summary>
    sealed class PickledOrderedDict : Hashtable
    {
        public void __setstate__(Hashtable state) { }
    }
}
