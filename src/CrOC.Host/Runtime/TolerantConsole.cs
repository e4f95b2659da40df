using System.Text;
using CrOC.Host.CommandLine;

namespace CrOC.Host.Runtime;

/// <summary>
/// Standard output and error that never stop a command: a write to a stream that is closed
/// (`&gt;&amp;-`), full (`&gt;/dev/full`) or a terminal that hung up loses its text and the work goes on;
/// at the end (<see cref="Finish"/>) the loss is said on stderr and a success becomes exit 1, as a
/// shell tool's write error is. A pipe whose reader left (`| head`) is no loss: .NET drops those
/// writes itself (EPIPE).
/// </summary>
public static class TolerantConsole
{
    static LossyWriter? output, error;
    static bool outputIsTerminal, errorIsTerminal;

    /// <summary>Puts the lossy writers in place of <see cref="Console.Out"/> and <see cref="Console.Error"/>
    /// (opened now, not once a failing command may have run out of file handles), and notes which
    /// go to a terminal (asked now: after a hang-up the terminal answers nothing).</summary>
    public static void Install()
    {
        output = new LossyWriter(() => Console.Out);
        error = new LossyWriter(() => Console.Error, RawStandardError.WriteLine);
        (outputIsTerminal, errorIsTerminal) = (!Console.IsOutputRedirected, !Console.IsErrorRedirected);
        Console.SetOut(output);
        Console.SetError(error);
    }

    /// <summary>After a hang-up: the writers that go to the terminal drop everything, and what they
    /// lost is no failure (the terminal is gone, train.log has the lines).</summary>
    public static void SilenceTerminals()
    {
        if (outputIsTerminal) output?.Silence();
        if (errorIsTerminal) error?.Silence();
    }

    /// <summary>The exit code of a command that returned <paramref name="code"/>, once standard output's
    /// losses are known: a success whose output lost lines is 1, said on stderr (a failure keeps its
    /// own line as the last one).</summary>
    public static int Finish(int code)
    {
        if (code != ExitCodes.Ok || output?.Failure is not { } failure) return code;
        error?.WriteLine($"croc-host: standard output could not be written ({failure}): its lines were lost");
        return ExitCodes.Failure;
    }

    /// <summary>Forwards to the writer its opener gives (opened once; a stream that cannot be opened
    /// loses everything); each write that fails is lost (the first failure kept), the next is tried.</summary>
    sealed class LossyWriter : TextWriter
    {
        TextWriter inner;
        volatile bool silenced;

        /// <summary>Where a line goes once the writer cannot encode (out of open files, its encoder's assembly did not
        /// load: a failure's line was lost so, exit 1 with nothing said, once); from then on every line goes there
        /// (what the writer had buffered is dropped, not printed twice).</summary>
        readonly Action<string>? unencodable;
        volatile bool raw;

        public LossyWriter(Func<TextWriter> open, Action<string>? unencodable = null)
        {
            this.unencodable = unencodable;
            try { inner = open(); }
            catch (FileNotFoundException) when (unencodable is not null) { (inner, raw) = (Null, true); }
            catch (Exception e) when (IsStreamFailure(e)) { inner = Null; Failure = LossOf(e); }
        }

        /// <summary>Why the first lost text was lost, or null.</summary>
        public string? Failure { get; private set; }
        public override Encoding Encoding => inner.Encoding;
        public override void Write(char value) => Guarded(() => inner.Write(value));
        public override void Write(char[] buffer, int index, int count) => Guarded(() => inner.Write(buffer, index, count));
        public override void Write(string? value) => Guarded(() => inner.Write(value));
        public override void WriteLine(string? value) => Guarded(() => inner.WriteLine(value), value);
        public override void Flush() => Guarded(inner.Flush);

        public void Silence() => (silenced, Failure) = (true, null);

        void Guarded(Action write, string? line = null)
        {
            if (silenced) return;
            if (raw)
            {
                if (line is not null) unencodable!(line);
                return;
            }
            try { write(); }
            catch (FileNotFoundException) when (unencodable is not null)
            {
                (inner, raw) = (Null, true);
                if (line is not null) unencodable(line);
            }
            catch (Exception e) when (IsStreamFailure(e))
            {
                if (!silenced) Failure ??= LossOf(e); // a write that failed as the hang-up silenced it is no failure
            }
        }

        static bool IsStreamFailure(Exception e) => e is IOException or UnauthorizedAccessException or ObjectDisposedException;

        /// <summary>.NET says "Access to the path is denied" for a closed descriptor (EBADF).</summary>
        static string LossOf(Exception e) => e is UnauthorizedAccessException or ObjectDisposedException ? "it is closed" : e.Message;
    }
}
