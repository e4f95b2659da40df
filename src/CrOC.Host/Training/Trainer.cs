using System.Text.Json.Nodes;
using System.Diagnostics;
using CrOC.Data;
using CrOC.Host.CommandLine;
using CrOC.Host.Distributed;
using CrOC.Math;
using TorchSharp;
using CrOC.Host.Runtime;
using CrOC.Host.Weights;

namespace CrOC.Host.Training;

/// <summary>What a finished (or stopped) run reports: <see cref="Steps"/> in all, <see cref="StepsRun"/>
/// of them by this call (0 when the run had finished before).</summary>
public sealed record TrainSummary(long Steps, long StepsRun, double FirstLoss, double LastLoss, double Seconds, double ImagesPerSecond, string? LastCheckpoint, bool Interrupted);

/// <summary>A non-finite loss: the run stops, the last good checkpoint stays.</summary>
public sealed class DivergedException(string message) : Exception(message), CommandLine.IReportedFailure;

/// <summary>
/// The training loop (spec §2, §8): it iterates batches and runs one <see cref="StepRunner"/> step
/// each (the F# TrainingStep: CrOC's loss, backward, per-tensor clipping, the last layer frozen for
/// --freeze-last-layer epochs, AdamW with per-iteration lr/wd, the EMA teacher, the new centres),
/// logs and checkpoints. Each step runs in a dispose scope.
/// Data-parallel over <paramref name="collective"/> (whose ranks agreed on the settings and the run folder first:
/// <see cref="AgreeOnSettings"/>, <see cref="AgreeOnRunFolder"/>, as TrainCommand does): every rank starts from rank 0's weights, reads
/// its shard, and takes part in each step's all-reduces; only rank 0 logs metrics and writes
/// checkpoints. Rank 0 owns the run folder (<see cref="RunFolder"/>): given one claimed by the
/// caller, or claimed here for the run. Skipped image files are reported to
/// <paramref name="dataWarning"/> on every rank (default: <paramref name="log"/>).
/// </summary>
public sealed class Trainer(TrainConfig config, Action<string> log, ICollective? collective = null, torch.Device? device = null, RunFolder? folder = null, Action<string>? dataWarning = null)
{
    readonly ICollective ranks = collective ?? new SingleProcess();
    readonly torch.Device where = device ?? torch.CPU;

    volatile bool stepping;

    /// <summary>The stop: requested by a signal or the command; the one record of it (the loop checks it after each step).</summary>
    readonly SignalStop stop = new();

    /// <summary>Asks the loop to stop after the current step (and write a checkpoint).</summary>
    public void RequestStop() => stop.Request();

    /// <summary>Cancelled when a stop is requested: for the work before the steps (the synthetic set's generation).</summary>
    public CancellationToken Stopping => stop.Token;

    /// <summary>Whether a stop was asked (a signal before, during or after the loop).</summary>
    public bool StopRequested => stop.Requested;

