using System.Text.Json.Nodes;
using CrOC.Data;

namespace CrOC.Host.Training;

/// <summary>
/// The dataset a run trains on, as its checkpoints record it: the number of images and the
/// fingerprint of their names (<see cref="DatasetFingerprint"/>: the same under another root). The
/// epochs, the schedules and the data order depend on both, so a resume over another dataset is refused.
/// </summary>
public sealed record DatasetIdentity(int Images, uint Fingerprint)
{
    const string ImagesKey = "images", FingerprintKey = "images_fingerprint";

    public static DatasetIdentity Of(IReadOnlyList<ImageEntry> files) => new(files.Count, DatasetFingerprint.Of(files));

    /// <summary>Records this dataset in a checkpoint's progress record.</summary>
    public void WriteTo(JsonObject progress)
    {
        progress[ImagesKey] = Images;
        progress[FingerprintKey] = Fingerprint;
    }

    /// <summary>How the dataset a progress record names differs from this one ("a run over 48 images,
    /// this run finds 16"), or null when it does not or the record predates the field.</summary>
    public string? Difference(JsonObject progress)
    {
        if (progress[ImagesKey] is not JsonValue count || !count.TryGetValue<int>(out var madeOver)) return null;
        if (madeOver != Images) return $"a run over {Counted.Of(madeOver, "image")}, this run finds {Images}";
        return progress[FingerprintKey] is JsonValue hash && hash.TryGetValue<uint>(out var made) && made != Fingerprint
            ? $"a run over {Counted.Of(madeOver, "image")} of other names (or order, or archive member sizes) than this run's"
            : null;
    }
}
