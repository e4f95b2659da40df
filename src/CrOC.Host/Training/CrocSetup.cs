using CrOC.Host.Runtime;
using CrOC.Math;
using TorchSharp;

namespace CrOC.Host.Training;

/// <summary>Turns a <see cref="TrainConfig"/> into the math library's configuration records, and checks what they
/// cannot hold before a run starts.</summary>
public static class CrocSetup
{
    // F# records are built with named arguments: reordering a field in F# cannot silently change meaning here.

    /// <summary>The published backbone of a width (12 blocks).</summary>
    public static Vit.VitConfig Published(Arch arch, int patch, int imageSize) => arch switch
    {
        Arch.Small => CrOC.Math.Vit.VitConfig.Small(patch, imageSize),
        Arch.Base => CrOC.Math.Vit.VitConfig.Base(patch, imageSize),
        _ => CrOC.Math.Vit.VitConfig.Tiny(patch, imageSize),
    };

    public static Vit.VitConfig Vit(TrainConfig c)
    {
        var preset = Published(c.Arch, c.Patch, c.ImageSize);
        return new CrOC.Math.Vit.VitConfig(imageSize: preset.ImageSize, patch: preset.Patch, dim: preset.Dim, depth: c.Depth,
            heads: preset.Heads, mlpRatio: preset.MlpRatio, eps: preset.Eps);
    }

    public static Network.NetworkConfig Network(TrainConfig c)
    {
        var vit = Vit(c);
        return new Network.NetworkConfig(vit: vit, head: new Heads.HeadConfig(inDim: vit.Dim, hidden: c.HeadHidden,
            bottleneck: c.HeadBottleneck, outDim: c.OutDim, outDimC: c.OutDimC, normLastLayer: c.NormLastLayer));
    }

    /// The official clustering (<see cref="CrOC.Math.Clustering.ClusteringConfig.Official"/>) with the
    /// settings of the run: K0, K* selection (minimum transport cost, or the poster's fixed K), Sinkhorn's
    /// λ, iterations and solver (linear as the official code, or log-domain), λ_pos, marginals, and the
    /// layout of the selected clusters (dynamic as the spec, or fixed shapes).
    public static Clustering.ClusteringConfig Clustering(TrainConfig c)
    {
        var official = CrOC.Math.Clustering.ClusteringConfig.Official;
        return new Clustering.ClusteringConfig(
            k0: c.NTokens,
            selection: c.ClusterK > 0 ? CrOC.Math.Clustering.KSelection.NewFixedK(c.ClusterK) : CrOC.Math.Clustering.KSelection.NewMinTransportCost(c.NCentroidsMax),
            sinkhornLambda: c.SinkhornLambda,
            sinkhornIterations: c.SinkhornIterations,
            solver: c.SinkhornSolver == SinkhornSolverChoice.Log ? CrOC.Math.Clustering.SinkhornVariant.LogDomain : CrOC.Math.Clustering.SinkhornVariant.Linear,
            lambdaPos: c.PosAlpha,
            marginals: c.UniformMarginals ? CrOC.Math.Clustering.Marginals.Uniform : official.Marginals,
            seedTemperature: official.SeedTemperature,
            shapes: c.ObjectShapes == ObjectShapesChoice.Fixed ? CrOC.Math.Clustering.ObjectShapes.Fixed : CrOC.Math.Clustering.ObjectShapes.Dynamic);
    }

    public static Croc.CrocConfig Croc(TrainConfig c) => new(
        network: Network(c),
        clustering: Clustering(c),
        features: c.Features == ClusteredFeatures.Tokens ? CrOC.Math.Croc.FeatureSpace.OutputTokens : CrOC.Math.Croc.FeatureSpace.LastBlockKeys,
        alpha: c.Alpha,
        globalPool: c.GlobalPool == GlobalPoolChoice.Avg ? CrOC.Math.Croc.GlobalPool.AveragePatches : CrOC.Math.Croc.GlobalPool.ClsToken,
        studentTemp: c.StudentTemp,
        studentTempC: c.StudentTempC,
        centreMomentum: c.CentreMomentum,
        dropPath: c.DropPath,
        precision: Precisions.ToLayers(c.Precision));

