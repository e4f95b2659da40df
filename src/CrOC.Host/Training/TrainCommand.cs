using CrOC.Data;
using CrOC.Host.Distributed;
using TorchSharp;

namespace CrOC.Host.Training;

/// <summary>`croc-host train`.</summary>
public static class TrainCommand
{
    const string Help = """
        croc-host train: CrOC pre-training (image-level + object-level self-distillation).

        With no option it trains the `tiny` preset (ViT-Ti/8 at 64 px, small heads) for a few minutes
        on the embedded synthetic scenes (generated once), writing runs/croc-tiny/.

        Usage: croc-host train [--preset tiny|official] [--config run.json|run.toml] [--<setting> value ...]

        Common settings (every field of the resolved config printed at start is an option):
          --data ROOTS          image folders / patterns / .txt lists, comma-separated
                                (COCO+: --data ~/coco/train2017,~/coco/unlabeled2017)
          --output DIR          run folder: config.json, metrics.jsonl, tensorboard/, checkpoints/
          --epochs N  --max-steps N  --batch B  --accum N  --workers N  --seed S  --device cpu|cuda
          --precision auto|fp32|bf16  auto (default): bf16 mixed precision where bfloat16 is
                                native (AVX512-BF16/AMX CPUs, CUDA), else fp32
          --alpha A             weight of the object loss (0: DINO-only baseline)
          --global-pool cls|avg image-level vector: CLS (official) or mean patch token (poster)
          --features keys|tokens  cluster last-block keys per head (official) or output tokens
          --resume true|false   continue from the newest good checkpoint in --output (default true)
        Several processes (data-parallel; Open MPI, see the README):
          mpirun -np N croc-host train ...   each process takes --batch images per micro-batch
                                (global batch = N × batch × accum); gradients, metrics and
                                centres are averaged over the processes; rank 0 writes the
                                outputs. --threads 0 shares the cores among the local processes;
                                --collective-timeout S (600) ends the run when a process vanishes.
        Tuning advice: keep --lr per 256 images (it is scaled by the global batch); if the teacher
        entropy collapses to 0 or to ln(out-dim), lower --lr or raise --momentum-teacher; with a
        small batch on a CPU, --accum reaches the official effective batch.
        Exit codes: 0 done or interrupted cleanly (Ctrl-C / SIGTERM write a checkpoint first),
        1 diverged or data error, 2 bad options, 3 another process died or hung (distributed).
        """;

    public static int Run(string[] args)
    {
        if (args.Any(a => a is "--help" or "-h")) { Console.WriteLine(Help); return 0; }
        TrainConfig config;
        try
        {
            config = TrainConfig.Resolve(Options.Pairs(args));
        }
        catch (Exception e) when (e is ConfigException or OptionException)
        {
            Console.Error.WriteLine($"croc-host train: {e.Message}\nRun `croc-host train --help` for the options.");
            return 2;
        }
        ICollective ranks;
        try
        {
            ranks = Collectives.FromEnvironment(TimeSpan.FromSeconds(config.CollectiveTimeout));
        }
        catch (DistributedException e)
        {
            Console.Error.WriteLine($"croc-host train: {e.Message}");
            return 1;
        }
        using var _ = ranks;
        torch.Device device;
        try
        {
            device = Devices.Resolve(config.Device, ranks.LocalRank);
        }
        catch (DeviceException e)
        {
            Console.Error.WriteLine($"croc-host train: {e.Message}");
            if (ranks.World > 1) ranks.Abort(2);
            return 2;
        }
        int threads = config.Threads > 0 ? config.Threads : Collectives.DefaultThreads(ranks);
        torch.set_num_threads(threads);
        var commit = GitInfo.Commit;
        var log = new RunLog(ranks.IsRoot ? Path.Combine(config.Output, "train.log") : null);
        if (ranks.IsRoot)
        {
            Directory.CreateDirectory(config.Output);
            log.Write($"croc-host train, commit {commit}, {DateTime.UtcNow:u}, {ranks.World} process(es), {threads} threads each");
            log.Write("resolved config:\n" + config.ToJson());
            File.WriteAllText(Path.Combine(config.Output, "config.json"), config.ToJson() + "\n");
            File.WriteAllText(Path.Combine(config.Output, "run.json"), $"{{\"commit\": \"{commit}\", \"started\": \"{DateTime.UtcNow:o}\", \"processes\": {ranks.World}}}\n");
        }

        try
        {
            IReadOnlyList<string> files;
            string? synthetic = null;
            if (config.Data.Length == 0)
            {
                if (ranks.LocalRank == 0) SyntheticDataset.Ensure(config); // once per machine, while the others wait
                ranks.Barrier();
                synthetic = SyntheticDataset.Ensure(config);
                files = ImageSources.Find([SyntheticDataset.TrainList(synthetic)]);
            }
            else files = ImageSources.Find(config.Data);

            var trainer = new Trainer(config, log.Write, ranks, device);
            TrainSummary summary;
            using (trainer.StopOnSignals()) summary = trainer.Run(files);
            if (!ranks.IsRoot) return 0;
            log.Write($"{(summary.Interrupted ? "stopped" : "finished")} at step {summary.Steps} in {summary.Seconds:F0} s: loss {summary.FirstLoss:F4} → {summary.LastLoss:F4}, {summary.ImagesPerSecond:F1} images/s");
            if (synthetic is not null && summary.LastCheckpoint is not null)
            {
                var picture = Path.Combine(config.Output, "clusters.png");
                ClusterPictures.WriteForRun(config, summary.LastCheckpoint, new VocSegmentation(synthetic, "val"), picture);
                log.Write($"online clusters of 4 validation images: {picture}");
            }
            log.Write($"outputs in {Path.GetFullPath(config.Output)}: config.json, train.log, metrics.jsonl, tensorboard/, checkpoints/ (last: {summary.LastCheckpoint ?? "none"})");
            return 0;
        }
        catch (Exception e) when (ranks.World > 1 || e is DatasetException || MetByEveryRank(e))
        {
            bool expected = e is DatasetException || MetByEveryRank(e);
            log.Error($"croc-host train{(ranks.World > 1 ? $" [rank {ranks.Rank}]" : "")}: {(expected ? e.Message : e.ToString())}");
            int code = e is ConfigException ? 2 : 1;
            // Any error that may be this rank's alone ends all ranks: the others may be waiting in a collective.
            if (ranks.World > 1 && !MetByEveryRank(e)) ranks.Abort(code);
            return code;
        }
    }

    /// <summary>A divergence, a bad configuration or a disagreement between ranks: every rank meets
    /// it at the same point (they share the metrics, the config and the checks), so all end normally.</summary>
    static bool MetByEveryRank(Exception e) => e is DivergedException or ConfigException or DistributedException;
}

/// <summary>Log lines to the console and to the run's train.log, errors to stderr and train.log;
/// without a path (the ranks other than 0 of a distributed run) only errors, to stderr.</summary>
sealed class RunLog(string? path)
{
    public void Write(string line)
    {
        if (path is null) return;
        Console.WriteLine(line);
        File.AppendAllText(path, line + "\n");
    }

    public void Error(string line)
    {
        Console.Error.WriteLine(line);
        if (path is not null) File.AppendAllText(path, line + "\n");
    }
}
