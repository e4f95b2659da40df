using System.Text.Json.Nodes;
using CrOC.Data;
using CrOC.Host.CommandLine;
using CrOC.Host.Weights;

namespace CrOC.Host.Training;

/// <summary>
/// A run's `--output` folder, owned by one run and append-only. Claiming it checks that the folder
/// holds no other run (before the lock, so a refusal leaves no lock file, and again under it),
/// takes an exclusive lock (`run.lock`, an advisory lock the kernel drops when its process dies, so
/// a stale lock is taken over), then removes the temporary files a killed atomic writer left: a
/// stored config.json of another identity (<see cref="TrainConfig.IdentityKeys"/>),
/// or a run that `--resume false` would start over, is refused (<see cref="OutputException"/>,
/// exit 2) — unless the run is moved aside to `DIR.old-TIMESTAMP` (never deleted).
/// </summary>
public sealed class RunFolder : IDisposable
{
    public const string LockName = "run.lock";
    /// <summary>The run's log: its lines as printed (train's steps included), appended to across resumes.</summary>
    public const string LogName = "train.log";
    /// <summary>Who holds the lock (pid, host, time): a plain file beside it, readable while the lock is held.</summary>
    public const string OwnerName = "run.owner";
    /// <summary>The online clusters' picture a synthetic run draws after its last step.</summary>
    public const string PictureName = "clusters.png";
    static readonly string[] RunFiles = ["config.json", MetricsLog.FileName, LogName, "run.json"];
    /// <summary>The most bytes of a record read back (config.json, run.json, run.owner: kilobytes when a run wrote them).</summary>
    const int RecordLimit = 16 << 20;

    FileStream? lockFile;

    public string Path { get; }
    public string LogPath => System.IO.Path.Combine(Path, LogName);
    /// <summary>Where an earlier run was moved by <c>--move-aside</c>, or null.</summary>
    public string? MovedTo { get; }

    /// <summary>How to start anew beside a run here that cannot go on, in the claiming command's words: --move-aside where
    /// it has one (the synthetic suite has none: it advised it once).</summary>
    public string StartAnew { get; }

    RunFolder(string path, FileStream lockFile, string? movedTo, bool offersMoveAside) =>
        (Path, this.lockFile, MovedTo, StartAnew) = (path, lockFile, movedTo, StartAnewAdvice(path, offersMoveAside));

    static string StartAnewAdvice(string path, bool offersMoveAside) => offersMoveAside
        ? $"add --move-aside to move that run to {path}.old-<time> and start anew (nothing is deleted)"
        : "move that run's folder away yourself (this command has no --move-aside)";

    /// <summary>The lock and owner files of a folder, and what holds such a folder (in a refusal's words).</summary>
    sealed record Locks(string LockName, string OwnerName, string Holder);

    static readonly Locks RunLocks = new(LockName, OwnerName, "run");

    static readonly Locks SuiteLocks = new("suite.lock", "suite.owner", "experiment suite");

    /// <summary>An experiment suite's lock of its --output, held while it runs (its run folders have their own): a second
    /// suite into the same folder ran the first one's unfinished jobs beside them, replacing their results, once. A stale
    /// one (a suite killed) is taken over. As it is released its owner file goes, and its lock file too when nothing else
    /// is in the folder (a failed suite's --output, made and otherwise empty, is removed then; a lock file removed
    /// while another suite opens it would let a third in beside that one).</summary>
    public static IDisposable LockSuite(string output)
    {
        RefuseUnusable(output, output, [SuiteLocks.LockName, SuiteLocks.OwnerName], [SuiteLocks.OwnerName], "a suite");
        var held = Lock(output, SuiteLocks);
        return new Release(() =>
        {
            try
            {
                File.Delete(System.IO.Path.Combine(output, SuiteLocks.OwnerName));
                if (Directory.EnumerateFileSystemEntries(output).All(entry => System.IO.Path.GetFileName(entry) == SuiteLocks.LockName))
                    File.Delete(System.IO.Path.Combine(output, SuiteLocks.LockName));
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException) { /* the work's outcome stands */ }
            finally { held.Dispose(); }
        });
    }

    /// <summary>Runs its release once, whoever disposes it first (the suite's end, or a signal's handler).</summary>
    sealed class Release(Action release) : IDisposable
    {
        int released;
        public void Dispose()
        {
            if (Interlocked.Exchange(ref released, 1) == 0) release();
        }
    }