    public TrainSummary Run(IReadOnlyList<ImageEntry> files, CancellationToken cancel = default)
    {
        CrocSetup.Preflight(config, ranks.World, where);
        using var claimed = folder is null && ranks.IsRoot ? RunFolder.Claim(config.Output, config, moveAside: false) : null;
        var owned = folder ?? claimed;
        var croc = CrocSetup.Croc(config);
        if (ranks.IsRoot) foreach (var warning in config.Warnings()) log(warning);
        var spec = MultiCropSpec.Croc(config.ImageSize, config.Patch, config.MinScale);
        var loader = new ImageLoader(files, spec, new LoaderOptions(config.Batch, config.Workers, LoaderOptions.PrefetchFor(config.Workers), config.Seed, ranks.Rank, ranks.World), warn: line => (dataWarning ?? log)($"croc-data: {line}"));
        int itersPerEpoch = loader.BatchesPerEpoch / config.Accum;
        if (itersPerEpoch == 0) throw new ConfigException($"{Counted.Of(files.Count, "image gives", "images give")} no optimiser step per epoch with --batch {config.Batch} --accum {config.Accum} on {Counted.Of(ranks.World, "process", "processes")}", everyRank: false); // this rank's dataset
        long totalSteps = (long)config.Epochs * itersPerEpoch;
        if (config.MaxSteps > 0) totalSteps = System.Math.Min(totalSteps, config.MaxSteps);
        var (lrSchedule, wdSchedule, momentumSchedule) = CrocSetup.Schedules(config, itersPerEpoch, ranks.World);

        var dataset = DatasetIdentity.Of(files);
        using var state = TrainingState.Fresh(config, croc, where);
        string? lastCheckpoint = null;
        if (config.Resume && Checkpoints.TryRestore(config.Output, config, state, log, ranks.World, dataset) is { } restored)
        {
            lastCheckpoint = restored;
            log($"resumed from {restored} at step {state.Step}");
        }
        else if (ranks.IsRoot && Checkpoints.List(config.Output).Count > 0)
            throw new OutputException($"every checkpoint of the run in '{config.Output}' was refused (reasons above): its checkpoints and records are as they were (train.log notes this attempt); choose another --output, or {owned!.StartAnew}");
        StartTogether(state, dataset, totalSteps, lastCheckpoint);
        if (state.Step >= totalSteps) // the finished run's records stay as they are
        {
            log(state.Step > totalSteps
                ? $"the run in {config.Output} is at step {state.Step}, beyond --max-steps {totalSteps}: nothing to do (its checkpoints stay as they are)"
                : $"the run in {config.Output} has already finished its {totalSteps} steps: nothing to do (a longer run: raise --epochs in a new --output, or --max-steps up to {config.Epochs * (long)itersPerEpoch})");
            return new TrainSummary(state.Step, 0, double.NaN, double.NaN, 0, 0, lastCheckpoint, false);
        }
        if (owned is not null)
        {
            foreach (var set in Checkpoints.SetAsideAfter(config.Output, state.Step)) log($"kept the refused checkpoint as {set}");
            var changed = owned.Record(config, GitInfo.Commit, ranks.World, resumed: lastCheckpoint is not null);
            if (changed.Count > 0) log($"resuming with settings changed since the run's last start: {string.Join(", ", changed)}");
        }
        log($"{Counted.Of(files.Count, "image")}, {Counted.Of(loader.BatchesPerEpoch, "batch", "batches")} of {config.Batch} per epoch on each of {Counted.Of(ranks.World, "process", "processes")}, {Counted.Of(itersPerEpoch, "optimiser step")} per epoch (global batch {config.Batch * config.Accum * ranks.World}), {Counted.Of(totalSteps, "step")} in all");

        using var metrics = ranks.IsRoot ? new MetricsLog(config.Output, state.Step, log: log) : null;
        var watch = Stopwatch.StartNew();
        long startStep = state.Step;
        double firstLoss = double.NaN, lastLoss = double.NaN;
        bool interactive = !Console.IsOutputRedirected && !Collectives.LaunchedByMpi; // Open MPI gives each process a terminal, whatever mpirun's own output is
        var settings = StepRunner.SettingsOf(config);

        string LastGood() => lastCheckpoint is null ? "No checkpoint was written yet." : $"The last good checkpoint is {lastCheckpoint}.";

        // A state that is not finite is never checkpointed: a finite loss can be followed by an update that
        // overflows (a NaN AdamW moment once made such a checkpoint the run's "last good" one).
        string NotCheckpointed(string unfit) => $"{unfit} after step {state.Step}: no checkpoint of it is written. {LastGood()}";

        // A checkpoint of the steps run since the last one (the root's alone, on a stop or a data failure: it
        // ends as it would have, with a line instead of a checkpoint when the state is not finite, and no rank waits).
        void SaveUnlessSaved()
        {
            if (state.Step > startStep && (lastCheckpoint is null || !lastCheckpoint.EndsWith($"step-{state.Step:D8}.safetensors", StringComparison.Ordinal)))
            {
                if (Checkpoints.Unfit(state) is { } unfit) log(NotCheckpointed(unfit));
                else lastCheckpoint = Checkpoints.Save(config.Output, config, state, config.KeepCheckpoints, ranks.World, config.KeepEvery, dataset, log);
            }
        }

        // The root keeps the steps run before the data failed (`onRanks`: " on rank(s) …" or "").
        void SaveAfterDataFailure(string onRanks)
        {
            if (!ranks.IsRoot) return;
            try { SaveUnlessSaved(); log($"the data failed at step {state.Step + 1}{onRanks}; the last good checkpoint is {lastCheckpoint ?? "none (no step was run)"}"); }
            catch (Exception saving) when (saving is IOException or UnauthorizedAccessException) { log($"the data failed at step {state.Step + 1}{onRanks}, and no checkpoint could be written: {saving.Message}"); }
        }

        // Distributed: the step's micro-batches are read before its first collective (accum of them
        // held at once), and the ranks agree that each read its own. One rank's data failure would
        // otherwise end it inside the step while the others wait in its all-reduce, and the job
        // would end without the root's checkpoint. After a failure: the root's checkpoint, then
        // every rank ends — the failing ones with their own line and code, the others with the
        // first failing rank's code — none aborting the others.
        IEnumerable<Batch> ReadTogether(IEnumerator<Batch> epochBatches)
        {
            var batches = new List<Batch>(config.Accum);
            Exception? failure = null;
            try { while (batches.Count < config.Accum && epochBatches.MoveNext()) batches.Add(epochBatches.Current); }
            catch (Exception e) when (e is DatasetException or IOException) { failure = e; }
            var codes = ranks.AllGatherValues(failure is null ? 0 : ExitCodes.For(failure));
            var failed = Enumerable.Range(0, codes.Length).Where(rank => codes[rank] > 0).ToList();
            if (failed.Count == 0) return batches;
            foreach (var batch in batches) batch.Dispose();
            string onRanks = $" on rank {string.Join(", ", failed)}";
            SaveAfterDataFailure(onRanks);
            ranks.AwaitRootWork(); // the checkpoint is written before any rank ends
            string message = $"the data failed at step {state.Step + 1}{onRanks} (its line says why); the run ends on every rank";
            var ending = failure ?? (codes[failed[0]] == ExitCodes.BadInput ? new DatasetException(message) : new IOException(message));
            ending.Data[TrainCommand.EveryRankEnds] = true;
            throw ending;
        }

        // A batch on the step's device, moved inside the step's dispose scope (freed with the step).
        (torch.Tensor, torch.Tensor, IDisposable?) OnDevice(Batch b) => (b.Globals.to(where), b.GlobalPositions.to(where), b);

        bool stop = AnyRankStops(StopRequested || cancel.IsCancellationRequested); // agreed by all ranks (at start and after each step): they run the same steps
        stepping = true;
        while (state.Step < totalSteps && !stop)
        {
            int epoch = (int)(state.Step / itersPerEpoch);
            int firstBatch = (int)(state.Step % itersPerEpoch) * config.Accum;
            using var epochBatches = loader.Epoch(epoch, firstBatch, cancel).GetEnumerator();
            while (state.Step < totalSteps && state.Step / itersPerEpoch == epoch && !stop)
            {
                var stepWatch = Stopwatch.StartNew();
                var waitBefore = loader.Stats.DataWait;
                int it = (int)state.Step;
                double lr = Schedules.cosineAt(lrSchedule, it), wd = Schedules.cosineAt(wdSchedule, it), momentum = Schedules.cosineAt(momentumSchedule, it);
                var (tauT, tauTc) = CrocSetup.TeacherTemperatures(config, epoch);
                Dictionary<string, double> values;
                // one process reads each batch as the step asks for it
                using var micro = (ranks.World == 1 ? Rest(epochBatches) : ReadTogether(epochBatches)).Select(OnDevice).GetEnumerator();
                try
                {
                    values = StepRunner.Run(croc, settings, config.Seed, state, ranks, micro,
                        new TrainingStep.Schedule(epoch: epoch, lr: lr, weightDecay: wd, momentum: momentum, teacherTemp: tauT, teacherTempC: tauTc));
                }
                catch (Exception e) when (e is DatasetException or IOException && ranks.World == 1)
                {
                    // Only the loader reads files in a step, and it gives every batch before the update:
                    // the state is still the last step's, whole, and is kept before the run ends.
                    SaveAfterDataFailure("");
                    throw;
                }
                double loss = values["loss"];
                if (!double.IsFinite(loss))
                    throw new DivergedException($"non-finite loss at step {state.Step + 1} (epoch {epoch}): L = {loss}, L_img = {values["loss_img"]}, L_obj = {values["loss_obj"]}. "
                        + LastGood());
                if (double.IsNaN(firstLoss)) firstLoss = loss;
                lastLoss = loss;
                double seconds = stepWatch.Elapsed.TotalSeconds;
                values["lr"] = lr; values["wd"] = wd; values["momentum"] = momentum; values["teacher_temp"] = tauT; values["teacher_temp_c"] = tauTc;
                values["data_wait_s"] = (loader.Stats.DataWait - waitBefore).TotalSeconds;
                values["step_s"] = seconds;
                values["images_per_s"] = config.Batch * config.Accum * ranks.World / seconds;
                values["live_tensors"] = torch.Tensor.TotalCount;
                bool checkpointStep = state.Step % config.CheckpointEvery == 0 || state.Step == totalSteps;
                if (checkpointStep && Checkpoints.Unfit(state) is { } unfit) throw new DivergedException(NotCheckpointed(unfit)); // on every rank: their states are the same
                if (ranks.IsRoot)
                {
                    try
                    {
                        metrics!.Write(state.Step, values);
                        Progress(state.Step, totalSteps, values, watch.Elapsed.TotalSeconds / System.Math.Max(1, state.Step - startStep), interactive);
                    }
                    catch (Exception e) when (e is IOException or UnauthorizedAccessException)
                    {
                        // the records failed (a read-only or full disk, a file made immutable), not the state: it is
                        // kept where its disk allows before the run ends (the steps since the last checkpoint were lost once)
                        try { SaveUnlessSaved(); }
                        catch (Exception saving) when (saving is IOException or UnauthorizedAccessException) { }
                        throw;
                    }
                    if (checkpointStep)
                        lastCheckpoint = Checkpoints.Save(config.Output, config, state, config.KeepCheckpoints, ranks.World, config.KeepEvery, dataset, log);
                }
                // the others wait for the root's checkpoint without --collective-timeout: slow storage is no hung rank
                if (checkpointStep) ranks.AwaitRootWork();
                // after the checkpoint: a signal that came while it was written stops here, not a step later
                stop = AnyRankStops(StopRequested || cancel.IsCancellationRequested);
            }
        }
        stepping = false;
        bool interrupted = state.Step < totalSteps;
        if (ranks.IsRoot && interrupted) SaveUnlessSaved();
        if (interactive) Console.Write($"\r{new string(' ', 150)}\r");
        if (loader.Stats.Skipped.Count > 0) log($"{loader.Stats.Skipped.Count} undecodable files were skipped (each listed when it was)");
        double elapsed = watch.Elapsed.TotalSeconds;
        long done = state.Step - startStep;
        return new TrainSummary(state.Step, done, firstLoss, lastLoss, elapsed, done * config.Batch * config.Accum * ranks.World / System.Math.Max(elapsed, 1e-9), lastCheckpoint, interrupted);
    }

