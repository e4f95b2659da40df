using CrOC.Math;
using Microsoft.FSharp.Core;

namespace CrOC.Host.Training;

/// <summary>Turns a <see cref="TrainConfig"/> into the math library's configuration records.</summary>
public static class CrocSetup
{
    public static Vit.VitConfig Vit(TrainConfig c)
    {
        var preset = c.Arch switch
        {
            "small" => CrOC.Math.Vit.VitConfig.Small(c.Patch, c.ImageSize),
            "base" => CrOC.Math.Vit.VitConfig.Base(c.Patch, c.ImageSize),
            _ => CrOC.Math.Vit.VitConfig.Tiny(c.Patch, c.ImageSize),
        };
        return new CrOC.Math.Vit.VitConfig(preset.ImageSize, preset.Patch, preset.Dim, c.Depth, preset.Heads, preset.MlpRatio, preset.Eps);
    }

    public static Network.NetworkConfig Network(TrainConfig c)
    {
        var vit = Vit(c);
        return new Network.NetworkConfig(vit, new Heads.HeadConfig(vit.Dim, c.HeadHidden, c.HeadBottleneck, c.OutDim, c.OutDimC, c.NormLastLayer));
    }

    public static Clustering.ClusteringConfig Clustering(TrainConfig c) => new(
        c.NTokens,
        CrOC.Math.Clustering.KSelection.NewMinTransportCost(c.NCentroidsMax),
        c.SinkhornLambda,
        c.SinkhornIterations,
        CrOC.Math.Clustering.SinkhornVariant.Linear,
        c.PosAlpha,
        c.UniformMarginals ? CrOC.Math.Clustering.Marginals.Uniform : CrOC.Math.Clustering.Marginals.NewClsSimilarity(2.0, 2.0),
        2.0);

    public static Croc.CrocConfig Croc(TrainConfig c) => new(
        Network(c),
        Clustering(c),
        c.Features == "tokens" ? CrOC.Math.Croc.FeatureSpace.OutputTokens : CrOC.Math.Croc.FeatureSpace.LastBlockKeys,
        c.Alpha,
        c.GlobalPool == "avg" ? CrOC.Math.Croc.GlobalPool.AveragePatches : CrOC.Math.Croc.GlobalPool.ClsToken,
        c.StudentTemp,
        c.StudentTempC,
        c.CentreMomentum,
        c.DropPath,
        PrecisionOf(c.Precision));

    /// <summary>A resolved `--precision` (fp32 | bf16) as the math library's type.</summary>
    public static Layers.Precision PrecisionOf(string name) => name == "bf16" ? Layers.Precision.Bf16 : Layers.Precision.Fp32;

    /// <summary>The per-iteration schedules; with ≤ 2 epochs both warm-ups are 0 (as the official code).</summary>
    public static (Schedules.CosineSchedule Lr, Schedules.CosineSchedule Wd, Schedules.CosineSchedule Momentum) Schedules(TrainConfig c, int itersPerEpoch, int world = 1)
    {
        int warmup = c.Epochs <= 2 ? 0 : c.WarmupEpochs;
        double peak = CrOC.Math.Schedules.scaledLearningRate(c.Lr, c.Batch * c.Accum * world);
        return (CrOC.Math.Schedules.learningRate(peak, c.MinLr, c.Epochs, itersPerEpoch, warmup),
                CrOC.Math.Schedules.weightDecay(c.WeightDecay, c.WeightDecayEnd, c.Epochs, itersPerEpoch),
                CrOC.Math.Schedules.teacherMomentum(c.MomentumTeacher, c.Epochs, itersPerEpoch));
    }

    public static (double Image, double Objects) TeacherTemperatures(TrainConfig c, int epoch)
    {
        int warm = c.Epochs <= 2 ? 0 : c.WarmupTeacherTempEpochs;
        return (CrOC.Math.Schedules.teacherTemperature(c.WarmupTeacherTemp, c.TeacherTemp, warm, epoch),
                CrOC.Math.Schedules.teacherTemperature(c.WarmupTeacherTempC, c.TeacherTempC, warm, epoch));
    }
}