    /// <summary>Takes <paramref name="output"/> for a run of <paramref name="config"/>. A caller without --move-aside
    /// (<paramref name="offersMoveAside"/> false: the synthetic suite) is not told to add it (it advised an option the suite refuses, once).</summary>
    public static RunFolder Claim(string output, TrainConfig config, bool moveAside, bool offersMoveAside = true)
    {
        // before the folder is made: a refused --output inside the synthetic set's folder made it there once
        // a run took the synthetic set's folder, and --move-aside then moved the set, once; one went into a dataset's linked sub-folder
        if (DataRoots(config).FirstOrDefault(root => ImageSources.Reaches(root, output)) is { } holder)
            throw new OutputException($"--output '{output}' lies inside the training data '{holder}': the run's files (its clusters.png among them) would be taken for data, and the data moved with the run; choose a folder outside it");
        var path = OutputPaths.Folder(output, "--output");
        if (System.IO.Path.GetPathRoot(path) == path) // as root, `--output /` wrote a run into /
            throw new OutputException($"--output '{output}' is the filesystem's root: a run keeps its records, lock and checkpoints in its own folder; choose one");
        // the log is appended to, the owner's record written: a FIFO there waited for a reader forever (train.log hung `train`
        // with no output once); the records read back say so themselves (Foreign, MetricsLog)
        RefuseUnusable(output, path, [.. RunFiles, LockName, OwnerName, PictureName], [LogName, OwnerName], "a run");
        var data = DataLocations(config);
        bool lockExisted = Present(System.IO.Path.Combine(path, LockName)), ownerExisted = Present(System.IO.Path.Combine(path, OwnerName));
        // refused before the lock, which would leave run.lock beside the records; again under it,
        // as another run may have written there meanwhile
        var foreign = Foreign(path);
        if ((foreign ?? Conflict(path, config)) is { } early && !moveAside) throw Refusal(early, path, offersMoveAside);
        var held = Lock(path, RunLocks);
        string? movedTo = null;
        try
        {
            var conflict = foreign ?? Conflict(path, config);
            if (conflict is not null && !moveAside) throw Refusal(conflict, path, offersMoveAside);
            if (moveAside && HoldsRun(path))
            {
                // the folder's own entry moves (a link is renamed, not its target)
                var entry = System.IO.Path.Combine(RealPaths.Of(System.IO.Path.GetDirectoryName(path)!), System.IO.Path.GetFileName(path));
                if (DiskSpace.Holds(entry, RealPaths.Of(Environment.CurrentDirectory)))
                    throw new OutputException($"--move-aside cannot move '{path}': it holds the working directory, which would move with it; run the command from outside that folder");
                if (data.FirstOrDefault(root => DiskSpace.Holds(entry, RealPaths.Of(root))) is { } inside)
                    throw new OutputException($"--move-aside cannot move '{path}': it holds the dataset '{inside}', which would move with the old run; keep the data outside the run's folder, or move the old run yourself");
                if (PathLimits.Problem(AsideName(path) + "-99") is { } tooLong) // "I/O error" after the lock once
                    throw new OutputException($"--move-aside cannot move '{path}' to {System.IO.Path.GetFileName(path)}.old-<time>: {tooLong}; move the old run yourself, or choose a shorter --output");
                if (RunningBelow(path) is { } running) // it was moved from under its process, which then failed with its unsaved steps
                    throw new OutputException($"--move-aside cannot move '{path}': it holds the run folder '{running}', in use by {Holder(System.IO.Path.Combine(running, OwnerName))}; wait for that run to end, or move the folders yourself");
                movedTo = AsideName(path);
                Directory.Move(path, movedTo); // the lock file moves with it: still ours until released
                var old = held;
                OutputPaths.Folder(path, "--output");
                held = Lock(path, RunLocks);
                old.Dispose();
            }
            // the log and the metrics are appended to (this run's, or no run's, now; a moved-aside folder's went with it): one that
            // cannot be (immutable; read-only to another user) failed as "permission denied", exit 1, after the folder was claimed
            foreach (var file in new[] { LogName, MetricsLog.FileName }.Select(name => System.IO.Path.Combine(path, name)).Where(File.Exists))
                if (AppendRefusal(file) is { } why)
                    throw new OutputException($"--output '{output}' holds a {System.IO.Path.GetFileName(file)} that cannot be appended to ({why}); make it writable, choose another --output, or {StartAnewAdvice(path, offersMoveAside)}");
            OutputPaths.Folder(Checkpoints.Folder(path), "--output's checkpoint folder"); // now, not at the first checkpoint, steps later
            OutputPaths.Folder(MetricsLog.EventsFolder(path), "--output's TensorBoard folder"); // a file or a read-only folder named so failed after the records, exit 1
            RemoveLeftovers(path); // only once the folder is known to be this run's (or no run's)
            return new RunFolder(path, held, movedTo, offersMoveAside);
        }
        catch
        {
            // a refused folder keeps no lock files of this attempt (they were left beside a folder that is no run once);
            // not after a move (the new folder's are this run's)
            try
            {
                if (movedTo is null) RemoveLockFiles(path, RunLocks, lockExisted, ownerExisted);
            }
            finally { held.Dispose(); }
            throw;
        }
    }

