using System.Globalization;
using System.Text.Json;
using CrOC.Data;
using CrOC.Host.CommandLine;
using CrOC.Host.Runtime;
using CrOC.Host.Training;
using CrOC.Host.Weights;

namespace CrOC.Host.Evaluation;

/// <summary>
/// The synthetic experiment: does CrOC learn? On the synthetic scenes, pre-train the tiny preset with
/// CrOC (α = 1) and DINO-only (α = 0) at several seeds, and evaluate both and a random
/// initialisation with the linear segmentation probe; print mIoU mean ± std and wall times.
/// </summary>
public static class SyntheticExperiment
{
    sealed record Row(string Method, int Seed, double MeanIoU, double GrayMeanIoU, double TrainSeconds, double EvalSeconds);

    static Row Probe(string method, int seed, string checkpoint, bool random, string data, int classes, ProbeOptions probe, double trainSeconds)
    {
        int? init = random ? seed : null;
        var colour = EvalSegCommand.Evaluate(checkpoint, NetworkChoice.Teacher, init, null, data, "train", "val", classes, probe, [seed], _ => { }).Runs[0];
        var gray = EvalSegCommand.Evaluate(checkpoint, NetworkChoice.Teacher, init, null, data, "train", "val", classes, probe with { Grayscale = true }, [seed], _ => { }).Runs[0];
        Console.WriteLine($"   {method} seed {seed}: mIoU {100 * colour.MeanIoU:F1} (colour), {100 * gray.MeanIoU:F1} (gray)");
        return new Row(method, seed, colour.MeanIoU, gray.MeanIoU, trainSeconds, colour.Seconds + gray.Seconds);
    }

    /// <summary>Settings the suite sets itself for each run: --train-args may not change them.</summary>
    static readonly string[] SuiteSettings = ["output", "seed", "alpha", "data", "move-aside"];
    const string SuiteOwnReason = "(each run's output and its resumption, seed from --seeds, alpha 1 or 0, the synthetic scenes)";

    /// <summary>The words of --train-args as the command line's (name, value) pairs (a flag may go
    /// without a value, as on train's command line); one of <see cref="SuiteSettings"/> (the table's
    /// rows would not be what they say), or train's --move-aside (the suite's runs resume), is refused.</summary>
    static List<(string Name, string? Value)> TrainPairs(string text)
    {
        List<(string Name, string? Value)> pairs;
        try { pairs = Arguments.Pairs(text.Split((char[]?)null, StringSplitOptions.RemoveEmptyEntries)); } // any white space: a tab was part of a name once
        catch (OptionException e) { throw new OptionException($"--train-args: {e.Message}"); }
        foreach (var (name, value) in pairs)
        {
            if (name == "help") // dropped once, and the suite's hours of pre-training began
                throw new OptionException("--train-args: --help there shows nothing; the options it takes are `croc-host train --help`'s");
            if (SuiteSettings.Contains(name))
                throw new OptionException($"--train-args: '--{name}' is the suite's own {SuiteOwnReason}; leave it out");
        }
        return pairs;
    }