    /// <summary>The per-iteration schedules (warm-ups by <see cref="CrOC.Math.Schedules.warmupFor"/>).</summary>
    public static (Schedules.CosineSchedule Lr, Schedules.CosineSchedule Wd, Schedules.CosineSchedule Momentum) Schedules(TrainConfig c, int itersPerEpoch, int world = 1)
    {
        // the schedules count iterations in an int: a product beyond it would wrap to a short schedule
        if ((long)c.Epochs * itersPerEpoch > int.MaxValue)
            throw new ConfigException($"--epochs {c.Epochs} × {itersPerEpoch} steps per epoch is beyond the {int.MaxValue} steps the schedules count: lower --epochs (--max-steps ends a run earlier without changing its schedules)", everyRank: false);
        int warmup = CrOC.Math.Schedules.warmupFor(c.Epochs, c.WarmupEpochs);
        return (CrOC.Math.Schedules.learningRate(PeakLearningRate(c, world), c.MinLr, c.Epochs, itersPerEpoch, warmup),
                CrOC.Math.Schedules.weightDecay(c.WeightDecay, c.WeightDecayEnd, c.Epochs, itersPerEpoch),
                CrOC.Math.Schedules.teacherMomentum(c.MomentumTeacher, c.Epochs, itersPerEpoch));
    }

    /// <summary>The learning rate after the warm-up: --lr scaled by the global batch; refused below --min-lr.</summary>
    public static double PeakLearningRate(TrainConfig c, int world)
    {
        double peak = CrOC.Math.Schedules.scaledLearningRate(c.Lr, c.Batch * c.Accum * world);
        if (c.MinLr > peak) // the cosine would climb from the peak to --min-lr
            throw new ConfigException($"--min-lr {c.MinLr:G4} is above the peak learning rate {peak:G4} (--lr {c.Lr:G4} × global batch {c.Batch * c.Accum * world} / 256): give a --min-lr below it", everyRank: true);
        return peak;
    }

    /// <summary>The checks that need no data: run before a run folder is claimed, so that a refused
    /// run leaves no folder behind (the learning rates, the activations' memory on a CPU).</summary>
    public static void Preflight(TrainConfig c, int world, torch.Device where)
    {
        PeakLearningRate(c, world);
        if (where.type == DeviceType.CPU) CheckStepMemory(c, c.Batch, $"--image-size {c.ImageSize} with --patch {c.Patch}", "--head-hidden, --head-bottleneck, --out-dim, --out-dim-c");
    }

    /// <summary>Refuses a training step of <paramref name="batch"/> images (two views each) whose backbone and
    /// heads cannot fit in this machine's memory (<see cref="MemoryFit"/>); <paramref name="options"/> names what
    /// sets the size, <paramref name="headOptions"/> what sizes the heads (null where the command has no such option).</summary>
    public static void CheckStepMemory(TrainConfig c, long batch, string options, string? headOptions)
    {
        var network = Network(c);
        long objectsPerView = c.Alpha > 0 ? (c.ClusterK > 0 ? c.ClusterK : c.NCentroidsMax) : 0;
        MemoryFit.Check(network.Vit, 2L * batch, training: true, c.Precision, options, heads: MemoryFit.HeadBytes(network.Head, 2L * batch, objectsPerView), headOptions: headOptions);
    }

    public static (double Image, double Objects) TeacherTemperatures(TrainConfig c, int epoch)
    {
        int warm = CrOC.Math.Schedules.warmupFor(c.Epochs, c.WarmupTeacherTempEpochs);
        return (CrOC.Math.Schedules.teacherTemperature(c.WarmupTeacherTemp, c.TeacherTemp, warm, epoch),
                CrOC.Math.Schedules.teacherTemperature(c.WarmupTeacherTempC, c.TeacherTempC, warm, epoch));
    }
}
