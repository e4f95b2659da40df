using System.Runtime.InteropServices;
using CrOC.Host.CommandLine;

namespace CrOC.Host.Runtime;

/// <summary>
/// Stop signals (Ctrl-C, SIGTERM, SIGHUP, the real-photo suite's SIGUSR1) that cancel <see cref="Token"/>
/// instead of ending the process, around work that is abandoned cleanly when cancelled (a synthetic
/// set's generation removes its half-built copy). The same signal a second time ends the process
/// as its default action does. One set of handlers at a time: dispose the command's others first.
/// </summary>
public sealed class CancellingStop : IDisposable
{
    readonly CancellationTokenSource cancel = new();
    readonly HashSet<PosixSignal> heard = [];
    readonly List<PosixSignalRegistration> registrations;

    CancellingStop(PosixSignal[] signals) => registrations = [.. signals.Select(signal => PosixSignalRegistration.Create(signal, ctx =>
    {
        if (signal == PosixSignal.SIGHUP) TolerantConsole.SilenceTerminals(); // the terminal fails every write after a hang-up
        lock (heard) ctx.Cancel = heard.Add(signal);
        cancel.Cancel();
    }))];

    public static CancellingStop Install() => new([PosixSignal.SIGINT, PosixSignal.SIGTERM, PosixSignal.SIGHUP, (PosixSignal)StopRequest.Signal]);

    public CancellationToken Token => cancel.Token;
    public bool Requested => cancel.IsCancellationRequested;

    public void Dispose()
    {
        registrations.ForEach(r => r.Dispose());
        cancel.Dispose();
    }
}