    /// <summary>All ranks continue from the same step with rank 0's weights and centres (the
    /// optimiser moments, read from the same checkpoint — its SHA-256 agreed on — or zero, agree
    /// already), after checking that they will run the same steps (the same dataset — its size, then
    /// its list of names — and the same schedule; the configuration was agreed on as the ranks started).</summary>
    void StartTogether(TrainingState state, DatasetIdentity dataset, long totalSteps, string? restored)
    {
        if (ranks.World == 1) return;
        string sharedFolder = $"the run folder {config.Output} must be one shared folder that every process sees";
        ranks.Agree("the step to resume from", state.Step, sharedFolder);
        // a stale cache may show an earlier run's checkpoint of that step (after --move-aside): its moments are not broadcast
        ranks.Agree("the checkpoint resumed from (its SHA-256)", restored is null ? -1.0 : StableHash.Of(Safetensors.ReadMetadata(restored).GetValueOrDefault(Safetensors.ChecksumKey, "")), sharedFolder, showValues: false);
        ranks.Agree("the number of training images", dataset.Images, "every machine needs the same dataset at the same path");
        ranks.Agree("the training images (as many, but of other names, or order, or archive member sizes)", dataset.Fingerprint, "every machine needs the same dataset at the same path", showValues: false);
        ranks.Agree("the number of steps", totalSteps, "every process needs the same options");
        ranks.BroadcastFromRoot(state.Student.Concat(state.Teacher).Select(t => t.Tensor).Append(state.Model.Centre).Append(state.Model.CentreC));
    }

