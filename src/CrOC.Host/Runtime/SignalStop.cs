using System.Collections.Concurrent;
using System.Runtime.InteropServices;
using CrOC.Host.CommandLine;

namespace CrOC.Host.Runtime;

/// <summary>
/// A clean stop asked for by signals (Ctrl-C or Ctrl-\, SIGTERM, SIGHUP, the real-photo suite's SIGUSR1):
/// the first of each kind is taken (<see cref="Token"/> cancelled; the work stops and ends as it
/// chooses), the same signal a second time is left to its default action, which ends the process at
/// once. Train's trainer and the synthetic experiment's scene generation stop so.
/// </summary>
public sealed class SignalStop
{
    /// <summary>Never disposed: a handler already on its way may cancel it after its registrations are gone.</summary>
    readonly CancellationTokenSource cancel = new();
    readonly ConcurrentDictionary<string, int> heard = new();

    /// <summary>Every signal any instance took in this process: after a command's clean stop, the same signal
    /// during the runtime's shutdown is its second (it was taken again once, and only a third ended the process).</summary>
    static readonly ConcurrentDictionary<string, bool> takenInProcess = new();

    /// <summary>For the handlers that outlive a command: <see cref="Take"/>, unless the command took <paramref name="signal"/> already.</summary>
    public bool TakeUnlessTakenBefore(string signal) => !TakenInProcess(signal) && Take(signal);

    /// <summary>Whether any instance took <paramref name="signal"/> in this process (its next one ends the process).</summary>
    public static bool TakenInProcess(string signal) => takenInProcess.ContainsKey(signal);

    /// <summary>Cancelled by <see cref="Request"/> (a taken signal, or the command itself).</summary>
    public CancellationToken Token => cancel.Token;
    public bool Requested => cancel.IsCancellationRequested;
    public void Request() => cancel.Cancel();

    /// <summary>Whether <paramref name="signal"/> is taken (the stop requested): false for its second coming.</summary>
    public bool Take(string signal)
    {
        if (heard.AddOrUpdate(signal, 1, (_, n) => n + 1) > 1) return false;
        takenInProcess[signal] = true;
        Request();
        return true;
    }

    /// <summary>Until disposed, each stop signal calls <paramref name="onSignal"/> with its name ("interrupt"
    /// for Ctrl-C and Ctrl-\), which says whether it took it; one not taken, or one that arrives while
    /// the handlers are being removed, has its default action. After a hang-up the terminals are
    /// silenced first (every write to them fails with EIO). One set of handlers at a time: a command
    /// disposes its others first. (.NET installs none for a signal ignored at start: under nohup SIGHUP stays ignored.)</summary>
    public static IDisposable Handlers(Func<string, bool> onSignal)
    {
        var handlers = new Registrations();
        bool Taken(string signal) => !handlers.Closed && onSignal(signal);
        ConsoleCancelEventHandler onCancel = (_, e) => e.Cancel = Taken("interrupt");
        Console.CancelKeyPress += onCancel;
        handlers.Add(() => Console.CancelKeyPress -= onCancel);
        foreach (var (signal, name) in new[] { (PosixSignal.SIGTERM, "SIGTERM"), ((PosixSignal)StopRequest.Signal, "SIGUSR1"), (PosixSignal.SIGHUP, "SIGHUP") })
        {
            var registration = PosixSignalRegistration.Create(signal, ctx =>
            {
                if (signal == PosixSignal.SIGHUP) TolerantConsole.SilenceTerminals();
                ctx.Cancel = Taken(name);
            });
            handlers.Add(registration.Dispose);
        }
        return handlers;
    }

    sealed class Registrations : IDisposable
    {
        readonly List<Action> removals = [];
        volatile bool closed;
        public bool Closed => closed;
        public void Add(Action removal) => removals.Add(removal);

        public void Dispose()
        {
            closed = true;
            removals.ForEach(remove => remove());
        }
    }
}
