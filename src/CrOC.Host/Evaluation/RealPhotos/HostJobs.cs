using System.Diagnostics;

namespace CrOC.Host.Evaluation.RealPhotos;

/// <summary>One run of `croc-host` in its own process: its name, arguments and log file.</summary>
public sealed record HostJob(string Name, IReadOnlyList<string> Arguments, string Log, bool EchoProgress = false);

/// <summary>
/// Runs croc-host jobs in child processes, <c>parallel</c> at a time (each with its own torch
/// threads: two single-threaded processes use two cores better than one process for small
/// models), writing each job's output to its log file. A job that fails stops the whole batch
/// with its name, exit code and last lines.
/// </summary>
public static class HostJobs
{
    /// <summary>The program and leading arguments that start this croc-host again.</summary>
    static (string Program, string[] Prefix) Self()
    {
        var process = Environment.ProcessPath ?? "dotnet";
        var dll = typeof(HostJobs).Assembly.Location;
        return Path.GetFileNameWithoutExtension(process) == "dotnet" ? (process, [dll]) : (process, []);
    }

    public static void Run(IReadOnlyList<HostJob> jobs, int parallel, Action<string> log)
    {
        var failures = new System.Collections.Concurrent.ConcurrentQueue<string>();
        var options = new ParallelOptions { MaxDegreeOfParallelism = parallel };
        // No buffering: a free slot takes the next job in order (not a pre-assigned range of them).
        Parallel.ForEach(System.Collections.Concurrent.Partitioner.Create(jobs, System.Collections.Concurrent.EnumerablePartitionerOptions.NoBuffering), options, (job, state) =>
        {
            if (!failures.IsEmpty) { state.Stop(); return; }
            var watch = Stopwatch.StartNew();
            log($"[{job.Name}] started");
            int code = RunOne(job, log);
            if (code != 0)
            {
                var tail = File.Exists(job.Log) ? string.Join("\n  ", File.ReadLines(job.Log).TakeLast(5)) : "";
                failures.Enqueue($"{job.Name} ended with exit code {code} (log: {job.Log}):\n  {tail}");
                state.Stop();
                return;
            }
            log($"[{job.Name}] done in {watch.Elapsed.TotalSeconds:F0} s");
        });
        if (failures.TryDequeue(out var failure)) throw new JobFailedException(failure);
    }

    static int RunOne(HostJob job, Action<string> log)
    {
        var (program, prefix) = Self();
        var info = new ProcessStartInfo(program) { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var a in prefix.Concat(job.Arguments)) info.ArgumentList.Add(a);
        Directory.CreateDirectory(Path.GetDirectoryName(Path.GetFullPath(job.Log))!);
        using var writer = new StreamWriter(job.Log, append: true) { AutoFlush = true };
        writer.WriteLine($"# croc-host {string.Join(" ", job.Arguments)}");
        using var process = Process.Start(info) ?? throw new JobFailedException($"{job.Name}: could not start {program}");
        void Take(string? line)
        {
            if (line is null) return;
            lock (writer) writer.WriteLine(line);
            if (job.EchoProgress && line.StartsWith("step ", StringComparison.Ordinal)) log($"[{job.Name}] {line}");
        }
        process.OutputDataReceived += (_, e) => Take(e.Data);
        process.ErrorDataReceived += (_, e) => Take(e.Data);
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        process.WaitForExit();
        return process.ExitCode;
    }
}

/// <summary>A child job failed; the message names it, its exit code and its last log lines.</summary>
public sealed class JobFailedException(string message) : Exception(message), CommandLine.IReportedFailure;