    /// <summary>After rank 0 claimed the run folder (and moved an earlier run aside: no rank reads its checkpoints
    /// before that), refuses a folder the ranks do not all see as rank 0 made it: a relative --output in each
    /// process's own working folder, or a folder on a machine's own disk, ran and was refused only at its first resume.
    /// A network file system may answer from a stale cache for a few seconds: read again up to <see cref="FolderLooks"/> times.</summary>
    public static void AgreeOnRunFolder(ICollective ranks, string output)
    {
        if (ranks.World == 1) return;
        ranks.AwaitRootWork();
        for (int look = 1; ; look++)
        {
            var owner = RunFolder.OwnerText(output);
            // every rank reads the same gathered values: all look again, or all end, together
            var seen = ranks.AllGatherValues(owner.Length == 0 ? -1.0 : StableHash.Of(owner));
            if (seen[0] < 0) throw new RanksDisagreeException($"rank 0 cannot read back the {RunFolder.OwnerName} it wrote in --output '{output}' as it claimed the folder");
            if (seen.All(v => v == seen[0])) return;
            if (look == FolderLooks)
                throw new RanksDisagreeException($"the processes do not see the same run folder (its {RunFolder.OwnerName}, written by rank 0, differs or is missing on rank(s) {string.Join(", ", Enumerable.Range(0, seen.Length).Where(r => seen[r] != seen[0]))}): --output '{output}' must be one folder that every process sees (a shared file system for several machines; a relative path resolves in each process's working folder)");
            Thread.Sleep(1000);
        }
    }

