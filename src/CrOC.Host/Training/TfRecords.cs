using System.Numerics;

namespace CrOC.Host.Training;

/// <summary>
/// The bytes of TensorBoard's event files: TFRecords (length, masked CRC-32C of it, data, masked
/// CRC-32C of the data) holding Event protobufs, of which only the fields a scalar log uses are
/// encoded here: wall_time (1, double, Unix seconds), step (2, varint), file_version (3),
/// summary (5) and session_log (7).
/// </summary>
public static class TfRecords
{
    /// <summary>Appends one record holding <paramref name="data"/>.</summary>
    public static void Write(Stream stream, byte[] data)
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

    /// <summary>The wall time of an event written now: Unix seconds, with their fraction.</summary>
    public static double Now() => (DateTime.UtcNow - DateTime.UnixEpoch).TotalSeconds;

    /// <summary>An Event message: wall_time, step, then <paramref name="what"/> (its other fields).</summary>
    public static byte[] Event(double wallTime, long step, IEnumerable<byte> what) =>
        [0x09, .. BitConverter.GetBytes(wallTime), 0x10, .. Varint((ulong)step), .. what];

    /// <summary>The file_version event every events file starts with.</summary>
    public static byte[] FileVersion(double wallTime) => Event(wallTime, 0, Field(3, "brain.Event:2"u8.ToArray()));

    /// <summary>A summary (5) of scalars: one value (1) each, { tag (1), simple_value (2, float) }.</summary>
    public static IEnumerable<byte> Scalars(IEnumerable<(string Tag, float Value)> scalars) =>
        Field(5, [.. scalars.SelectMany(s => Field(1, [.. Field(1, System.Text.Encoding.UTF8.GetBytes(s.Tag)), 0x15, .. BitConverter.GetBytes(s.Value)]))]);

    /// <summary>A length-delimited field.</summary>
    public static IEnumerable<byte> Field(int number, byte[] bytes) => [(byte)(number << 3 | 2), .. Varint((ulong)bytes.Length), .. bytes];

    static IEnumerable<byte> Varint(ulong value)
    {
        for (; value >= 0x80; value >>= 7) yield return (byte)(value | 0x80);
        yield return (byte)value;
    }
}
