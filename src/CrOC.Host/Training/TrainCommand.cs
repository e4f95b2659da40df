using CrOC.Data;
using CrOC.Host.CommandLine;
using CrOC.Host.Distributed;
using CrOC.Host.Visual;
using TorchSharp;
using CrOC.Host.Runtime;
using CrOC.Host.Weights;

namespace CrOC.Host.Training;

/// <summary>The options of `croc-host train` that steer the command rather than the run (not part of the stored config).</summary>
[Command("train", TrainCommand.Summary)]
public sealed record TrainCommandOptions
{
    [Option("a JSON or TOML file of settings (any option below, kebab-case keys); the command line wins", Value = "FILE")]
    public string? Config { get; init; }
    [Option("move the run that --output holds (any run: another, a refused or a resumable one) to DIR.old-<time> (never deleted) and start anew; leave it out of requeue scripts, which should resume")]
    public bool MoveAside { get; init; }
}

/// <summary>The notes of `croc-host train --help`.</summary>
static class TrainHelp
{
    public const string Notes = """
        Defaults are the tiny preset's (ViT-Ti/8 at 64 px, small heads); --preset official takes the
        paper's (ViT-S/16, 224 px, 65536/8192 outputs, 300 epochs, batch 16).
        Several processes (data-parallel; Open MPI, see the README): mpirun -np N croc-host train ...
        Each process takes --batch images per micro-batch (global batch = N × batch × accum);
        gradients and metrics are averaged, the centres' sums and counts all-reduced; rank 0 writes
        the outputs.
        The run folder belongs to one run: a second run there at the same time is refused, a different
        run (other identity settings, or --resume false over a run's progress) too; --move-aside moves
        whatever run is there aside (a resumable one too) and starts anew.
        Tuning advice: keep --lr per 256 images (it is scaled by the global batch); if the teacher
        entropy collapses to 0 or to ln(out-dim), lower --lr or raise --momentum-teacher; with a small
        batch on a CPU, --accum reaches the official effective batch.
        Exit codes: 0 done or stopped cleanly (Ctrl-C / SIGTERM write a checkpoint first), 1 diverged,
        disk full or another failure while training, 2 bad options, data, devices or --output,
        3 another process died or hung (distributed).
        """;
}

/// <summary>`croc-host train`.</summary>
public static class TrainCommand
{
    public const string Summary = "CrOC pre-training; with no option: the tiny preset on the embedded synthetic scenes (a few minutes on a CPU)";

    public static string Help() => OptionSet<TrainConfig>.Help(moreOptions: OptionSet<TrainCommandOptions>.OptionLines());

    public static int Run(string[] args)
    {
        if (Arguments.AsksForHelp(args)) { Console.Write(Help()); return ExitCodes.Ok; }
        // Until the trainer's handlers take over, a stop signal ends the start in one line (a --config FIFO
        // waits for its writer; the run folder's claim): it ended silently with 130 / 143 once.
        using var startStop = AbruptStop.Install("train");
        var pairs = Arguments.Pairs(args);
        var control = new TrainCommandOptions();
        OptionSet<TrainCommandOptions>.Apply(control, pairs.Where(p => p.Name is "move-aside"));
        var config = TrainConfig.Resolve(pairs.Where(p => p.Name is not "move-aside").ToList());
        using var ranks = Collectives.FromEnvironment(TimeSpan.FromSeconds(config.CollectiveTimeout));
        RunFolder? folder = null;
        string? logPath = null;
        try
        {
            Trainer.AgreeOnSettings(ranks, config);
            var device = Devices.Resolve(config.Device, ranks.LocalRank);
            CrocSetup.Preflight(config, ranks.World, device);
            if (ranks.IsRoot)
            {
                folder = RunFolder.Claim(config.Output, config, control.MoveAside);
                logPath = folder.LogPath;
                Watchdog.AlsoLogTo(logPath);
            }
            Trainer.AgreeOnRunFolder(ranks, config.Output);
            return Train(config, ranks, device, folder, new RunLog(logPath), startStop);
        }
        catch (Exception e)
        {
            return ReportOnRank("train", ranks, e, logPath);
        }
        finally
        {
            folder?.Dispose();
        }
    }

