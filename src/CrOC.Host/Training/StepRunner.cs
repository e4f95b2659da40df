using CrOC.Data;
using CrOC.Host.Distributed;
using CrOC.Math;
using TorchSharp;

namespace CrOC.Host.Training;

/// <summary>The values of the schedules at one iteration.</summary>
public readonly record struct StepSchedule(int Epoch, double Lr, double WeightDecay, double Momentum, double TeacherTemp, double TeacherTempC);

/// <summary>
/// One optimiser step (spec §2, §8), shared by `train` and `bench`: for each micro-batch
/// <see cref="Croc.step"/> and backward (loss / accum) in a dispose scope; then, over all ranks,
/// the mean gradients (flat buckets), the mean metrics and the summed centre statistics; the centre
/// update, per-tensor clipping, the last-layer freeze, AdamW and the EMA teacher.
/// </summary>
/// <remarks>
/// Sub-batch g = (step·accum + k)·W + rank (micro-batch k of this rank) reseeds the stochastic
/// depth and the clustering's seeding, and <see cref="EpochOrder"/> gives it the same images
/// whatever W is: W ranks × accum A compute exactly what one process with accum W·A computes.
/// </remarks>
public static class StepRunner
{
    /// <summary>Metrics reported per step, averaged over micro-batches and ranks.</summary>
    static readonly string[] MetricNames = ["loss", "loss_img", "loss_obj", "objects_per_image", "objects_empty", "mean_k_star", "teacher_entropy", "kl_teacher_student"];

    /// <summary>Runs the step; <paramref name="mark"/> (if any) hears each phase's end:
    /// data, teacher forward, clustering, student forward, heads + losses, backward, all-reduce,
    /// optimiser, EMA. Returns the metrics averaged over the micro-batches and ranks.</summary>
    public static Dictionary<string, double> Run(Croc.CrocConfig croc, TrainConfig config, TrainingState state, ICollective collective,
        IEnumerator<(torch.Tensor Views, torch.Tensor Positions, IDisposable? Owner)> microBatches, StepSchedule s, Action<string>? mark = null)
    {
        using var stepScope = torch.NewDisposeScope();
        var sums = new double[MetricNames.Length];
        var trainable = Network.trainable(state.Model.Student).ToList();
        var tensors = trainable.Select(t => t.Item2).ToList();
        Optim.clearGradients(tensors);
        var image = new CentreStatistics(state.Model.Centre);
        var objects = new CentreStatistics(state.Model.CentreC);
        for (int micro = 0; micro < config.Accum; micro++)
        {
            if (!microBatches.MoveNext()) throw new InvalidOperationException("the loader ran out of batches inside an epoch");
            var (views, positions, owner) = microBatches.Current;
            using var batch = owner;
            mark?.Invoke("data");
            long subBatch = (state.Step * config.Accum + micro) * collective.World + collective.Rank;
            using var dropPath = new torch.Generator(SubBatchSeed(config.Seed, subBatch, 1), torch.CPU);
            using var seeding = new torch.Generator(SubBatchSeed(config.Seed, subBatch, 2), torch.CPU);
            using var scope = torch.NewDisposeScope();
            var input = new Croc.StepInput(views, positions, s.TeacherTemp, s.TeacherTempC, Clustering.Seeding.NewSampled(seeding), dropPath, mark);
            var result = Croc.step(croc, state.Model, input);
            Tensors.over(result.Loss, config.Accum).backward(); // no temporary Scalar: see Tensors.withScalar
            mark?.Invoke("backward");
            var values = Metrics(result, config.Batch);
            for (int i = 0; i < sums.Length; i++) sums[i] += values[i] / config.Accum;
            image.Add(result.CentreStats);
            objects.Add(result.CentreStatsC);
        }
        // Over the ranks: one all-reduce of the metric sums and the two row counts, then (unless the
        // loss diverged, which every rank sees alike) the gradients and one of the two centre sums.
        var totals = AllReduceSum(collective, [.. sums, image.Count, objects.Count]);
        var metrics = MetricNames.Select((name, i) => (name, totals[i] / collective.World)).ToDictionary(p => p.name, p => p.Item2);
        if (!double.IsFinite(metrics["loss"])) return metrics; // the caller stops the run; nothing is updated
        collective.AverageGradients(tensors);
        var (imageSum, objectSum) = AllReduceJoined(collective, image.Sum, objects.Sum);
        mark?.Invoke("all-reduce");
        var (centre, centreC) = Croc.updateCentres(croc, state.Model,
            new Losses.RowSum(imageSum, totals[MetricNames.Length]), new Losses.RowSum(objectSum, totals[MetricNames.Length + 1]));
        var old = state.Model;
        state.Model = new Croc.CrocState(old.Student, old.Teacher, centre.DetachFromDisposeScope(), centreC.DetachFromDisposeScope());
        old.Centre.Dispose();
        old.CentreC.Dispose();
        Optim.clipPerTensor(config.ClipGrad, tensors);
        Croc.optimiserStep(state.Optimizer, trainable, s.Lr, s.WeightDecay, config.FreezeLastLayer, s.Epoch);
        mark?.Invoke("optimiser");
        Ema.ema(s.Momentum, state.Teacher.Select(t => t.Tensor), state.Student.Select(t => t.Tensor));
        mark?.Invoke("EMA");
        state.Step++;
        return metrics;
    }

    /// <summary>The seed of one random stream of one sub-batch.</summary>
    static ulong SubBatchSeed(long seed, long subBatch, int stream) => new SampleRandom(seed, -2, subBatch, stream).NextUInt64();

    static double[] Metrics(Croc.StepResult r, int batch) =>
    [
        r.Loss.item<float>(), r.LossImg.item<float>(), r.LossObj.item<float>(), (double)r.ValidObjects / batch,
        r.ObjectsEmpty ? 1 : 0, r.MeanKStar, r.TeacherEntropy, r.KlTeacherStudent,
    ];

    static double[] AllReduceSum(ICollective collective, double[] local)
    {
        if (collective.World == 1) return local;
        using var scope = torch.NewDisposeScope();
        var all = torch.tensor(local, torch.float64);
        collective.AllReduceSum(all);
        return all.data<double>().ToArray();
    }

    /// <summary>Two (1, n) sums all-reduced as one buffer.</summary>
    static (torch.Tensor, torch.Tensor) AllReduceJoined(ICollective collective, torch.Tensor a, torch.Tensor b)
    {
        if (collective.World == 1) return (a, b);
        var joined = torch.cat([a, b], 1);
        collective.AllReduceSum(joined);
        return (joined.narrow(1, 0, a.shape[1]), joined.narrow(1, a.shape[1], b.shape[1]));
    }

    /// <summary>Σ of the teacher rows and their count over the micro-batches of this rank.</summary>
    sealed class CentreStatistics(torch.Tensor centre)
    {
        public torch.Tensor Sum { get; } = torch.zeros_like(centre);
        public double Count { get; private set; }

        public void Add(Losses.RowSum rows)
        {
            Tensors.addInPlace(Sum, rows.Sum);
            Count += rows.Count;
        }
    }
}
