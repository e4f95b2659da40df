using System.Collections.Concurrent;
using System.Diagnostics;

namespace CrOC.Host.Evaluation.RealPhotos;

/// <summary>One run of `croc-host` in its own process: its name, arguments and log file.</summary>
public sealed record HostJob(string Name, IReadOnlyList<string> Arguments, string Log, bool EchoProgress = false);

/// <summary>
/// Runs croc-host jobs in child processes, <c>parallel</c> at a time (each with its own torch
/// threads: two single-threaded processes use two cores better than one process for small
/// models), writing each job's output to its log file. A job that fails is logged at once and
/// stops the whole batch: the running jobs get SIGTERM (a training job checkpoints first), and
/// the batch ends with its name, exit code and failure line (<see cref="JobLog.Ending"/>). <see cref="StopAll"/> (the suite's Ctrl-C / SIGTERM)
/// passes the stop on to the running jobs — a training job then checkpoints and ends — and starts
/// no new one. The stop is passed on as SIGUSR1, which a training job treats as SIGTERM: a SIGTERM
/// sent to the whole process group (timeout, Slurm, systemd) reaches each job too, and a second
/// SIGTERM would end it at once, without its checkpoint.
/// </summary>
public static class HostJobs
{
    static readonly ConcurrentDictionary<int, Process> running = new();
    /// <summary>Jobs already asked to stop: a second SIGUSR1 would end a training job at once, without its checkpoint.</summary>
    static readonly ConcurrentDictionary<int, bool> terminated = new();
    static volatile bool stopping, failing;

    /// <summary>Asks the running jobs to stop (SIGUSR1) and the current <see cref="Run"/> to start no
    /// other; that Run then waits for them and throws <see cref="JobsStoppedException"/>.</summary>
    public static void StopAll()
    {
        stopping = true;
        TerminateRunning();
    }

    /// <summary>SIGUSR1 to every running job (a training job checkpoints, then ends); not to a job that
    /// has exited, whose process id the system may already have given to another process.</summary>
    static void TerminateRunning()
    {
        foreach (var (pid, process) in running) Terminate(pid, process);
    }

    static void Terminate(int pid, Process process)
    {
        if (!HasExited(process) && terminated.TryAdd(pid, true)) Runtime.ProcessSignals.Send(pid, CommandLine.StopRequest.Signal);
    }

    static bool HasExited(Process process)
    {
        try { return process.HasExited; }
        catch (InvalidOperationException) { return true; } // disposed: its job has returned
    }

    /// <summary>The program and leading arguments that start croc-host again: this process's own
    /// program when it is croc-host's apphost, else `dotnet croc-host.dll` (under `dotnet`, or hosted
    /// by another program such as the tests).</summary>
    static (string Program, string[] Prefix) Self()
    {
        var dll = typeof(HostJobs).Assembly.Location;
        bool apphost = System.Reflection.Assembly.GetEntryAssembly() == typeof(HostJobs).Assembly
            && Environment.ProcessPath is { } process && Path.GetFileNameWithoutExtension(process) != "dotnet";
        return apphost ? (Environment.ProcessPath!, []) : ("dotnet", [dll]);
    }

    public static void Run(IReadOnlyList<HostJob> jobs, int parallel, Action<string> log)
    {
        var failures = new System.Collections.Concurrent.ConcurrentQueue<(string Message, int Code)>();
        failing = false;
        var options = new ParallelOptions { MaxDegreeOfParallelism = parallel };
        // No buffering: a free slot takes the next job in order (not a pre-assigned range of them).
        Parallel.ForEach(System.Collections.Concurrent.Partitioner.Create(jobs, System.Collections.Concurrent.EnumerablePartitionerOptions.NoBuffering), options, (job, state) =>
        {
            if (!failures.IsEmpty || stopping) { state.Stop(); return; }
            var watch = Stopwatch.StartNew();
            log($"[{job.Name}] started");
            int code = RunOne(job, log);
            if (stopping) { log($"[{job.Name}] stopped (exit code {code})"); return; }
            if (failing) { log($"[{job.Name}] ended after another job's failure (exit code {code}); rerun the same command to resume"); return; }
            if (code != 0)
            {
                failures.Enqueue(($"{job.Name} ended with exit code {code} (log: {job.Log}):\n  {JobLog.Ending(job.Log)}", code));
                failing = true;
                log($"[{job.Name}] failed with exit code {code} (log: {job.Log}); asking the running jobs to end");
                TerminateRunning();
                state.Stop();
                return;
            }
            log($"[{job.Name}] done in {watch.Elapsed.TotalSeconds:F0} s");
        });
        // a job's bad input is the suite's (exit 2, as the job's; it was 1 once)
        if (failures.TryDequeue(out var failure)) throw failure.Code == CommandLine.ExitCodes.BadInput ? new JobRefusedException(failure.Message) : new JobFailedException(failure.Message);
        if (stopping)
        {
            stopping = false; // delivered
            throw new JobsStoppedException("stopped: the running jobs were asked to end (a training job writes its checkpoint first); rerun the same command to resume");
        }
    }

    static int RunOne(HostJob job, Action<string> log)
    {
        var (program, prefix) = Self();
        var info = new ProcessStartInfo(program) { RedirectStandardOutput = true, RedirectStandardError = true };
        info.Environment[Runtime.ParentWatch.Variable] = Environment.ProcessId.ToString(System.Globalization.CultureInfo.InvariantCulture); // it stops if this process dies
        foreach (var name in info.Environment.Keys.Where(Distributed.Collectives.IsLauncherVariable).ToList()) info.Environment.Remove(name); // a suite under mpirun -np 1: its jobs are no ranks
        foreach (var a in prefix.Concat(job.Arguments)) info.ArgumentList.Add(a);
        Directory.CreateDirectory(Path.GetDirectoryName(Path.GetFullPath(job.Log))!);
        using var writer = new StreamWriter(job.Log, append: true) { AutoFlush = true };
        writer.WriteLine(JobLog.Header(job.Arguments));
        using var process = Process.Start(info) ?? throw new JobFailedException($"{job.Name}: could not start {program}");
        void Take(string? line)
        {
            if (line is null) return;
            lock (writer) writer.WriteLine(line);
            if (job.EchoProgress && line.StartsWith("step ", StringComparison.Ordinal)) log($"[{job.Name}] {line}");
        }
        running[process.Id] = process;
        if (stopping || failing) Terminate(process.Id, process); // a stop or failure that came while it started
        process.OutputDataReceived += (_, e) => Take(e.Data);
        process.ErrorDataReceived += (_, e) => Take(e.Data);
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        process.WaitForExit();
        running.TryRemove(process.Id, out _);
        terminated.TryRemove(process.Id, out _);
        return process.ExitCode;
    }
}

/// <summary>The jobs were stopped on request (<see cref="HostJobs.StopAll"/>): a clean stop, exit 0.</summary>
public sealed class JobsStoppedException(string message) : Exception(message);

/// <summary>A child job refused its input (exit 2); the message names it and its failure line.</summary>
public sealed class JobRefusedException(string message) : Exception(message), CommandLine.IBadInput;

/// <summary>A child job failed; the message names it, its exit code and its failure line (or its log's last lines).</summary>
public sealed class JobFailedException(string message) : Exception(message), CommandLine.IReportedFailure;