    static int Train(TrainConfig config, ICollective ranks, torch.Device device, RunFolder? folder, RunLog log, IDisposable startStop)
    {
        int threads = config.Threads > 0 ? config.Threads : Collectives.DefaultThreads(ranks);
        torch.set_num_threads(threads);
        if (folder?.MovedTo is { } moved) log.Write($"the earlier run in {config.Output} was moved to {moved}");
        log.Write($"croc-host train, commit {GitInfo.Commit}, {DateTime.UtcNow:u}, {ranks.World} process(es), {threads} threads each; {MklVendorCheck.Status}; {HeapSettings.Status}");
        if (Collectives.Oversubscription(threads, ranks.LocalWorld) is { } warning) log.Write(warning);
        log.Write("resolved config:\n" + config.ToJson());

        var trainer = new Trainer(config, log.Write, ranks, device, folder, dataWarning: log.Error);
        startStop.Dispose(); // one set of handlers at a time: the start's would end the run without its checkpoint
        using var signals = trainer.StopOnSignals(); // from here to the end: the data search and the picture too
        IReadOnlyList<ImageEntry> files;
        string? synthetic = null;
        if (config.Data.Length == 0)
        {
            // alone, a stop signal ends the generation (it ran on for hours once); ranks generate it whole, as the others wait for it
            var stopping = ranks.World == 1 ? trainer.Stopping : CancellationToken.None;
            try { if (ranks.LocalRank == 0) SyntheticDataset.Ensure(config, stopping); } // once per machine, while the others wait, however long it takes
            catch (OperationCanceledException) when (trainer.StopRequested)
            {
                log.Write(SyntheticDataset.StoppedWhileGenerating);
                return ExitCodes.Ok;
            }
            ranks.AwaitLocalWork();
            synthetic = SyntheticDataset.Ensure(config);
            files = ImageSources.Find([SyntheticDataset.TrainList(synthetic)]);
        }
        else files = ImageSources.Find(config.Data, line => log.Error($"croc-data: {line}"));

        var summary = trainer.Run(files);
        if (!ranks.IsRoot) return ExitCodes.Ok;
        var picture = Path.Combine(config.Output, RunFolder.PictureName);
        void Draw(string checkpoint)
        {
            WriteClusterPicture(config, checkpoint, new VocSegmentation(synthetic!, "val"), picture);
            log.Write($"online clusters of 4 validation images: {picture}");
        }
        if (summary.StepsRun == 0)
        {
            if (summary.Interrupted) log.Write($"stopped before the first step at step {summary.Steps}: nothing new to checkpoint");
            // a run stopped between its last checkpoint and its picture: every rerun said "finished" without one once
            else if (synthetic is not null && PictureCheckpoint(summary, trainer.StopRequested) is { } finished && !File.Exists(picture)) Draw(finished);
            return ExitCodes.Ok;
        }
        log.Write($"{(summary.Interrupted ? "stopped" : "finished")} at step {summary.Steps} ({Counted.Of(summary.StepsRun, "step")} in {summary.Seconds:F0} s): loss {summary.FirstLoss:F4} → {summary.LastLoss:F4}, {summary.ImagesPerSecond:F1} images/s");
        if (synthetic is not null && PictureCheckpoint(summary, trainer.StopRequested) is { } last) Draw(last);
        log.Write($"outputs in {Path.GetFullPath(config.Output)}: config.json, train.log, metrics.jsonl, tensorboard/, checkpoints/ (last: {summary.LastCheckpoint ?? "none"})");
        return ExitCodes.Ok;
    }

    /// <summary>Reports <paramref name="e"/> (naming the rank in a distributed run) and returns its exit
    /// code; an error that may be this rank's alone ends all ranks: the others may wait in a collective.</summary>
    public static int ReportOnRank(string command, ICollective ranks, Exception e, string? log)
    {
        int code = ExitCodes.Report(ranks.World > 1 ? $"{command} [rank {ranks.Rank}]" : command, e, log);
        if (ranks.World > 1 && !MetByEveryRank(e)) ranks.Abort(code);
        return code;
    }

    /// <summary>A divergence, a bad configuration or a disagreement between ranks: every rank meets
    /// it at the same point (they share the metrics, the config and the checks), so all end normally.
    /// A configuration error that can be one rank's alone (its dataset, its folder) is not.</summary>
    public static bool MetByEveryRank(Exception e) => e is DivergedException or DistributedException or RanksDisagreeException || e is ConfigException { EveryRank: true } || e.Data.Contains(EveryRankEnds);

    /// <summary>The <see cref="Exception.Data"/> key of a failure that every rank ends with together
    /// (one rank's data failure, agreed on before the step; see Trainer).</summary>
    public const string EveryRankEnds = "croc-every-rank-ends";

    /// <summary>The checkpoint a synthetic run draws its cluster picture from: none after a stop signal
    /// (<paramref name="stopAsked"/>: also one after the last step), whose sender wants the process gone soon.</summary>
    public static string? PictureCheckpoint(TrainSummary summary, bool stopAsked) => summary.Interrupted || stopAsked ? null : summary.LastCheckpoint;

    /// <summary>Loads the teacher of a checkpoint and draws the clusters of the first four images.</summary>
    static void WriteClusterPicture(TrainConfig config, string checkpoint, VocSegmentation images, string path)
    {
        var croc = CrocSetup.Croc(config);
        using var state = TrainingState.Fresh(config, croc);
        Checkpoints.Restore(checkpoint, config, state);
        var decoded = Enumerable.Range(0, System.Math.Min(4, images.Count)).Select(i => images.Load(i).Image).ToList();
        ClusterPictures.Write(croc.Network.Vit, croc.Clustering, croc.Features, state.Model.Teacher.Backbone, decoded, config.Seed, path, null);
    }
}

/// <summary>Log lines to the console and to the run's train.log, errors to stderr and train.log;
/// without a path (the ranks other than 0 of a distributed run) only errors, to stderr. With
/// <paramref name="onConsole"/>, only the lines it accepts are shown (train.log has all). Safe to
/// call from several threads (the loader's workers report skipped files).</summary>
sealed class RunLog(string? path, Func<string, bool>? onConsole = null)
{
    readonly Lock gate = new();

    public void Write(string line)
    {
        if (path is null) return;
        lock (gate)
        {
            File.AppendAllText(path, line + "\n"); // first: the console may be a closed terminal
            if (onConsole?.Invoke(line) ?? true) Console.WriteLine(line); // a console that fails loses it (TolerantConsole)
        }
    }

    public void Error(string line)
    {
        lock (gate)
        {
            if (path is not null) File.AppendAllText(path, line + "\n");
            Console.Error.WriteLine(line);
        }
    }
}
