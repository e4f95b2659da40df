using System.Text.RegularExpressions;
using CrOC.Host.CommandLine;

namespace CrOC.Host.Weights;

/// <summary>
/// Writes a file so that a crash never leaves a half-written file under the final name: the
/// content goes to a temporary file beside it (<see cref="TemporarySuffix"/>), is flushed to disk,
/// then renamed over the target. On failure the temporary file is removed and the target is as it
/// was; a full disk is reported with the space the file needed and the space that was free.
/// </summary>
public static partial class AtomicFile
{
    /// <summary>Temporary files end with this; a run folder's leftovers of a killed writer are
    /// removed at start (<see cref="IsAbandoned"/>).</summary>
    public const string TemporarySuffix = ".tmp";

    /// <summary>Writes the file; <paramref name="expectedBytes"/>, when known, is checked against
    /// the free space first, so a full disk is reported before anything is written. Without
    /// <paramref name="replace"/>, a file that appeared at the path meanwhile (another process's) is
    /// kept and the write refused (<see cref="OutputException"/>): the rename does not replace.</summary>
    public static void Write(string path, Action<Stream> writeContent, long? expectedBytes = null, bool replace = true)
    {
        var full = Path.GetFullPath(path);
        Directory.CreateDirectory(Path.GetDirectoryName(full)!);
        if (expectedBytes is long needed && DiskSpace.Free(full) is long available && available < needed)
            throw new IOException($"no space left on the disk for {full}: it needs {ByteSize.Describe(needed)}, {ByteSize.Describe(available)} free; {Previous(full)}", 28);
        var temporary = $"{full}.{Environment.ProcessId}.{Guid.NewGuid():N}{TemporarySuffix}";
        long written = 0;
        try
        {
            using (var stream = new FileStream(temporary, FileMode.CreateNew, FileAccess.Write, FileShare.None))
            {
                var counting = new CountingStream(stream);
                try { writeContent(counting); }
                finally { written = counting.Count; }
                stream.Flush(flushToDisk: true);
            }
            if (!replace && File.Exists(full)) throw TakenMeanwhile(full);
            try { File.Move(temporary, full, overwrite: replace); }
            catch (IOException) when (!replace && File.Exists(full)) { throw TakenMeanwhile(full); }
        }
        catch (IOException e) when (DiskSpace.IsDiskFull(e))
        {
            var free = DiskSpace.Free(full);
            var need = expectedBytes is long n ? $"it needs {ByteSize.Describe(n)}" : $"{ByteSize.Describe(written)} were written before the disk filled";
            throw new IOException($"no space left on the disk for {full}: {need}, {(free is long f ? ByteSize.Describe(f) : "an unknown amount")} free now; {Previous(full)}", e.HResult);
        }
        finally
        {
            try { if (File.Exists(temporary)) File.Delete(temporary); }
            catch (IOException) { /* a leftover is removed at the next start */ }
        }
    }

    /// <summary>What a failed write left at <paramref name="full"/>.</summary>
    static string Previous(string full) => File.Exists(full) ? "the previous file is intact" : "nothing was written there";

    /// <summary>Whether <paramref name="path"/> is one of this class's temporary files
    /// (TARGET.PID.GUID.tmp) whose writing process is no longer running.</summary>
    public static bool IsAbandoned(string path) =>
        TemporaryName().Match(Path.GetFileName(path)) is { Success: true } match && int.TryParse(match.Groups[1].ValueSpan, out var pid) && !Runtime.Processes.IsRunning(pid);

    [GeneratedRegex(@"\.([0-9]+)\.[0-9a-f]{32}\.tmp$")]
    private static partial Regex TemporaryName();

    public static void WriteAllText(string path, string text, bool replace = true) => Write(path, s => s.Write(System.Text.Encoding.UTF8.GetBytes(text)), replace: replace);

    /// <summary>The refusal of a write whose path another process took meanwhile (the rename does not replace).</summary>
    public static OutputException TakenMeanwhile(string path) =>
        new($"'{path}' was written by another process while this one wrote it: kept; choose another --output, or add --overwrite to replace it");

    /// <summary>Counts the bytes written through it (to report how much a file needed).</summary>
    sealed class CountingStream(Stream inner) : Stream
    {
        public long Count { get; private set; }
        public override bool CanRead => false;
        public override bool CanSeek => false;
        public override bool CanWrite => true;
        public override long Length => Count;
        public override long Position { get => Count; set => throw new NotSupportedException(); }
        public override void Flush() => inner.Flush();
        public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException();
        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
        public override void SetLength(long value) => throw new NotSupportedException();
        public override void Write(byte[] buffer, int offset, int count) { inner.Write(buffer, offset, count); Count += count; }
        public override void Write(ReadOnlySpan<byte> buffer) { inner.Write(buffer); Count += buffer.Length; }
        public override void WriteByte(byte value) { inner.WriteByte(value); Count++; }
    }
}
