using System.Text.RegularExpressions;

namespace CrOC.Host.Evaluation.RealPhotos;

/// <summary>
/// A job's log file: each run of the job appends its header line (<see cref="Header"/>), then the job's
/// stdout and stderr. <see cref="Ending"/> is what a failed job's report quotes from it.
/// </summary>
public static partial class JobLog
{
    const string HeaderStart = "# croc-host ";
    const int TailLines = 5;

    public static string Header(IEnumerable<string> arguments) => HeaderStart + string.Join(" ", arguments);

    /// <summary>What the log's last run said at its end: its one failure line ("croc-host CMD: …", the last one
    /// it wrote), else its last five lines ("" without a log). The last five lines alone were 700–900 characters
    /// of step lines or a command line before the reason, once; an earlier run's lines are never quoted.</summary>
    public static string Ending(string log)
    {
        if (!File.Exists(log)) return "";
        string? failure = null;
        var tail = new Queue<string>(TailLines);
        foreach (var line in File.ReadLines(log))
        {
            if (line.StartsWith(HeaderStart, StringComparison.Ordinal)) // a later run: what came before is not its
            {
                failure = null;
                tail.Clear();
                continue;
            }
            if (FailureLine().IsMatch(line)) failure = line;
            if (tail.Count == TailLines) tail.Dequeue();
            tail.Enqueue(line);
        }
        return failure ?? string.Join("\n  ", tail);
    }

    /// <summary>A command's failure line ("croc-host eval-seg: …") or a rank watchdog's ("croc-host [1]: …"); not
    /// train's header ("croc-host train, commit …") nor a rank's warning ("croc-host train [rank 1]: …").</summary>
    [GeneratedRegex(@"^croc-host(?: [a-z-]+| \[\d+\])?: ")]
    private static partial Regex FailureLine();
}
