using System.Text;
using CrOC.Host.CommandLine;

namespace CrOC.Host.Runtime;

/// <summary>
/// Standard output and error that never stop a command: a write to a stream that is closed
/// (`&gt;&amp;-`), full (`&gt;/dev/full`) or a terminal that hung up loses its text and the work goes on;
/// at the end (<see cref="Finish"/>) the loss is said on stderr and a success becomes exit 1, as a
/// shell tool's write error is. A pipe whose reader left (`| head`) is no loss: .NET drops those
/// writes itself (EPIPE). A failed write to stderr is tried again on descriptor 2 by write(2).
/// </summary>
public static class TolerantConsole
{
    static LossyWriter? output, error;

    /// <summary>Puts the lossy writers in place of <see cref="Console.Out"/> and <see cref="Console.Error"/>
    /// (opened now, not once a failing command may have run out of file handles).</summary>
    public static void Install()
    {
        output = new LossyWriter(() => Console.Out, fallbackDescriptor: null);
        error = new LossyWriter(() => Console.Error, fallbackDescriptor: 2);
        Console.SetOut(output);
        Console.SetError(error);
        try { Native.write(2, [], 0); } // binds the fallback's P/Invoke now, not once file handles may have run out
        catch (Exception e) when (e is DllNotFoundException or EntryPointNotFoundException) { /* Console.Error alone */ }
    }

    /// <summary>After a hang-up: the writers that go to the terminal drop everything, and what they
    /// lost is no failure (the terminal is gone, train.log has the lines).</summary>
    public static void SilenceTerminals()
    {
        if (!Console.IsOutputRedirected) output?.Silence();
        if (!Console.IsErrorRedirected) error?.Silence();
    }

    /// <summary>The exit code of a command that returned <paramref name="code"/>, once standard output's
    /// losses are known: said on stderr; a success whose output was lost is 1.</summary>
    public static int Finish(int code)
    {
        if (output?.Failure is not { } failure) return code;
        error?.WriteLine($"croc-host: standard output could not be written ({failure}): its lines were lost");
        return code == ExitCodes.Ok ? ExitCodes.Failure : code;
    }

    /// <summary>Forwards to the writer its opener gives (opened once; a stream that cannot be opened
    /// loses everything); each write that fails is lost (the first failure kept), the next is tried.</summary>
    sealed class LossyWriter : TextWriter
    {
        readonly TextWriter inner;
        readonly int? fallbackDescriptor;
        bool silenced;

        public LossyWriter(Func<TextWriter> open, int? fallbackDescriptor)
        {
            this.fallbackDescriptor = fallbackDescriptor;
            try { inner = open(); }
            catch (Exception e) when (IsStreamFailure(e)) { inner = Null; Failure = LossOf(e); }
        }

        /// <summary>Why the first lost text was lost, or null.</summary>
        public string? Failure { get; private set; }
        public override Encoding Encoding => inner.Encoding;
        public override void Write(char value) => Guarded(() => inner.Write(value), value.ToString());
        public override void Write(char[] buffer, int index, int count) => Guarded(() => inner.Write(buffer, index, count), new string(buffer, index, count));
        public override void Write(string? value) => Guarded(() => inner.Write(value), value);
        public override void WriteLine(string? value) => Guarded(() => inner.WriteLine(value), value + "\n");
        public override void Flush() => Guarded(inner.Flush, null);

        public void Silence() => (silenced, Failure) = (true, null);

        void Guarded(Action write, string? text)
        {
            if (silenced) return;
            try { write(); }
            catch (Exception e) when (IsStreamFailure(e))
            {
                Failure ??= LossOf(e);
                if (fallbackDescriptor is int descriptor && !string.IsNullOrEmpty(text))
                {
                    var bytes = Encoding.UTF8.GetBytes(text);
                    Native.write(descriptor, bytes, bytes.Length); // where stderr is, even when .NET's writer for it failed
                }
            }
        }

        static bool IsStreamFailure(Exception e) => e is IOException or UnauthorizedAccessException or ObjectDisposedException;

        /// <summary>.NET says "Access to the path is denied" for a closed descriptor (EBADF).</summary>
        static string LossOf(Exception e) => e is UnauthorizedAccessException or ObjectDisposedException ? "it is closed" : e.Message;
    }

    static class Native
    {
        [System.Runtime.InteropServices.DllImport("libc")] public static extern nint write(int descriptor, byte[] bytes, nint count);
    }
}
