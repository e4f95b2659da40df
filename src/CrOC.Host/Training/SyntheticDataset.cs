using CrOC.Data;
using CrOC.Host.CommandLine;

namespace CrOC.Host.Training;

/// <summary>The embedded dataset: synthetic scenes in the VOC layout, generated once into the user's
/// data folder and reused by later runs.</summary>
public static class SyntheticDataset
{
    const int Version = 1;

    /// <summary>The folder of the synthetic set with <paramref name="train"/> + <paramref name="val"/> scenes
    /// of seed <paramref name="seed"/>, generating it (atomically, by a rename) when absent. Processes
    /// that generate it at the same time each build their own copy; the first rename wins. The data
    /// folder is <paramref name="home"/>, else $CROC_DATA_HOME, else the user's local data folder.</summary>
    public static string Ensure(int train, int val, long seed = 0, string? home = null, CancellationToken cancel = default)
    {
        home ??= DataHome();
        if (File.Exists(home)) throw new DatasetException($"the synthetic scenes' data folder '{home}' ($CROC_DATA_HOME, or the local data folder) is a file, not a folder");
        // a folder that cannot be made (CROC_DATA_HOME=/dev/null/x, /proc/x) is bad input, said now;
        // a full disk stays the storage's failure
        try { Directory.CreateDirectory(home); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException && !(e is IOException io && DiskSpace.IsDiskFull(io)))
        {
            throw new DatasetException($"the synthetic scenes' data folder '{home}' ($CROC_DATA_HOME, or the local data folder) cannot be made: {e.Message.TrimEnd('.')}; set CROC_DATA_HOME to a writable folder");
        }
        var root = Root(home, train, val, seed);
        RemoveAbandoned(root);
        if (!ClearWayFor(root)) return root;
        var building = root + $".{Environment.MachineName}-{Environment.ProcessId}-{Guid.NewGuid():N}.partial";
        Console.WriteLine($"generating {train} + {val} synthetic scenes into {root} (once) ...");
        try
        {
            SyntheticScenes.WriteVoc(building, train, val, seed, cancel: cancel); // a stop signal ends it (OperationCanceledException), the copy removed
            var names = File.ReadAllLines(Path.Combine(building, "ImageSets", "Segmentation", "train.txt"));
            File.WriteAllLines(Path.Combine(building, "train-files.txt"), names.Select(n => $"JPEGImages/{n}.jpg"));
        }
        catch (Exception e)
        {
            // a full disk (or ulimit -f): the half-built copy would hold the space until the next start
            try { Directory.Delete(building, true); } catch (Exception e2) when (e2 is IOException or UnauthorizedAccessException) { }
            if (e is UnauthorizedAccessException) throw new DatasetException($"the synthetic scenes cannot be written into '{home}' ({e.Message}): set CROC_DATA_HOME to a writable folder");
            throw;
        }
        Publish(building, root);
        return root;
    }

    static string Root(string home, int train, int val, long seed) => Path.Combine(home, $"synthetic-v{Version}-seed{seed}-{train}-{val}");

    /// <summary>Where the synthetic set of a training configuration is (or will be generated).</summary>
    public static string RootOf(TrainConfig config) => Root(DataHome(), config.SyntheticTrain, config.SyntheticVal, 0);

    /// <summary>Whether the set must be generated: false when it is at <paramref name="root"/> (generated
    /// earlier, or published by another process just now); an empty folder there is removed; anything else that is not a complete
    /// set is refused, before generating one that could not be put in its place (a run folder there
    /// had every run regenerate the whole set and fail at the rename once).</summary>
    static bool ClearWayFor(string root)
    {
        if (Directory.Exists(root) && !Directory.EnumerateFileSystemEntries(root).Any())
            try { Directory.Delete(root); return true; }
            catch (IOException) { /* filled meanwhile: judged below */ }
        if (File.Exists(Path.Combine(root, "train-files.txt"))) return false; // there: generated earlier, or by another process meanwhile
        if (Directory.Exists(root) || File.Exists(root))
            throw new DatasetException($"'{root}' is where the synthetic scenes go, but it holds something else (no train-files.txt): move it away; the scenes are then generated there");
        return true;
    }

    /// <summary>$CROC_DATA_HOME (an empty value counts as unset; a leading ~/ is the home folder, as in
    /// --data: it made a folder named '~' once), else the user's local data folder, made when absent.</summary>
    static string DataHome()
    {
        if (Environment.GetEnvironmentVariable("CROC_DATA_HOME") is { } named && named.Trim().Length > 0)
            return Path.GetFullPath(ImageSources.HomeExpanded(named));
        try { return Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.LocalApplicationData, Environment.SpecialFolderOption.Create), "crocnet"); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) // HOME=/nonexistent, as daemons have
        {
            throw new DatasetException($"the synthetic scenes' data folder in the home folder '{Environment.GetEnvironmentVariable("HOME")}' cannot be made ({e.Message}): set CROC_DATA_HOME to a writable folder");
        }
    }

    /// <summary>Removes this machine's half-built copies of <paramref name="root"/> whose builder is
    /// no longer running (ROOT.MACHINE-PID-GUID.partial; a build stopped by Ctrl-C leaves one).</summary>
    static void RemoveAbandoned(string root)
    {
        var parent = Path.GetDirectoryName(root)!;
        if (!Directory.Exists(parent)) return;
        foreach (var folder in Directory.GetDirectories(parent, $"{Path.GetFileName(root)}.{Environment.MachineName}-*.partial"))
        {
            var owner = Path.GetFileName(folder)[(Path.GetFileName(root).Length + Environment.MachineName.Length + 2)..].Split('-')[0];
            if (int.TryParse(owner, out var pid) && !Runtime.Processes.IsRunning(pid))
                try { Directory.Delete(folder, true); }
                catch (IOException) { /* another process removes it at the same time */ }
        }
    }

    /// <summary>Renames the finished <paramref name="building"/> folder to <paramref name="root"/>; when
    /// another process has published a complete set there first, drops this copy and keeps theirs.</summary>
    public static void Publish(string building, string root)
    {
        try
        {
            Directory.Move(building, root);
        }
        catch (IOException) when (File.Exists(Path.Combine(root, "train-files.txt")))
        {
            Directory.Delete(building, true);
        }
        catch (IOException)
        {
            Directory.Delete(building, true); // something else took the place meanwhile: no copy left behind
            throw new DatasetException($"'{root}' is where the synthetic scenes go, but something else was put there while they were generated: move it away and run again");
        }
    }

    /// <summary>The synthetic set of a training configuration (<see cref="TrainConfig.SyntheticTrain"/> + <see cref="TrainConfig.SyntheticVal"/> scenes).</summary>
    /// <summary>What train and experiment say when a stop signal ended the generation (<see cref="Ensure(TrainConfig, CancellationToken)"/> cancelled).</summary>
    public const string StoppedWhileGenerating = "stopped while generating the synthetic scenes: nothing to save (a half-built set is not kept); rerun the same command to go on";

    public static string Ensure(TrainConfig config, CancellationToken cancel = default) => Ensure(config.SyntheticTrain, config.SyntheticVal, cancel: cancel);

    /// <summary>The training image list of a synthetic set (a root for <see cref="ImageSources"/>).</summary>
    public static string TrainList(string root) => Path.Combine(root, "train-files.txt");
}
