using System.Numerics;

namespace CrOC.Host.Training;

/// <summary>
/// A resumed run's TensorBoard marker. Each start opens a new events file, and the earlier files
/// keep the steps after the resumed checkpoint that the crashed start logged and this one redoes.
/// TensorBoard drops such steps when it reads a SessionLog START event at step s (every event of
/// step ≥ s read before it): this writes one, at the resumed step + 1, into its own events file
/// whose name sorts after the earlier files and before the new writer's.
/// </summary>
public static class TensorBoardRestart
{
    /// <summary>Writes the marker into <paramref name="folder"/> when it holds events files already.</summary>
    public static void Mark(string folder, long resumedAt)
    {
        if (!Directory.Exists(folder) || !Directory.EnumerateFiles(folder, "events.out.tfevents.*").Any()) return;
        double now = (DateTime.UtcNow - DateTime.UnixEpoch).TotalSeconds;
        // TorchSharp names its files events.out.tfevents.TICKS.…: the same clock, read before it opens its file
        var name = $"events.out.tfevents.{DateTime.Now.Ticks}.{Environment.MachineName}.{Environment.ProcessId}.restart";
        Weights.AtomicFile.Write(Path.Combine(folder, name), stream =>
        {
            Record(stream, Event(now, 0, [.. Field(3, "brain.Event:2"u8)])); // file_version (3), as the writer's own files
            Record(stream, Event(now, resumedAt + 1, [.. Field(7, [0x08, 0x01])])); // session_log (7) { status (1): START (1) }
        });
    }

    /// <summary>An Event message: wall_time (1, double), step (2, varint), then <paramref name="what"/>.</summary>
    static byte[] Event(double wallTime, long step, byte[] what)
    {
        var message = new List<byte> { 0x09 };
        message.AddRange(BitConverter.GetBytes(wallTime));
        message.Add(0x10);
        for (ulong v = (ulong)step; ; v >>= 7)
        {
            if (v < 0x80) { message.Add((byte)v); break; }
            message.Add((byte)(v | 0x80));
        }
        message.AddRange(what);
        return [.. message];
    }

    /// <summary>A length-delimited field (fewer than 128 bytes).</summary>
    static IEnumerable<byte> Field(int number, ReadOnlySpan<byte> bytes) => [(byte)(number << 3 | 2), (byte)bytes.Length, .. bytes.ToArray()];

    /// <summary>A TFRecord: length (u64), masked CRC-32C of it, data, masked CRC-32C of the data.</summary>
    static void Record(Stream stream, byte[] data)
    {
        var length = BitConverter.GetBytes((ulong)data.Length);
        stream.Write(length);
        stream.Write(BitConverter.GetBytes(MaskedCrc(length)));
        stream.Write(data);
        stream.Write(BitConverter.GetBytes(MaskedCrc(data)));
    }

    public static uint MaskedCrc(ReadOnlySpan<byte> bytes)
    {
        uint crc = ~0u;
        foreach (var b in bytes) crc = BitOperations.Crc32C(crc, b);
        crc = ~crc;
        return ((crc >> 15) | (crc << 17)) + 0xa282ead8;
    }
}
