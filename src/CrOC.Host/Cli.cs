namespace CrOC.Host;

/// <summary>The croc-host command line: one subcommand per job.</summary>
public static class Cli
{
    const string Usage = """
        croc-host: CrOC (Cross-View Online Clustering) pre-training for Vision Transformers.

        Usage: croc-host <command> [options]

        Commands:
          train              CrOC pre-training; with no option: the tiny preset on the
                             embedded synthetic scenes (a few minutes on a CPU)
          eval-seg           linear segmentation mIoU of a frozen backbone (spec §12.1)
          clusters           picture of the online clusters of two views (+ CLS attention maps)
          experiment         CrOC vs DINO-only vs random init on the synthetic scenes (mIoU)
          bench              time the training step: phases, images/s, MFU, peak RSS
          bench-clustering   time the joint-space clustering at the official size
                             (S = B·h problems of 2N tokens); options: --batch B (16),
                             --heads h (6), --tokens N (196), --dim d (64), --repeats R (10),
                             --threads T (all cores)
          bench-vit          time the ViT backbone forward and forward+backward
                             (--arch small --patch 16 --size 224 --batch 8)
          bench-data         images/s of the data pipeline with 1 and 2 workers
          bench-allreduce    all-reduce time per size between processes (under mpirun)
                             and the estimated step on 8 and 64 nodes
          export             write a backbone (from our, official CrOC or DINO weights)
                             with DINO/timm names as .safetensors + .pth + model card

        Several processes or machines: mpirun -np N croc-host train|bench ... (Open MPI).
        Run `croc-host <command> --help` for a command's options.
        """;

    /// <summary>Runs the command named by <paramref name="args"/>; returns the process exit code
    /// (0 success, 2 usage error).</summary>
    public static int Run(string[] args)
    {
        if (args.Length == 0 || args[0] is "--help" or "-h" or "help")
        {
            Console.WriteLine(Usage);
            return args.Length == 0 ? 2 : 0;
        }
        try
        {
            return args[0] switch
            {
                "train" => Training.TrainCommand.Run(args[1..]),
                "bench" => BenchCommand.Run(args[1..]),
                "bench-clustering" => ClusteringBenchmark.Run(Options.Parse(args[1..])),
                "bench-vit" => VitBenchmark.Run(Options.Parse(args[1..])),
                "export" => ExportCommand.Run(Options.Parse(args[1..])),
                "eval-seg" => Evaluation.EvalSegCommand.Run(Options.Parse(args[1..])),
                "clusters" => ClustersCommand.Run(Options.Parse(args[1..])),
                "experiment" => Evaluation.ExperimentCommand.Run(Options.Parse(args[1..])),
                "bench-data" => DataBenchmark.Run(Options.Parse(args[1..])),
                "bench-allreduce" => AllReduceBenchmark.Run(Options.Parse(args[1..])),
                _ => UsageError($"unknown command '{args[0]}'"),
            };
        }
        catch (OptionException e)
        {
            return UsageError(e.Message);
        }
        catch (DeviceException e)
        {
            Console.Error.WriteLine($"croc-host {args[0]}: {e.Message}");
            return 2;
        }
    }

    static int UsageError(string message)
    {
        Console.Error.WriteLine($"croc-host: {message}");
        Console.Error.WriteLine("Run `croc-host --help` for the commands and their options.");
        return 2;
    }
}
