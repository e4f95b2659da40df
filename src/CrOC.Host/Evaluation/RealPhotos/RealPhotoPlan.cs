namespace CrOC.Host.Evaluation.RealPhotos;

/// <summary>The linear probe of the suite (CPU-sized Leopart protocol: cached frozen features,
/// standardised channels, several probe seeds).</summary>
public sealed record ProbePlan(int Size, int FeatureSize, int Epochs, int Milestone, double Lr, int[] Seeds)
{
    public IEnumerable<string> Arguments() =>
    [
        "--size", $"{Size}", "--feature-size", $"{FeatureSize}", "--epochs", $"{Epochs}", "--milestone", $"{Milestone}",
        "--lr", Lr.ToString(System.Globalization.CultureInfo.InvariantCulture), "--batch", "32", "--cache-features", "--standardize",
        "--probe-seeds", string.Join(",", Seeds),
    ];
}

/// <summary>
/// What the real-photo suite runs (README "CrOC on real photos"): the pre-training recipe shared by
/// CrOC and DINO-only (α = 0) — chosen on CamVid val, see the README for the measurements — its
/// budget, the seeds, and the evaluations: CamVid test and Weizmann val linear probes, Tiny
/// ImageNet k-NN, a CamVid val curve over pre-training steps (the checkpoints every
/// <c>CurveEvery</c> steps are kept and probed); each pre-training run echoes its progress every
/// <c>LogEvery</c> steps (a setting that does not change the run).
/// </summary>
public sealed record RealPhotoPlan(
    string Name,
    int[] Seeds,
    int Steps,
    int CurveEvery,
    IReadOnlyList<string> Recipe,
    ProbePlan CamVidProbe,
    ProbePlan CurveProbe,
    ProbePlan HorseProbe,
    int KnnSize,
    int KnnBankStride,
    int KnnQueryStride,
    int LogEvery)
{
    /// <summary>The recipe: ViT-Ti/8 (12 blocks) at 64 px views with the tiny preset's heads,
    /// batch 32, on CamVid's 468 trainval photos (the test photos are never seen before evaluation).</summary>
    static readonly string[] Recipe64 =
    [
        "--preset", "tiny", "--arch", "tiny", "--depth", "12", "--patch", "8", "--image-size", "64",
        "--batch", $"{Batch}", "--workers", "1", "--threads", "1", "--lr", "0.005", "--momentum-teacher", "0.99",
    ];

    static readonly ProbePlan Probe = new(128, 64, 60, 48, 0.2, [0, 1, 2]);

    /// <summary>The full suite: 2 seeds × (CrOC, DINO-only), 1,750 steps each (125 epochs of CamVid trainval).</summary>
    public static readonly RealPhotoPlan Full = new("full", [0, 1], 1750, 250, Recipe64,
        Probe, Probe with { Seeds = [0] }, Probe, 64, 1, 1, 50);

    /// <summary>A try-out (5–8 minutes on 2 AVX-512 cores): one seed, 140 steps, one probe seed, a tenth of the k-NN sets.</summary>
    public static readonly RealPhotoPlan Quick = new("quick", [0], 140, 70, Recipe64,
        Probe with { Epochs = 20, Milestone = 16, Seeds = [0] }, Probe with { Epochs = 20, Milestone = 16, Seeds = [0] },
        Probe with { Epochs = 20, Milestone = 16, Seeds = [0] }, 64, 10, 10, 10);

    /// <summary>What `experiment --suite real` runs: the full suite or (<paramref name="quick"/>) the try-out,
    /// with the plan's own seeds unless <paramref name="seeds"/> names others (one seed of the full
    /// suite, half its pre-training time, fits a shorter session), distinct as the command line checks them.</summary>
    public static RealPhotoPlan For(bool quick, int[]? seeds)
    {
        var plan = quick ? Quick : Full;
        return seeds is null ? plan : plan with { Seeds = seeds };
    }

    /// <summary>Batches of 32 per epoch of CamVid trainval's 468 photos (the last 20 dropped).</summary>
    public const int BatchesPerEpoch = 14, Batch = 32;

    /// <summary>Epochs of CamVid trainval that make <see cref="Steps"/>.</summary>
    public int Epochs => Steps / BatchesPerEpoch;
}