    public static int Run(ExperimentOptions o, string output)
    {
        // Outside the trainer's own handlers and the scenes' generation (a --config FIFO in --train-args, the probes) a
        // stop signal ends the suite in one line: it ended silently with 130 / 143 once. One set of handlers at a time, as train's.
        var abruptStop = AbruptStop.Install("experiment");
        try
        {
            var (seeds, size, featureSize, probeEpochs, maxTrain) = (o.Seeds ?? [0, 1], o.Size, o.FeatureSize, o.ProbeEpochs, o.MaxTrain);
            var extra = TrainPairs(o.TrainArgs);
            if (o.Quick) throw new OptionException("--quick is the real suite's try-out (--suite real); the synthetic suite's size is set by --seeds, --train-args and the probe options");
            if (o.DataRoot != new ExperimentOptions().DataRoot) // ignored silently once
                throw new OptionException("--data-root names the real suite's datasets (--suite real); the synthetic suite makes its own scenes ($CROC_DATA_HOME): leave it out");
            TrainConfig recipe;
            try { recipe = TrainConfig.Resolve(extra); }
            catch (Exception e) when (e is OptionException or ConfigException) { throw new OptionException($"--train-args: {e.Message} (they are `croc-host train --help`'s options)"); }
            // a --config file may not set what the literal words may not (its data would be recorded, the scenes used)
            if (extra.FirstOrDefault(p => p.Name == "config").Value is { } file && TrainConfig.SettingsOf(file).FirstOrDefault(SuiteSettings.Contains) is { } own)
                throw new OptionException($"--train-args: --config '{file}' sets '{own}', which is the suite's own {SuiteOwnReason}; leave it out of the file");
            int patch = recipe.Patch; // checked before hours of pre-training, not after
            if (size % patch != 0) throw new OptionException($"--size {size} is not a multiple of the patch size {patch}");

            output = OutputPaths.Folder(output, "--output"); // a file there is named now, not as the first run's folder
            var resultsPath = Path.Combine(output, "results.json");
            if (Directory.Exists(resultsPath)) // the whole suite ran, then "I/O error: Is a directory" once
                throw new OutputException($"--output '{output}' holds a folder named results.json, where the suite writes its results: move it away, or choose another --output");
            // before the scenes' generation: a second suite into this --output was refused only after it, once
            using var held = RunFolder.LockSuite(output);
            IDisposable AbruptStopReleasing() => AbruptStop.Install("experiment", release: held); // it left suite.owner behind, once
            string data;
            abruptStop.Dispose(); // one set of handlers at a time: a stop here ended the suite with 130 and left the half-built set
            var generation = new SignalStop();
            using (SignalStop.Handlers(generation.Take))
            {
                try
                {
                    data = SyntheticDataset.Ensure(recipe, generation.Token); // --train-args' --synthetic-train/-val included
                    if (generation.Requested) return StoppedGenerating(held); // a signal after the last scene was taken: the set is kept, the suite stops
                }
                catch (OperationCanceledException) when (generation.Requested) { return StoppedGenerating(held); }
            }
            abruptStop = AbruptStopReleasing();
            var files = ImageSources.Find([SyntheticDataset.TrainList(data)]);
            int classes = SyntheticScenes.ClassNames.Length;
            var rows = new List<Row>();
            foreach (var seed in seeds)
            {
                var probe = new ProbeOptions(Size: size, FeatureSize: featureSize, Epochs: probeEpochs, Milestone: System.Math.Max(1, probeEpochs * 4 / 5), Batch: 32, CacheFeatures: true, MaxTrain: maxTrain);
                string? lastCheckpoint = null;
                foreach (var (method, alpha) in new[] { ("CrOC", "1"), ("DINO-only (alpha 0)", "0") })
                {
                    var runDir = Path.Combine(output, $"{(alpha == "1" ? "croc" : "dino")}-seed{seed}");
                    var pairs = new List<(string, string?)> { ("output", runDir), ("seed", seed.ToString(CultureInfo.InvariantCulture)), ("alpha", alpha) };
                    pairs.AddRange(extra);
                    var config = TrainConfig.Resolve(pairs);
                    Console.WriteLine($"== pre-training {method}, seed {seed} → {runDir}");
                    using var folder = RunFolder.Claim(runDir, config, moveAside: false, offersMoveAside: false);
                    var runLog = new RunLog(folder.LogPath, line => !line.StartsWith("step ", StringComparison.Ordinal)); // train.log has the steps too
                    var trainer = new Trainer(config, runLog.Write, folder: folder, dataWarning: runLog.Error);
                    TrainSummary summary;
                    try
                    {
                        abruptStop.Dispose();
                        using (trainer.StopOnSignals()) summary = trainer.Run(files);
                        abruptStop = AbruptStopReleasing();
                    }
                    catch (Exception e)
                    {
                        // the run's own log ends with why it ended, as train's does (the command reports it on stderr)
                        try { File.AppendAllText(folder.LogPath, $"croc-host experiment: {ExitCodes.Message(e)}\n"); } catch (Exception) { /* the log may be what failed */ }
                        throw;
                    }
                    if (summary.Interrupted || trainer.StopRequested)
                    {
                        Console.WriteLine(summary.StepsRun > 0
                            ? $"stopped at step {summary.Steps} of {runDir} (checkpointed): rerun the same command to resume"
                            : $"stopped before a step of {runDir}: rerun the same command to go on");
                        return ExitCodes.Ok;
                    }
                    lastCheckpoint = summary.LastCheckpoint ?? throw new InvalidOperationException("the run wrote no checkpoint");
                    Console.WriteLine($"   {Described(summary)}");
                    rows.Add(Probe(method, seed, lastCheckpoint, false, data, classes, probe, MetricsLog.TrainingSeconds(runDir)));
                }
                rows.Add(Probe("random init", seed, lastCheckpoint!, true, data, classes, probe, 0));
            }

            Console.WriteLine();
            Console.WriteLine($"| method | mIoU %, colour images (mean ± std, seeds {string.Join(", ", seeds)}) | mIoU %, gray images | pre-training wall time | probe wall time (both) |");
            Console.WriteLine("|---|---|---|---|---|");
            foreach (var group in rows.GroupBy(r => r.Method))
                Console.WriteLine($"| {group.Key} | {Statistics.PercentCell(group.Select(r => r.MeanIoU))} | {Statistics.PercentCell(group.Select(r => r.GrayMeanIoU))} | {group.Average(r => r.TrainSeconds):F0} s | {group.Average(r => r.EvalSeconds):F0} s |");
            AtomicFile.WriteAllText(resultsPath, JsonSerializer.Serialize(rows, new JsonSerializerOptions { WriteIndented = true }) + "\n");
            return 0;
        }
        finally { abruptStop.Dispose(); }
    }

    static int StoppedGenerating(IDisposable suiteLock)
    {
        Console.WriteLine(SyntheticDataset.StoppedWhileGenerating);
        suiteLock.Dispose(); // its files first: then the --output made before the generation is empty
        MadeFolders.RemoveEmpty();
        return ExitCodes.Ok;
    }

    /// <summary>A run's line in the experiment's report: steps, time and losses of what this start ran
    /// (a finished run rerun ran nothing: "loss NaN → NaN" once; a resumed one ran its last steps).</summary>
    public static string Described(Training.TrainSummary summary) =>
        summary.StepsRun == 0 ? $"{Counted.Of(summary.Steps, "step")}, finished earlier"
        : summary.StepsRun < summary.Steps ? $"steps {summary.Steps - summary.StepsRun + 1}–{summary.Steps} of {summary.Steps} in {summary.Seconds:F0} s (resumed), loss {summary.FirstLoss:F3} → {summary.LastLoss:F3}"
        : $"{Counted.Of(summary.Steps, "step")} in {summary.Seconds:F0} s, loss {summary.FirstLoss:F3} → {summary.LastLoss:F3}";
}
