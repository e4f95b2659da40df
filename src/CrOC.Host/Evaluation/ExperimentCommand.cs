using CrOC.Host.CommandLine;

namespace CrOC.Host.Evaluation;

/// <summary>`croc-host experiment`'s command line.</summary>
[Command("experiment", "CrOC vs DINO-only (--alpha 0) vs random init: the synthetic scenes, or the real-photo suite", Notes = """
    --suite real (README "CrOC on real photos"): pre-trains CrOC and DINO-only on CamVid's trainval
    photos (2 seeds, the two methods side by side), then evaluates both and a random initialisation
    with frozen backbones: CamVid test mIoU, Weizmann horse IoU, Tiny ImageNet k-NN top-1, and a
    CamVid val curve over pre-training steps; pictures of the clusters and of the probe's masks.
    About 65 minutes on a 2-core Zen 5 (bf16), 2.5 hours on a 2-core Intel Xeon with AMX (a pair
    of runs took an hour there), about 4 hours on an AVX2-only Zen 3 (fp32); --quick: one seed,
    short runs, 5 minutes on Zen 5, 8.4 on an Emerald Rapids guest (fp32), 18–32 on AVX2 alone. The recipe is
    fixed in the code (RealPhotoPlan); --seeds picks its pre-training seeds (--seeds 0: one
    seed, half the pre-training time); --train-args and the probe options are the synthetic
    suite's (refused with --suite real). Writes DIR/results.json, DIR/results.md and DIR/pictures/;
    a rerun continues.
    --suite synthetic: the tiny preset on the synthetic scenes, probed on colour and on gray images
    (colour alone names the synthetic classes). The probe caches frozen features (no augmentation):
    the CPU-sized variant of spec §12.1. Writes DIR/results.json and prints a table.
    """)]
public sealed record ExperimentOptions
{
    [Option("which experiment")]
    public ExperimentSuite Suite { get; init; } = ExperimentSuite.Synthetic;
    [Option("the real suite's try-out variant: one seed, short runs (5–8 minutes on 2 AVX-512 cores, ~20 on AVX2 alone)")]
    public bool Quick { get; init; }
    [Option("the real suite's datasets: camvid/, weizmann-horses/ and tiny-imagenet-subset.tar", Value = "DIR")]
    public string DataRoot { get; init; } = "../shared/data";
    [Option("pre-training seeds (and the synthetic suite's probe seeds)", Min = 0, Default = "0,1; --quick: 0")]
    public int[]? Seeds { get; init; }
    [Option("runs and results", Value = "DIR", Default = "runs/experiment, or runs/real-photos[-quick]")]
    public string? Output { get; init; }
    [Option("extra train options for both methods, e.g. --train-args=\"--epochs 16\"", Value = "\"...\"")]
    public string TrainArgs { get; init; } = "";
    [Option("probe input size", Min = 1, Max = 4096)]
    public int Size { get; init; } = 128;
    [Option("probe feature-map side", Min = 1, Max = 4096)]
    public int FeatureSize { get; init; } = 64;
    [Option("probe epochs (lr x0.1 for the last fifth)", Min = 1, Max = 100000)]
    public int ProbeEpochs { get; init; } = 10;
    [Option("probe training images", Min = 1)]
    public int MaxTrain { get; init; } = 256;
}

/// <summary>`croc-host experiment`: the synthetic suite or the real-photo suite.</summary>
public static class ExperimentCommand
{
    public static int Run(ExperimentOptions o)
    {
        if (o.Suite == ExperimentSuite.Synthetic) return SyntheticExperiment.Run(o, o.Output ?? "runs/experiment");
        var defaults = new ExperimentOptions();
        var synthetics = new (string Name, bool Given)[] { ("--train-args", o.TrainArgs.Trim().Length > 0), ("--size", o.Size != defaults.Size), ("--feature-size", o.FeatureSize != defaults.FeatureSize), ("--probe-epochs", o.ProbeEpochs != defaults.ProbeEpochs), ("--max-train", o.MaxTrain != defaults.MaxTrain) };
        if (synthetics.Where(s => s.Given).Select(s => s.Name).ToList() is [_, ..] given) // ignored silently once, after hours of the fixed recipe
            throw new OptionException($"{string.Join(", ", given)}: the synthetic suite's; the real suite's recipe is fixed (RealPhotoPlan, README \"CrOC on real photos\"): leave {(given.Count == 1 ? "it" : "them")} out");
        var plan = RealPhotos.RealPhotoPlan.For(o.Quick, o.Seeds);
        var output = OutputPaths.Folder(o.Output ?? (o.Quick ? "runs/real-photos-quick" : "runs/real-photos"), "--output");
        using var held = Training.RunFolder.LockSuite(output);
        void Log(string line) => Console.WriteLine($"{DateTime.Now:HH:mm:ss} {line}");
        // Ctrl-C or Ctrl-\, SIGTERM, SIGHUP, SIGUSR1 reach the running jobs: training ones checkpoint; the suite then ends
        // with 0 (SIGHUP and Ctrl-\ ended the suite at once, its jobs training on as orphans, once); the same signal
        // again ends the suite at once, as train's. Said when taken, as train says it: the suite was silent until its jobs ended, once.
        var stop = new Runtime.SignalStop();
        using var handlers = Runtime.SignalStop.Handlers(signal =>
        {
            if (!stop.Take(signal)) return false;
            RealPhotos.HostJobs.StopAll(); // first: a blocked standard output must not hold the jobs' stop
            Log($"{signal}: asked the running jobs to end (a training job writes its checkpoint first); the same signal again ends the suite at once");
            return true;
        });
        RealPhotos.RealPhotoResults results;
        try { results = new RealPhotos.RealPhotoSuite(plan, o.DataRoot, output, Log).Run(); }
        catch (RealPhotos.JobsStoppedException stopped)
        {
            Console.WriteLine(stopped.Message);
            return ExitCodes.Ok;
        }
        Console.WriteLine();
        Console.Write(File.ReadAllText(Path.Combine(output, "results.md")));
        Console.WriteLine($"results: {Path.Combine(output, "results.json")}, {Path.Combine(output, "results.md")}; pictures in {Path.Combine(output, "pictures")}");
        return ExitCodes.Ok;
    }
}

/// <summary>`experiment --suite`: the generated scenes, or the real photos of ../shared/data.</summary>
public enum ExperimentSuite { Synthetic, Real }
