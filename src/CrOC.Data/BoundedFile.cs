using System.Text;

namespace CrOC.Data;

/// <summary>Small files (configs, records, lists) read whole, up to a limit: counted as read, never by
/// the length the file system claims (a device's is 0), so that no file can make a reader take
/// more memory than its limit.</summary>
public static class BoundedFile
{
    /// <summary>All of <paramref name="path"/>'s bytes, at most <paramref name="limit"/>, else <see cref="FileTooLargeException"/>.</summary>
    public static byte[] ReadBytes(string path, int limit)
    {
        using var stream = File.OpenRead(path); // blocks on a FIFO until its writer opens it, as `<(…)` needs
        return ReadAtMost(stream, limit) ?? throw new FileTooLargeException(path, limit);
    }

    /// <summary>The rest of <paramref name="stream"/> when it holds at most <paramref name="limit"/> bytes, else
    /// null. Read in chunks, joined at the end: a stream that never ends costs about the limit, one that fits
    /// twice its size (a growing buffer's doublings would cost up to four times the limit).</summary>
    public static byte[]? ReadAtMost(Stream stream, int limit)
    {
        var chunks = new List<(byte[] Bytes, int Count)>();
        long total = 0;
        while (total <= limit)
        {
            var chunk = new byte[1 << 16];
            int read = stream.ReadAtLeast(chunk, chunk.Length, throwOnEndOfStream: false);
            if (read == 0) break;
            chunks.Add((chunk, read));
            total += read;
        }
        if (total > limit) return null;
        var all = new byte[total];
        int at = 0;
        foreach (var (bytes, count) in chunks)
        {
            Array.Copy(bytes, 0, all, at, count);
            at += count;
        }
        return all;
    }

    /// <summary>The text of <paramref name="path"/> as <see cref="File.ReadAllText(string)"/> decodes it (UTF-8
    /// unless a byte-order mark names another encoding), at most <paramref name="limit"/> bytes.</summary>
    public static string ReadText(string path, int limit) => Text(ReadBytes(path, limit));

    /// <summary>As <see cref="Text"/>, or null when bytes without a UTF-16 or UTF-32 byte-order mark are not UTF-8,
    /// <paramref name="badByte"/> then the offset of the first byte that is not (<see cref="Text"/> reads it as U+FFFD).</summary>
    public static string? Utf8Text(byte[] bytes, out int badByte)
    {
        badByte = -1;
        if (bytes is [0xFF, 0xFE, ..] or [0xFE, 0xFF, ..] or [0, 0, 0xFE, 0xFF, ..]) return Text(bytes); // UTF-16 or UTF-32's mark
        var chars = new char[bytes.Length];
        if (System.Text.Unicode.Utf8.ToUtf16(bytes, chars, out int read, out _, replaceInvalidSequences: false) != System.Buffers.OperationStatus.Done)
        {
            badByte = read;
            return null;
        }
        return Text(bytes);
    }

    /// <summary>Bytes as text: UTF-8 unless a byte-order mark names another encoding.</summary>
    public static string Text(byte[] bytes)
    {
        using var reader = new StreamReader(new MemoryStream(bytes), Encoding.UTF8, detectEncodingFromByteOrderMarks: true);
        return reader.ReadToEnd();
    }
}
