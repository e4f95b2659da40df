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

    /// <summary>The temporary files being written now, by any thread: what a stop signal removes
    /// before the process ends (an export stopped between its files left them once).</summary>
    static readonly HashSet<string> Live = [];

    /// <summary>Guards <see cref="Live"/>, a write's renames and <see cref="abandonedWith"/>: a stop
    /// signal's cleanup waits for renames in progress (a set of files is renamed whole or not at all).</summary>
    static readonly object Gate = new();

    /// <summary>The exit code of the stop signal that abandoned every write (<see cref="Abandon"/>), or null.</summary>
    static int? abandonedWith;

    /// <summary>One file of a write: where it goes, what writes its content, and its size (or a lower bound on it) when known.</summary>
    public sealed record Content(string Path, Action<Stream> WriteContent, long? ExpectedBytes = null);

    /// <summary>Writes the file; <paramref name="expectedBytes"/>, when known, is checked against
    /// the free space first, so a full disk is reported before anything is written. Without
    /// <paramref name="replace"/>, a file that appeared at the path meanwhile (another process's) is
    /// kept and the write refused (<see cref="OutputException"/>): the rename does not replace. With
    /// <paramref name="replaceOnlyIf"/>, a file found at the path when the write ends is replaced
    /// only when it passes (an earlier result of the command), else kept and the write refused.</summary>
    public static void Write(string path, Action<Stream> writeContent, long? expectedBytes = null, bool replace = true, Func<string, bool>? replaceOnlyIf = null) =>
        WriteTogether([new Content(path, writeContent, expectedBytes)], replace, replaceOnlyIf);

    /// <summary>Writes several files as one: each is written and flushed under its temporary name,
    /// and only when all are written are they renamed into place, so a failure while writing leaves
    /// none of them new (and with <paramref name="replace"/>, the earlier set whole). The sizes known
    /// are checked together against the free space of the first file's disk. <paramref name="replaceOnlyIf"/>
    /// as in <see cref="Write"/>. A target named twice (a, ./a) is written once, with its first content.</summary>
    public static void WriteTogether(IReadOnlyList<Content> files, bool replace = true, Func<string, bool>? replaceOnlyIf = null)
    {
        files = [.. files.DistinctBy(f => Path.GetFullPath(f.Path))]; // its second rename was refused as another process's file once (eval-seg, a split naming an image twice)
        var targets = files.Select(f => Path.GetFullPath(f.Path)).ToList();
        var previous = targets.Count == 1 ? Previous(targets[0]) : "none of the files was written or replaced";
        var needed = files.Sum(f => f.ExpectedBytes ?? 0);
        foreach (var target in targets) Directory.CreateDirectory(Path.GetDirectoryName(target)!);
        if (needed > 0 && DiskSpace.Free(targets[0]) is long available && available < needed && ByteSize.Apart(needed, available) is var (need, free))
            throw new IOException($"no space left on the disk for {string.Join(", ", targets)}: {(targets.Count == 1 ? "it needs" : "they need")} at least {need}, {free} free; {previous}", 28);
        var temporaries = targets.Select(TemporaryName).ToList();
        lock (Gate)
        {
            if (abandonedWith is int code) throw new StoppedBySignalException(code);
            Live.UnionWith(temporaries);
        }
        try
        {
            for (int i = 0; i < files.Count; i++) WriteFlushed(temporaries[i], targets[i], files[i], previous);
            // checked at the start too; a file another process wrote there while this one worked is kept
            var present = targets.Select(File.Exists).ToArray();
            if (!replace && Array.IndexOf(present, true) is var taken and >= 0) throw TakenMeanwhile(targets[taken]);
            if (replaceOnlyIf is not null && targets.Where((t, i) => present[i] && !replaceOnlyIf(t)).FirstOrDefault() is { } other)
                throw Foreign(other);
            lock (Gate)
            {
                if (abandonedWith is int code) throw new StoppedBySignalException(code); // its temporaries are gone
                // a target absent at the check is not replaced either, should one appear since (in one
                // step: NoReplaceRename). Those go first, so that a path taken meanwhile refuses the
                // write before any earlier file is replaced, and the new files already in place are
                // taken back; the last file listed goes last whatever it is (eval-seg's JSON marks its
                // masks done).
                var overwrite = targets.Select((_, i) => replace && (replaceOnlyIf is null || present[i])).ToArray();
                var placed = new List<string>();
                try
                {
                    foreach (int i in Enumerable.Range(0, files.Count).OrderBy(i => i == files.Count - 1 ? 2 : overwrite[i] ? 1 : 0))
                    {
                        if (overwrite[i]) File.Move(temporaries[i], targets[i], overwrite: true);
                        else if (NoReplaceRename.TryMove(temporaries[i], targets[i])) placed.Add(targets[i]);
                        else throw replace ? Foreign(targets[i]) : TakenMeanwhile(targets[i]);
                    }
                }
                catch
                {
                    foreach (var target in placed)
                        try { File.Delete(target); }
                        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { /* the refusal is what the user needs */ }
                    throw;
                }
            }
        }
        finally
        {
            foreach (var temporary in temporaries)
            {
                try { if (File.Exists(temporary)) File.Delete(temporary); }
                catch (IOException) { /* a leftover is removed at the next start */ }
            }
            lock (Gate) Live.ExceptWith(temporaries);
        }
    }

    /// <summary>For a process a stop signal is ending (exit <paramref name="exitCode"/>): waits for the
    /// renames in progress, removes the temporary files of the writes in progress (their targets stay
    /// as they were), and makes every later step of a write throw <see cref="StoppedBySignalException"/>;
    /// returns how many files it removed.</summary>
    public static int Abandon(int exitCode)
    {
        lock (Gate)
        {
            abandonedWith = exitCode;
            int removed = 0;
            foreach (var temporary in Live)
                try { if (File.Exists(temporary)) { File.Delete(temporary); removed++; } }
                catch (Exception e) when (e is IOException or UnauthorizedAccessException) { /* a leftover is removed at the next start */ }
            Live.Clear();
            return removed;
        }
    }

    /// <summary>Undoes <see cref="Abandon"/>, for a process that goes on after it (a test's).</summary>
    public static void ResumeAfterAbandon()
    {
        lock (Gate) abandonedWith = null;
    }

    /// <summary>Writes <paramref name="file"/>'s content to <paramref name="temporary"/> and flushes it
    /// to disk; a full disk is reported with what the file needed and what is free.</summary>
    static void WriteFlushed(string temporary, string target, Content file, string previous)
    {
        long written = 0;
        try
        {
            using var stream = new FileStream(temporary, FileMode.CreateNew, FileAccess.Write, FileShare.None);
            var counting = new CountingStream(stream);
            try { file.WriteContent(counting); }
            finally { written = counting.Count; }
            stream.Flush(flushToDisk: true);
        }
        catch (IOException e) when (DiskSpace.IsDiskFull(e))
        {
            var free = DiskSpace.Free(target);
            var need = file.ExpectedBytes is long n ? $"it needs at least {ByteSize.Describe(n)}" : $"{ByteSize.Describe(written)} were written before the disk filled";
            throw new IOException($"no space left on the disk for {target}: {need}, {(free is long f ? ByteSize.Describe(f) : "an unknown amount")} free now; {previous}", e.HResult);
        }
    }

    /// <summary>TARGET.PID.GUID.tmp beside the target; where that is past the path limits (a name
    /// within 44 bytes of them), the hidden .PID.GUID.tmp in the same folder, which fits whenever the
    /// folder keeps its room (<see cref="CommandLine.PathLimits.RoomBelowFolder"/>).</summary>
    static string TemporaryName(string target)
    {
        var unique = $"{Environment.ProcessId}.{Guid.NewGuid():N}{TemporarySuffix}";
        var beside = $"{target}.{unique}";
        return CommandLine.PathLimits.Fits(beside) ? beside : Path.Combine(Path.GetDirectoryName(target)!, "." + unique);
    }

    /// <summary>What a failed write left at <paramref name="full"/>.</summary>
    static string Previous(string full) => File.Exists(full) ? "the previous file is intact" : "nothing was written there";

    /// <summary>Whether <paramref name="path"/> is one of this class's temporary files
    /// (TARGET.PID.GUID.tmp or .PID.GUID.tmp) whose writing process is no longer running.</summary>
    public static bool IsAbandoned(string path) =>
        TemporaryName().Match(Path.GetFileName(path)) is { Success: true } match && int.TryParse(match.Groups[1].ValueSpan, out var pid) && !Runtime.Processes.IsRunning(pid);

    /// <summary>Removes the abandoned temporary files (<see cref="IsAbandoned"/>) in <paramref name="folder"/>
    /// (and its subfolders with <paramref name="recursive"/>); any other *.tmp file, or a live writer's, is left alone.</summary>
    public static void RemoveAbandoned(string folder, bool recursive = false)
    {
        var options = new EnumerationOptions { RecurseSubdirectories = recursive, IgnoreInaccessible = true };
        foreach (var file in Directory.EnumerateFiles(folder, "*" + TemporarySuffix, options).Where(IsAbandoned).ToList())
        {
            try { File.Delete(file); }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException) { /* left for a later start */ }
        }
    }

    [GeneratedRegex(@"\.([0-9]+)\.[0-9a-f]{32}\.tmp$")]
    private static partial Regex TemporaryName();

    public static void WriteAllText(string path, string text, bool replace = true) => Write(path, s => s.Write(System.Text.Encoding.UTF8.GetBytes(text)), replace: replace);

    /// <summary>The refusal of a write whose path holds, at its end, a file that is none of the command's results.</summary>
    static OutputException Foreign(string path) =>
        new($"'{path}' was written by another process while this one worked, and is none of this command's results: kept, and this result not written; choose another path");

    /// <summary>The refusal of a write whose path another process took meanwhile (the rename does not replace).</summary>
    static OutputException TakenMeanwhile(string path) =>
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
