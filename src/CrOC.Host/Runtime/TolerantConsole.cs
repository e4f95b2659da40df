using System.Text;

namespace CrOC.Host.Runtime;

/// <summary>
/// Standard output and error that never fail a command: a write to a stream that is closed (`&gt;&amp;-`),
/// full (`&gt;/dev/full`) or a terminal that hung up loses its text, and the first such failure is
/// kept, to be said once at the end (<see cref="SayWhatWasLost"/>). A command's results are its
/// files (train.log, checkpoints, --json); the console shows them. A closed pipe's reader (`| head`)
/// ends nothing either: .NET ignores SIGPIPE, so those writes fail here as well.
/// </summary>
public static class TolerantConsole
{
    static LossyWriter? output, error;

    /// <summary>Puts the lossy writers in place of <see cref="Console.Out"/> and <see cref="Console.Error"/>.</summary>
    public static void Install()
    {
        output = new LossyWriter(() => Console.Out);
        error = new LossyWriter(() => Console.Error);
        Console.SetOut(output);
        Console.SetError(error);
    }

    /// <summary>Says on standard error (when it still works) that standard output lost lines, and why.</summary>
    public static void SayWhatWasLost()
    {
        if (output?.Failure is { } failure)
            error?.WriteLine($"croc-host: standard output could not be written ({failure}): its lines were lost; the command's files are complete");
    }

    /// <summary>Forwards to the writer its opener gives (opened once; a stream that cannot
    /// be opened counts as failed) until a write fails, then drops everything.</summary>
    sealed class LossyWriter : TextWriter
    {
        readonly TextWriter inner;

        public LossyWriter(Func<TextWriter> open)
        {
            try { inner = open(); }
            catch (Exception e) when (IsStreamFailure(e)) { inner = Null; Failure = Reason(e); }
        }

        public string? Failure { get; private set; }
        public override Encoding Encoding => inner.Encoding;
        public override void Write(char value) => Guarded(() => inner.Write(value));
        public override void Write(char[] buffer, int index, int count) => Guarded(() => inner.Write(buffer, index, count));
        public override void Write(string? value) => Guarded(() => inner.Write(value));
        public override void WriteLine(string? value) => Guarded(() => inner.WriteLine(value));
        public override void Flush() => Guarded(inner.Flush);

        void Guarded(Action write)
        {
            if (Failure is not null) return;
            try { write(); }
            catch (Exception e) when (IsStreamFailure(e)) { Failure = Reason(e); }
        }

        static bool IsStreamFailure(Exception e) => e is IOException or UnauthorizedAccessException or ObjectDisposedException;

        /// <summary>.NET says "Access to the path is denied" for a closed descriptor (EBADF).</summary>
        static string Reason(Exception e) => e is UnauthorizedAccessException or ObjectDisposedException ? "it is closed" : e.Message;
    }
}
