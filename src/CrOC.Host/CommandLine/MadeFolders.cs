using System.Collections.Concurrent;
using System.Runtime.InteropServices;

namespace CrOC.Host.CommandLine;

/// <summary>
/// The output folders a command made (each level of each path it created), so that a command that
/// fails removes those it left empty: a failure leaves the disk as it was, apart from what it wrote.
/// Only those folders go, deepest first, each with rmdir, which refuses a folder that holds anything:
/// a file or folder put there meanwhile by anyone (another run's new folder) stays, with its parents.
/// </summary>
public static class MadeFolders
{
    /// <summary>The running command's record (flows into its tasks and threads; commands run side by side in tests).</summary>
    static readonly AsyncLocal<ConcurrentDictionary<string, bool>?> Made = new();

    /// <summary>Starts the record of a command.</summary>
    public static void Begin() => Made.Value = new();

    /// <summary>Makes the folder <paramref name="full"/> (a full path) and its missing parents; records those it made.</summary>
    public static void Make(string full)
    {
        var existing = DiskSpace.NearestExisting(full);
        var missing = new List<string>();
        for (var at = full; at != existing && at is not null; at = Path.GetDirectoryName(at)) missing.Add(at);
        Directory.CreateDirectory(full);
        foreach (var folder in missing) Made.Value?.TryAdd(folder, true);
    }

    /// <summary>Until disposed, a stop signal (Ctrl-C, SIGTERM, SIGHUP, the suite's SIGUSR1) first removes
    /// the empty folders the running command made, then ends the process as it would have (130 / 143 /
    /// 129 / 138) —
    /// for commands without a stop handler of their own (train's and experiment's finish a step and
    /// would find their folders gone).</summary>
    public static IDisposable RemoveEmptyOnStopSignals()
    {
        var made = Made.Value; // the handlers run on another thread, outside this command's flow
        // SIGUSR1: the real-photo suite's stop for its jobs (an evaluation job left its empty folder once)
        var registrations = new[] { PosixSignal.SIGINT, PosixSignal.SIGTERM, PosixSignal.SIGHUP, (PosixSignal)StopRequest.Signal }
            .Select(signal => PosixSignalRegistration.Create(signal, _ => RemoveEmpty(made))).ToList();
        return new Registrations(registrations);
    }

    sealed class Registrations(List<PosixSignalRegistration> all) : IDisposable
    {
        public void Dispose() => all.ForEach(r => r.Dispose());
    }

    /// <summary>Removes each recorded folder that is empty (deepest first); returns those removed.</summary>
    public static List<string> RemoveEmpty() => RemoveEmpty(Made.Value);

    static List<string> RemoveEmpty(ConcurrentDictionary<string, bool>? made)
    {
        if (made is null) return [];
        var removed = new List<string>();
        foreach (var folder in made.Keys.OrderByDescending(f => f.Length))
            if (made.TryRemove(folder, out _) && RemoveIfEmpty(folder)) removed.Add(folder);
        return removed;
    }

    static bool RemoveIfEmpty(string folder)
    {
        try
        {
            var info = new DirectoryInfo(folder);
            if (!info.Exists || info.LinkTarget is not null) return false;
            info.Delete(recursive: false); // refused when not empty
            return true;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { return false; }
    }
}
