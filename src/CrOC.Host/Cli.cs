using System.Text;
using CrOC.Host.CommandLine;
using CrOC.Host.Visual;
using CrOC.Host.Weights;

namespace CrOC.Host;

/// <summary>The croc-host command line: one subcommand per job, each with its options record.</summary>
public static class Cli
{
    /// <summary>A subcommand: its name, one line of meaning, and how to run it from its arguments.</summary>
    sealed record Subcommand(string Name, string Summary, Func<string[], int> Run);

    /// <summary>A subcommand whose options record <typeparamref name="T"/> declares its command line.</summary>
    static Subcommand Of<T>(Func<T, int> run) where T : class, new() =>
        new(OptionSet<T>.Command.Name, OptionSet<T>.Command.Summary, args =>
        {
            if (Arguments.AsksForHelp(args)) { Console.Write(OptionSet<T>.Help()); return ExitCodes.Ok; }
            return run(OptionSet<T>.Parse(args));
        });

    static readonly Subcommand[] Commands =
    [
        new("train", Training.TrainCommand.Summary, Training.TrainCommand.Run),
        Of<Evaluation.EvalSegOptions>(Evaluation.EvalSegCommand.Run),
        Of<Evaluation.EvalKnnOptions>(Evaluation.EvalKnnCommand.Run),
        Of<ClustersOptions>(ClustersCommand.Run),
        Of<Evaluation.ExperimentOptions>(Evaluation.ExperimentCommand.Run),
        Of<ExportOptions>(ExportCommand.Run),
        Of<BenchOptions>(BenchCommand.Run),
        Of<ClusteringBenchmarkOptions>(ClusteringBenchmark.Run),
        Of<VitBenchmarkOptions>(VitBenchmark.Run),
        Of<BlockBenchmarkOptions>(BlockBenchmark.Run),
        Of<DataBenchmarkOptions>(DataBenchmark.Run),
        Of<AllReduceBenchmarkOptions>(AllReduceBenchmark.Run),
    ];

    public static IEnumerable<string> CommandNames => Commands.Select(c => c.Name);

    static string Usage()
    {
        var text = new StringBuilder("""
            croc-host: CrOC (Cross-View Online Clustering) pre-training for Vision Transformers.

            Usage: croc-host <command> [options]

            Commands:

            """);
        foreach (var c in Commands) text.AppendLine($"  {c.Name,-18} {c.Summary}");
        text.AppendLine("""

            Several processes or machines: mpirun -np N croc-host train|bench ... (Open MPI); the other
            commands run as one process (bench-allreduce measures the links between several).
            Run `croc-host <command> --help` for a command's options, defaults and ranges.
            Exit codes: 0 done (or stopped cleanly), 1 failure while working, 2 bad input (options,
            files, devices, outputs), 3 another process of a distributed run died or hung.
            """);
        return text.ToString();
    }

    /// <summary>Runs the command named by <paramref name="args"/>; returns the process exit code
    /// (see <see cref="ExitCodes"/>). No exception leaves this method.</summary>
    public static int Run(string[] args)
    {
        if (args.Length == 0)
        {
            Console.Error.Write(Usage()); // a usage error: on standard error, as the unknown command's
            return ExitCodes.BadInput;
        }
        if (args is ["help", var named, ..]) args = [named, "--help"]; // `croc-host help train`: train's options (an unknown name is refused below)
        if (args[0] is "--help" or "-h" or "help")
        {
            Console.Write(Usage());
            return ExitCodes.Ok;
        }
        var command = Commands.FirstOrDefault(c => c.Name == args[0]);
        if (command is null)
        {
            var near = NearNames.Nearest(args[0], CommandNames) is { } name ? $"did you mean {name}? " : ""; // trian, TRAIN
            Console.Error.WriteLine($"croc-host: unknown command '{CrOC.Data.Quoted.Printable(args[0])}' ({near}one of {string.Join(", ", CommandNames)})");
            Console.Error.WriteLine("Run `croc-host --help` for the commands.");
            return ExitCodes.BadInput;
        }
        int code;
        try
        {
            MadeFolders.Begin();
            using var stop = command.Name is "train" or "experiment" ? null : AbruptStop.Install(command.Name);
            if (!Arguments.AsksForHelp(args[1..]))
            {
                Distributed.DataParallelCommands.CheckLaunch(command.Name);
                Runtime.ProcessLimits.CheckBeforeWork(); // before libtorch loads
            }
            code = command.Run(args[1..]);
        }
        catch (Exception e)
        {
            code = ExitCodes.Report(command.Name, e);
        }
        if (code != ExitCodes.Ok) // a failure leaves no empty output folder behind
            try { MadeFolders.RemoveEmpty(); }
            catch (Exception) { /* out of open files, what it needs may not load: the failure is reported, its code stands */ }
        return code;
    }
}