    /// <summary>The --data roots, or the synthetic set's folder: what a run's search reaches (<see cref="ImageSources.Reaches"/>).</summary>
    static IEnumerable<string> DataRoots(TrainConfig config) =>
        config.Data.Length > 0 ? config.Data : [SyntheticDataset.RootOf(config)];

    /// <summary>Where the run's images are: each --data root's folder, list or archive, or the synthetic set's folder.</summary>
    static string[] DataLocations(TrainConfig config) =>
        config.Data.Length > 0 ? config.Data.Select(CrOC.Data.ImageSources.Location).ToArray() : [SyntheticDataset.RootOf(config)];

    /// <summary>DIR.old-TIMESTAMP, with -2, -3, … when a run was moved there within the same second.</summary>
    static string AsideName(string path)
    {
        var stamped = $"{path}.old-{DateTime.Now:yyyyMMdd-HHmmss}";
        var name = stamped;
        for (int n = 2; Directory.Exists(name) || File.Exists(name); n++) name = $"{stamped}-{n}";
        return name;
    }

    /// <summary>The exclusive lock of a folder, with this process's id written in the owner file. When the
    /// owner cannot be written (a full disk), the lock and owner files this call made are removed, under the lock.</summary>
    static FileStream Lock(string path, Locks names)
    {
        var file = System.IO.Path.Combine(path, names.LockName);
        var owner = System.IO.Path.Combine(path, names.OwnerName);
        bool lockExisted = Present(file), ownerExisted = Present(owner);
        FileStream stream;
        try { stream = new FileStream(file, FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None); }
        catch (IOException e) when ((e.HResult & 0xFFFF) == EWOULDBLOCK) // flock's answer: another open holds it
        {
            throw new OutputException($"--output '{path}' is in use by another {names.Holder} ({Holder(owner)}); wait for it to end, or choose another --output");
        }
        catch (IOException e) when (!DiskSpace.IsDiskFull(e)) // a link loop, a dangling link into no folder: not another run's
        {
            throw new OutputException($"--output '{path}': its {names.LockName} cannot be opened ({e.Message}); move it away, or choose another --output");
        }
        try
        {
            File.WriteAllText(owner, $"{Environment.ProcessId} {Environment.MachineName} {DateTime.UtcNow:o}\n");
            return stream;
        }
        catch
        {
            // a failed start leaves no lock files in the folder it may remove (a full disk left both once)
            try { RemoveLockFiles(path, names, lockExisted, ownerExisted); }
            finally { stream.Dispose(); }
            throw;
        }
    }

    const int EWOULDBLOCK = 11; // Linux's errno, as .NET puts it in HResult

    /// <summary>Refuses a folder at one of <paramref name="files"/> in <paramref name="path"/> (it was "permission denied", exit 1,
    /// after config.json was rewritten once), and one of <paramref name="written"/> that is no regular file.</summary>
    static void RefuseUnusable(string output, string path, string[] files, string[] written, string keeper)
    {
        if (files.FirstOrDefault(file => Directory.Exists(System.IO.Path.Combine(path, file))) is { } folder)
            throw new OutputException($"--output '{output}' holds a folder named {folder}, where {keeper} keeps its file of that name: move it away, or choose another --output");
        foreach (var file in written.Select(name => System.IO.Path.Combine(path, name)).Where(File.Exists))
        {
            using var stream = RegularFile.Open(file, out var whyNot);
            if (stream is null)
                throw new OutputException($"--output '{output}' holds a {System.IO.Path.GetFileName(file)} that {keeper} cannot use: {whyNot}; move it away, or choose another --output");
        }
    }

    /// <summary>Why <paramref name="file"/> cannot be opened to append to, or null when it can (or is no regular file,
    /// which its reader refuses); nothing is written, created or truncated.</summary>
    static string? AppendRefusal(string file)
    {
        using (var regular = RegularFile.Open(file))
            if (regular is null) return null;
        try
        {
            new FileStream(file, FileMode.Open, FileAccess.Write, FileShare.ReadWrite | FileShare.Delete, bufferSize: 1).Dispose();
            return null;
        }
        catch (Exception e) when (e is UnauthorizedAccessException or IOException) { return e.Message; }
    }

