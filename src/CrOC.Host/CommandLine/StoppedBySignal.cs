namespace CrOC.Host.CommandLine;

/// <summary>Work abandoned because a stop signal is ending the process: the signal's line was said
/// already, so the report adds none and the exit code is the signal's (128 + N).</summary>
public sealed class StoppedBySignalException(int exitCode) : Exception($"stopped by a signal (exit {exitCode})")
{
    public int ExitCode { get; } = exitCode;
}