    /// <summary>How many times the ranks read the run folder's owner file before refusing a folder they do not all see.</summary>
    const int FolderLooks = 5;

    /// <summary>Refuses settings that differ between the ranks (exit 2 on every rank, naming them): called as they
    /// start, before any work that assumes them alike (a rank without --data waited in the synthetic set's
    /// barrier while the others searched their data, until the watchdog's exit 3; a --min-lr refused on one
    /// rank alone left the others in a collective; a differing --depth on a resume was reported as a folder
    /// that is not shared).</summary>
    public static void AgreeOnSettings(ICollective ranks, TrainConfig config) =>
        ranks.AgreeOnSettings(JsonNode.Parse(config.ToJson())!.AsObject().Select(kv => (kv.Key, kv.Value?.ToJsonString() ?? "null")).ToList(),
            "every process needs the same options and config file");

    /// <summary>The items an enumerator has left, taken one at a time as they are asked for.</summary>
    static IEnumerable<T> Rest<T>(IEnumerator<T> items)
    {
        while (items.MoveNext()) yield return items.Current;
    }

    /// <summary>A stop asked on any rank (Ctrl-C, SIGTERM, cancellation) stops all after the same step.</summary>
    bool AnyRankStops(bool here) => ranks.World == 1 ? here : ranks.AllGatherValues(here ? 1.0 : 0.0).Any(v => v > 0);


    bool warnedCollapse;

    void Progress(long step, long total, Dictionary<string, double> v, double secondsPerStep, bool interactive)
    {
        var eta = TimeSpan.FromSeconds(secondsPerStep * (total - step));
        var objects = config.Alpha > 0 // --alpha 0 skips the clustering: no objects, K* NaN
            ? $"(img {v["loss_img"]:F4}, obj {v["loss_obj"]:F4}) objects/img {v["objects_per_image"]:F1} K* {v["mean_k_star"]:F2}"
            : "(image-level only: --alpha 0)";
        var text = $"step {step}/{total} loss {v["loss"]:F4} {objects} H(t) {v["teacher_entropy"]:F2} lr {v["lr"]:E2} {v["images_per_s"]:F1} img/s ETA {ProgressReport.Clock(eta)}";
        bool logged = step % config.LogEvery == 0 || step == total;
        // On a terminal the line is redrawn in place; a logged step replaces it by the log's line.
        if (interactive) Console.Write(logged ? $"\r{new string(' ', 150)}\r" : $"\r{text,-150}");
        if (logged) log(text);
        if (!warnedCollapse && TrainingStep.looksCollapsed(step, v["teacher_entropy"], config.OutDim))
        {
            warnedCollapse = true;
            log($"warning: the teacher's entropy is {v["teacher_entropy"]:F3} (uniform = ln L = {System.Math.Log(config.OutDim):F2}): the targets look collapsed; consider the teacher temperature, the centre momentum or the lr");
        }
    }

    /// <summary>Installs the stop signals' handlers (<see cref="SignalStop.Handlers"/>), which finish the current step,
    /// checkpoint and exit 0; installed before the data is found and kept until the command ends, so
    /// that no signal ends it silently with 130 / 143 / 129.</summary>
    public IDisposable StopOnSignals() => SignalStop.Handlers(OnStopSignal);

    /// <summary>A stop signal: the stop is requested first, then announced as best it can be (the
    /// log's disk may be what failed, and an exception in a signal handler would end the process).
    /// Returns false for the same signal a second time: its default action then ends the process at
    /// once (a hung data search, a long step), without the checkpoint.</summary>
    public bool OnStopSignal(string signal)
    {
        if (!stop.Take(signal)) return false;
        var line = stepping ? $"{signal}: finishing the current step, then writing a checkpoint (the same signal again stops at once, without it)" : $"{signal}: stopping (no step is running)";
        try
        {
            if (ranks.IsRoot) log(line);
            else (dataWarning ?? Console.Error.WriteLine)($"croc-host train [rank {ranks.Rank}]: {line}"); // these ranks have no log: a stop sent to one was said nowhere
        }
        catch (Exception) { /* announced or not, the run stops after this step */ }
        return true;
    }
}
