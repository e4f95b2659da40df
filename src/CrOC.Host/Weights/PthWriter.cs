using System.IO.Compression;
using System.Text;
using TorchSharp;

namespace CrOC.Host.Weights;

/// <summary>
/// Writes a state dict as a PyTorch `.pth` (the zip format of `torch.save`): `archive/data.pkl`
/// is a protocol-2 pickle of a dict {name: tensor}, each tensor a `torch._utils._rebuild_tensor_v2`
/// call on a persistent storage `archive/data/{i}`; entries are stored uncompressed.
/// `torch.load` (also with weights_only=True) reads it back.
/// </summary>
public static class PthWriter
{
    public static void Write(string path, NamedTensors tensors, bool replace = true) => AtomicFile.WriteTogether([Content(path, tensors)], replace);

    /// <summary>The file at <paramref name="path"/> as one part of an atomic write; its expected size is
    /// the tensors' bytes, a lower bound (the zip's headers and the pickle come on top).</summary>
    public static AtomicFile.Content Content(string path, NamedTensors tensors) =>
        new(path, stream => Write(stream, tensors), tensors.Values.Sum(t => t.NumberOfElements * t.ElementSize));

    public static void Write(Stream stream, NamedTensors tensors)
    {
        using var archive = new ZipArchive(stream, ZipArchiveMode.Create, leaveOpen: true);
        var pickle = new MemoryStream();
        var blobs = new List<byte[]>();
        pickle.Write([0x80, 0x02, (byte)'}', (byte)'(']); // PROTO 2, EMPTY_DICT, MARK
        foreach (var (name, tensor) in tensors)
        {
            Unicode(pickle, name);
            TensorRecord(pickle, tensor, blobs.Count.ToString(System.Globalization.CultureInfo.InvariantCulture));
            blobs.Add(DTypes.BytesOf(tensor));
        }
        pickle.Write([(byte)'u', (byte)'.']); // SETITEMS, STOP

        Entry(archive, "archive/data.pkl", pickle.ToArray());
        Entry(archive, "archive/byteorder", "little"u8.ToArray());
        for (int i = 0; i < blobs.Count; i++) Entry(archive, $"archive/data/{i}", blobs[i]);
        Entry(archive, "archive/version", "3\n"u8.ToArray());
    }

    /// <summary>Every entry's modification time: the zip format's earliest, so that the same tensors
    /// always give the same bytes.</summary>
    public static readonly DateTimeOffset EntryTime = new(1980, 1, 1, 0, 0, 0, TimeSpan.Zero);

    static void Entry(ZipArchive archive, string name, byte[] content)
    {
        var entry = archive.CreateEntry(name, CompressionLevel.NoCompression);
        entry.LastWriteTime = EntryTime;
        using var stream = entry.Open();
        stream.Write(content);
    }

    /// <summary>_rebuild_tensor_v2(PERSID(('storage', torch.XStorage, key, 'cpu', numel)), 0, shape, stride, False, OrderedDict()).</summary>
    static void TensorRecord(MemoryStream p, torch.Tensor tensor, string key)
    {
        Global(p, "torch._utils", "_rebuild_tensor_v2");
        p.WriteByte((byte)'(');                       // MARK: the argument tuple
        p.WriteByte((byte)'(');                       // MARK: the persistent id
        Unicode(p, "storage");
        Global(p, "torch", DTypes.ToStorage(tensor.dtype));
        Unicode(p, key);
        Unicode(p, "cpu");
        Int(p, tensor.NumberOfElements);
        p.Write([(byte)'t', (byte)'Q']);              // TUPLE, BINPERSID
        Int(p, 0);                                    // storage offset
        Ints(p, tensor.shape);
        Ints(p, ContiguousStrides(tensor.shape));
        p.WriteByte(0x89);                            // NEWFALSE: requires_grad
        Global(p, "collections", "OrderedDict");
        p.Write([(byte)')', (byte)'R']);              // EMPTY_TUPLE, REDUCE: backward hooks
        p.Write([(byte)'t', (byte)'R']);              // TUPLE, REDUCE
    }

    static long[] ContiguousStrides(long[] shape)
    {
        var strides = new long[shape.Length];
        long step = 1;
        for (int i = shape.Length - 1; i >= 0; i--) { strides[i] = step; step *= shape[i]; }
        return strides;
    }

    static void Global(MemoryStream p, string module, string name)
    {
        p.WriteByte((byte)'c');
        p.Write(Encoding.ASCII.GetBytes($"{module}\n{name}\n"));
    }

    static void Unicode(MemoryStream p, string text)
    {
        var bytes = Encoding.UTF8.GetBytes(text);
        p.WriteByte((byte)'X');
        p.Write(BitConverter.GetBytes((uint)bytes.Length));
        p.Write(bytes);
    }

    static void Int(MemoryStream p, long value)
    {
        if (value is >= int.MinValue and <= int.MaxValue)
        {
            p.WriteByte((byte)'J');
            p.Write(BitConverter.GetBytes((int)value));
        }
        else
        {
            p.Write([0x8a, 8]); // LONG1, 8 bytes little-endian two's complement
            p.Write(BitConverter.GetBytes(value));
        }
    }

    static void Ints(MemoryStream p, long[] values)
    {
        p.WriteByte((byte)'(');
        foreach (var v in values) Int(p, v);
        p.WriteByte((byte)'t');
    }
}
