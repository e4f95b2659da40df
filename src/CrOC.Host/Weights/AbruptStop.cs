using System.Runtime.InteropServices;
using CrOC.Host.CommandLine;

namespace CrOC.Host.Weights;

/// <summary>
/// How a stop signal (Ctrl-C, SIGTERM, SIGHUP, the real-photo suite's SIGUSR1) ends a command without
/// a clean stop (<see cref="Runtime.SignalStop"/>) of its own: all but train and experiment, whose handlers
/// finish a step or end the scenes' generation; train before its trainer's handlers take over, and the
/// synthetic experiment outside its runs and its generation (a --config FIFO, a probe). The
/// temporary files of its unfinished writes and the empty folders it made are removed, one line on
/// stderr says so, and the process ends as the signal ends it (exit 130 / 143 / 129 / 138; bench-data's
/// temporary scenes are no such writes and stay in $TMPDIR). Nothing
/// it was writing reaches its final name, and a set of files being renamed is renamed whole first:
/// the targets stay as they were, or all are new.
/// </summary>
public static class AbruptStop
{
    static readonly (PosixSignal Signal, string Name, int Number)[] Signals =
        [(PosixSignal.SIGINT, "SIGINT", 2), (PosixSignal.SIGTERM, "SIGTERM", 15), (PosixSignal.SIGHUP, "SIGHUP", 1), ((PosixSignal)StopRequest.Signal, "SIGUSR1", StopRequest.Signal)];

    /// <summary>Until disposed, ends <paramref name="command"/> so on a stop signal, disposing <paramref name="release"/>
    /// (a lock whose files go with the process) before the folders are removed.</summary>
    public static IDisposable Install(string command, IDisposable? release = null)
    {
        var removeFolders = MadeFolders.RemoverOfThisCommand();
        var registrations = Signals.Select(s => PosixSignalRegistration.Create(s.Signal, _ =>
        {
            int exitCode = 128 + s.Number; // the shell's code for a process the signal ends
            int files = AtomicFile.Abandon(exitCode);
            release?.Dispose();
            removeFolders();
            var unfinished = files > 0 ? $"; the {files} file(s) it was writing were not kept" : "";
            ExitCodes.Say($"croc-host {command}: stopped by {s.Name} before it finished{unfinished} (exit {exitCode})", log: null);
        })).ToList();
        return new Registrations(registrations);
    }

    sealed class Registrations(List<PosixSignalRegistration> all) : IDisposable
    {
        public void Dispose() => all.ForEach(r => r.Dispose());
    }
}
