namespace CrOC.Host.CommandLine;

/// <summary>The signal by which a parent croc-host (experiment's job runner) asks a job to stop as
/// SIGTERM would: a training job finishes its step and checkpoints, an evaluation removes the empty
/// folders it made. SIGUSR1, Linux's number on x86-64 and arm64.</summary>
public static class StopRequest
{
    public const int Signal = 10;
}