    /// <summary>Whether <paramref name="file"/> exists, as a file or as a link (a dangling one too: not this attempt's to remove).</summary>
    static bool Present(string file) => File.Exists(file) || new FileInfo(file).LinkTarget is not null;

    /// <summary>Removes the owner and lock files that did not exist before this attempt (the owner first, while
    /// the caller still holds the lock); a failure to remove them is not reported: the refusal matters, not the litter.</summary>
    static void RemoveLockFiles(string path, Locks names, bool lockExisted, bool ownerExisted)
    {
        foreach (var (name, existed) in new[] { (names.OwnerName, ownerExisted), (names.LockName, lockExisted) })
            if (!existed)
                try { File.Delete(System.IO.Path.Combine(path, name)); }
                catch (Exception e) when (e is IOException or UnauthorizedAccessException) { }
    }

    /// <summary>A run folder below <paramref name="path"/> (not itself; links not followed: a link
    /// moves as a link) whose lock another process holds, or null.</summary>
    static string? RunningBelow(string path)
    {
        var options = new EnumerationOptions { RecurseSubdirectories = true, IgnoreInaccessible = true, AttributesToSkip = FileAttributes.ReparsePoint };
        foreach (var file in Directory.EnumerateFiles(path, LockName, options).Where(f => System.IO.Path.GetDirectoryName(f) != path))
        {
            try { using (new FileStream(file, FileMode.Open, FileAccess.Read, FileShare.None)) { } }
            catch (IOException) { return System.IO.Path.GetDirectoryName(file); }
            catch (UnauthorizedAccessException) { }
        }
        return null;
    }

