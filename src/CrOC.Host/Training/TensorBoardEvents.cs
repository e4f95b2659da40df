namespace CrOC.Host.Training;

/// <summary>
/// A start's TensorBoard events file (events.out.tfevents.TICKS.HOST.PID in the run's tensorboard
/// folder), written directly: one event per step holding all its scalars, wall times in Unix
/// seconds with their fraction. TorchSharp's SummaryWriter, used before, wrote its file_version
/// event's wall time in .NET ticks (6e17 "seconds") and the scalars' in whole seconds.
/// </summary>
public sealed class TensorBoardEvents : IDisposable
{
    readonly FileStream stream;

    /// <summary>Opens a new events file in <paramref name="folder"/>; its name sorts after any made before (a restart marker's too).</summary>
    public TensorBoardEvents(string folder)
    {
        Directory.CreateDirectory(folder);
        var name = $"events.out.tfevents.{DateTime.Now.Ticks}.{Environment.MachineName}.{Environment.ProcessId}";
        stream = new FileStream(Path.Combine(folder, name), FileMode.CreateNew, FileAccess.Write, FileShare.Read);
        Append(TfRecords.FileVersion(TfRecords.Now()));
    }

    /// <summary>Appends the scalars of <paramref name="step"/> as one event, flushed (a crash loses no step before it).</summary>
    public void Write(long step, IEnumerable<(string Tag, float Value)> scalars) =>
        Append(TfRecords.Event(TfRecords.Now(), step, TfRecords.Scalars(scalars)));

    void Append(byte[] data)
    {
        TfRecords.Write(stream, data);
        stream.Flush();
    }

    public void Dispose() => stream.Dispose();
}
