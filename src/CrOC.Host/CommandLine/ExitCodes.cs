using CrOC.Data;

namespace CrOC.Host.CommandLine;

/// <summary>An output path that cannot be used: not writable, a file where a folder is needed,
/// a run folder locked by another process or holding another run. Exit code 2.</summary>
public sealed class OutputException(string message) : Exception(message), IBadInput;

/// <summary>Marks an exception whose message is a complete report of bad input: exit code 2.
/// The folders that throw one implement it, so this one depends on none of them.</summary>
public interface IBadInput { }

/// <summary>Bad input in the options (command line or config file): the report points at --help.</summary>
public interface IBadOption : IBadInput { }

/// <summary>Marks a failure while working whose message says all (exit code 1, no crash file).</summary>
public interface IReportedFailure { }

/// <summary>
/// The exit codes of every command, and the one line that reports a failure:
/// 0 done (or stopped cleanly by Ctrl-C / SIGTERM after writing a checkpoint);
/// 1 a failure while working (divergence, disk full, an I/O error, an internal error);
/// 2 bad input, found before the work starts (options, config files, weights, datasets, images,
///   devices, an output that cannot be written or belongs to another run), or mid-run a dataset
///   whose files stop decoding (64 in a row; a checkpoint is written first) or leave eval-knn's bank
///   without a query's class;
/// 3 a collective that hung: another process of a distributed run died or stopped.
/// </summary>
public static class ExitCodes
{
    public const int Ok = 0, Failure = 1, BadInput = 2, Hung = 3;

    const int EFBIG = 27;

    /// <summary>A write past `ulimit -f` (SIGXFSZ is ignored, see ProcessSignals) or the file system's
    /// largest file: EFBIG, which .NET's file writes raise as an ArgumentOutOfRangeException (parameter
    /// "value") thrown by the runtime's own file code. Which of its methods throws it moves with the JIT:
    /// RandomAccess at first, the file stream's Write once a tiered recompilation has inlined RandomAccess
    /// into it (after many writes, e.g. generating the synthetic set). Such an exception from any other
    /// code stays an internal error.</summary>
    static bool FileTooLarge(Exception e) =>
        e is IOException io && (io.HResult & 0xFFFF) == EFBIG
        || e is ArgumentOutOfRangeException { ParamName: "value", TargetSite.DeclaringType: { } thrower } && IsRuntimeFileCode(thrower);

    /// <summary>A type of the runtime's file code: System.IO (and its Strategies) or the file handles, in CoreLib.</summary>
    static bool IsRuntimeFileCode(Type type) =>
        type.Assembly == typeof(RandomAccess).Assembly
        && type.Namespace is { } space && (space == "System.IO" || space.StartsWith("System.IO.", StringComparison.Ordinal) || space == "Microsoft.Win32.SafeHandles");

    public static int For(Exception e) => Cause(e) switch
    {
        IBadInput or DatasetException or DecodeException => BadInput,
        _ => Failure,
    };

    /// <summary>Runs the report's classification and wording once, so that what they need is loaded
    /// at start: a report written when the process is out of file handles (`ulimit -n`, a leak)
    /// could not load it, and would crash instead of saying so.</summary>
    public static void WarmUp()
    {
        foreach (var e in new Exception[] { new DatasetException(""), new DecodeException("", ""), new IOException(), new ArgumentOutOfRangeException(), new InvalidOperationException() })
            _ = (For(e), Message(e), IsExpected(e));
    }

    /// <summary>A failure's line appended to <paramref name="log"/> (if any), then on stderr: the log
    /// first, as stderr may be a closed terminal; neither failing stops the caller.</summary>
    public static void Say(string line, string? log)
    {
        if (log is not null)
            try { File.AppendAllText(log, line + "\n"); } catch (Exception) { /* the log may be what failed */ }
        WriteError(line);
    }

    /// <summary>One line on stderr (whose failure loses the line, not the exit code: see TolerantConsole).</summary>
    static void WriteError(string line) => Console.Error.WriteLine(line);

    /// <summary>True for the failures whose message says all (no internal error).</summary>
    public static bool IsExpected(Exception e) => For(e) == BadInput || Cause(e) is var cause && (cause is IReportedFailure or IOException or UnauthorizedAccessException or DllNotFoundException || OutOfMemory(cause) || FileTooLarge(cause));

    /// <summary>.NET's out-of-memory, or libtorch's (an allocator's refusal, raised through TorchSharp).</summary>
    static bool OutOfMemory(Exception e) =>
        e is OutOfMemoryException || (e is System.Runtime.InteropServices.ExternalException && (e.Message.Contains("can't allocate memory") || e.Message.Contains("out of memory")));

    /// <summary>The failure an <see cref="AggregateException"/> (from a parallel loop) carries, its
    /// first; what a type's initialiser met; any other exception itself.</summary>
    static Exception Cause(Exception e) => e switch
    {
        AggregateException { InnerExceptions.Count: > 0 } all => Cause(all.InnerExceptions[0]),
        TypeInitializationException { InnerException: { } inner } => Cause(inner), // a type whose assembly or library did not load (out of open files: "internal error" once)
        _ => e,
    };

    /// <summary>The failure as one line (a library's message over several lines joined), its long words shortened.</summary>
    public static string Message(Exception e) =>
        CrOC.Data.Quoted.LongWordsShortened(string.Join(" ", Described(e).Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)));

    static string Described(Exception e) => Cause(e) switch
    {
        IOException io when DiskSpace.IsDiskFull(io) => $"the disk is full: {io.Message}",
        var cause when FileTooLarge(cause) => $"a file grew past the largest this process may write (ulimit -f, or the file system's limit): {cause.Message}",
        FileNotFoundException { FileName: { } name } when name.Contains("Version=") => $"could not load {name.Split(',')[0]}: the process ran out of open files (ulimit -n), or the installation is incomplete",
        DllNotFoundException dll => NativeLibraryFailure.Describe(dll),
        IOException io => $"I/O error: {io.Message}",
        UnauthorizedAccessException denied => $"permission denied: {denied.Message}",
        var cause when OutOfMemory(cause) => "out of memory: use smaller sizes or batches (see the command's --help for those it has)",
        var cause when IsExpected(cause) => cause.Message,
        var cause => $"internal error ({cause.GetType().Name}): {cause.Message.Split('\n')[0]}",
    };

    /// <summary>Reports <paramref name="e"/> for <paramref name="command"/> on stderr (and in
    /// <paramref name="log"/>, if any) as one line; an internal error's details go to a crash file
    /// named in that line. Returns the exit code.</summary>
    public static int Report(string command, Exception e, string? log = null)
    {
        if (e is StoppedBySignalException stopped) return stopped.ExitCode; // its line was said (a second one followed it once)
        var line = $"croc-host {command}: {Message(e)}";
        if (!IsExpected(e))
        {
            var crash = Path.Combine(Path.GetTempPath(), $"croc-host-{command}-{Environment.ProcessId}.crash.txt");
            try
            {
                File.WriteAllText(crash, $"{DateTime.UtcNow:o} croc-host {command}\n{e}\n");
                line += $" (details: {crash})";
            }
            catch (Exception) { /* the line alone must do */ }
        }
        Say(line, log);
        if (e is IBadOption) WriteError($"Run `croc-host {command.Split(" [")[0]} --help` for its options."); // "train [rank 1]" → train
        return For(e);
    }
}