    /// <summary>The owner file's text in the run folder <paramref name="output"/> as this process sees it; "" where none is readable.</summary>
    public static string OwnerText(string output)
    {
        try { return RegularFile.ReadText(System.IO.Path.Combine(output, OwnerName), RecordLimit); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { return ""; }
    }

    /// <summary>"process PID on HOST since TIME" from the owner file.</summary>
    static string Holder(string file)
    {
        try
        {
            var parts = RegularFile.ReadText(file, RecordLimit).Trim().Split(' ');
            return parts.Length >= 3 ? $"process {parts[0]} on {parts[1]} since {parts[2]}" : "a process whose id is not readable";
        }
        catch (IOException) { return "a process whose id is not readable"; }
    }

    /// <summary>Temporary files of an atomic writer that was killed; any other *.tmp file is left alone.</summary>
    static void RemoveLeftovers(string path)
    {
        foreach (var folder in new[] { path, Checkpoints.Folder(path), MetricsLog.EventsFolder(path) }.Where(Directory.Exists)) // the folders atomic writes go to
            AtomicFile.RemoveAbandoned(folder);
    }

    static bool HoldsRun(string path) =>
        RunFiles.Any(f => File.Exists(System.IO.Path.Combine(path, f))) || Checkpoints.List(path).Count > 0;

    /// <summary>Whether a run here made progress: a checkpoint or a metrics line. A run that failed
    /// before its first step (bad data) left only its records, which the next run rewrites.</summary>
    static bool HasProgress(string path)
    {
        var metrics = System.IO.Path.Combine(path, MetricsLog.FileName);
        return Checkpoints.List(path).Count > 0 || (File.Exists(metrics) && new FileInfo(metrics).Length > 0);
    }

    static OutputException Refusal(string why, string path, bool offersMoveAside) =>
        new($"{why}. Nothing was changed: choose another --output, or {StartAnewAdvice(path, offersMoveAside)}");

    /// <summary>Why the records in <paramref name="path"/> are another program's, or null: a config.json or
    /// run.json that is not a run's (a model folder's own config.json) is never rewritten.</summary>
    static string? Foreign(string path)
    {
        var stored = System.IO.Path.Combine(path, "config.json");
        if (File.Exists(stored))
        {
            try { TrainConfig.FromJson(RegularFile.ReadText(stored, RecordLimit)); }
            catch (Exception e) when (e is ConfigException or FileTooLargeException or NotRegularFileException) { return $"'{path}' holds a config.json that is not a croc-host run's ({e.Message})"; }
        }
        return ForeignRunRecord(System.IO.Path.Combine(path, "run.json")) is { } why ? $"'{path}' holds a run.json that is not a croc-host run's ({why})" : null;
    }

    /// <summary>Why a run of <paramref name="config"/> may not write into <paramref name="path"/>, which
    /// holds no <see cref="Foreign"/> records, or null.</summary>
    static string? Conflict(string path, TrainConfig config)
    {
        if (!HasProgress(path)) return null; // a failed start's records: this run rewrites them
        var stored = System.IO.Path.Combine(path, "config.json");
        if (!File.Exists(stored)) return $"'{path}' holds files of a run without its config.json";
        var earlier = TrainConfig.FromJson(RegularFile.ReadText(stored, RecordLimit)); // readable: Foreign checked it
        if (TrainConfig.IdentityDifference(earlier, config) is { } difference)
            return $"'{path}' holds another run ({difference})";
        if (!config.Resume)
            return $"--resume false would start over in '{path}', which holds this run's progress";
        return null;
    }

    /// <summary>Why <paramref name="file"/> is not a record <see cref="Record"/> wrote, or null (also when absent).</summary>
    static string? ForeignRunRecord(string file)
    {
        if (!File.Exists(file)) return null;
        try
        {
            return StrictJson.Parse(RegularFile.ReadText(file, RecordLimit)) is JsonObject o && o["commit"] is JsonValue ? null : "no commit"; // every version wrote one
        }
        catch (Exception e) when (e is System.Text.Json.JsonException or FileTooLargeException or NotRegularFileException) { return e.Message; }
    }

    /// <summary>Writes the run's records: the resolved config, and in run.json this start's commit,
    /// time, processes and pid, with every start of the run so far under "starts" (a resume may run
    /// another build), a resume's settings that differ from its last start's under "changed"
    /// ({"KEY": {"was": a, "now": b}}). Returns those changes as "KEY a → b".</summary>
    public IReadOnlyList<string> Record(TrainConfig config, string commit, int world, bool resumed)
    {
        var stored = System.IO.Path.Combine(Path, "config.json");
        var changed = resumed ? ChangedSince(stored, config) : [];
        AtomicFile.WriteAllText(stored, config.ToJson() + "\n");
        var file = System.IO.Path.Combine(Path, "run.json");
        var start = new JsonObject { ["commit"] = commit, ["started"] = DateTime.UtcNow.ToString("o"), ["processes"] = world };
        if (changed.Count > 0)
            start["changed"] = new JsonObject(changed.Select(d => KeyValuePair.Create(d.Key, (JsonNode?)new JsonObject { ["was"] = JsonNode.Parse(d.Earlier), ["now"] = JsonNode.Parse(d.Now) })));
        var starts = new JsonArray([.. EarlierStarts(file), start.DeepClone()]);
        var run = new JsonObject { ["commit"] = commit, ["started"] = start["started"]!.DeepClone(), ["processes"] = world, ["pid"] = Environment.ProcessId, ["starts"] = starts };
        AtomicFile.WriteAllText(file, run.ToJsonString() + "\n");
        return [.. changed.Select(d => $"{d.Key} {d.Earlier} → {d.Now}")];
    }

    /// <summary>The settings of <paramref name="config"/> that differ from the stored config.json's (none when it is unreadable).</summary>
    static List<(string Key, string Earlier, string Now)> ChangedSince(string stored, TrainConfig config)
    {
        try { return [.. TrainConfig.Differences(TrainConfig.FromJson(RegularFile.ReadText(stored, RecordLimit)), config)]; }
        catch (Exception e) when (e is IOException or ConfigException) { return []; }
    }

    /// <summary>The starts an existing run's run.json records (one for a record written before "starts" existed), or none.</summary>
    static IEnumerable<JsonNode?> EarlierStarts(string file)
    {
        if (!File.Exists(file)) return [];
        JsonNode? parsed;
        try { parsed = StrictJson.Parse(RegularFile.ReadText(file, RecordLimit)); }
        catch (Exception e) when (e is System.Text.Json.JsonException or FileTooLargeException or NotRegularFileException) { return []; }
        if (parsed is not JsonObject earlier || earlier["commit"] is not JsonValue) return []; // not a run's record (see ForeignRunRecord)
        if (earlier["starts"] is JsonArray starts) return starts.Select(s => s?.DeepClone());
        return [new JsonObject { ["commit"] = earlier["commit"]?.DeepClone(), ["started"] = earlier["started"]?.DeepClone(), ["processes"] = earlier["processes"]?.DeepClone() }];
    }

    public void Dispose()
    {
        lockFile?.Dispose();
        lockFile = null;
    }
}
