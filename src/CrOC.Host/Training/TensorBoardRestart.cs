namespace CrOC.Host.Training;

/// <summary>
/// A resumed run's TensorBoard marker. Each start opens a new events file, and the earlier files
/// keep the steps after the resumed checkpoint that the crashed start logged and this one redoes.
/// TensorBoard drops such steps when it reads a SessionLog START event at step s (every event of
/// step ≥ s read before it): this writes one, at the resumed step + 1, into its own events file
/// whose name sorts after the earlier files and before the new writer's.
/// </summary>
public static class TensorBoardRestart
{
    /// <summary>Writes the marker into <paramref name="folder"/> when it holds events files already.</summary>
    public static void Mark(string folder, long resumedAt)
    {
        if (!Directory.Exists(folder) || !Directory.EnumerateFiles(folder, "events.out.tfevents.*").Any()) return;
        double now = TfRecords.Now();
        // the writer names its files events.out.tfevents.TICKS.… (TensorBoardEvents): the same clock, read before it opens its file
        var name = $"events.out.tfevents.{DateTime.Now.Ticks}.{Environment.MachineName}.{Environment.ProcessId}.restart";
        Weights.AtomicFile.Write(Path.Combine(folder, name), stream =>
        {
            TfRecords.Write(stream, TfRecords.FileVersion(now)); // as the writer's own files
            TfRecords.Write(stream, TfRecords.Event(now, resumedAt + 1, TfRecords.Field(7, [0x08, 0x01]))); // session_log (7) { status (1): START (1) }
        });
    }
}
