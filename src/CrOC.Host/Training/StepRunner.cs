using CrOC.Data;
using CrOC.Host.Distributed;
using CrOC.Math;
using TorchSharp;

namespace CrOC.Host.Training;

/// <summary>
/// The host's side of one optimiser step (<see cref="TrainingStep.run"/>, where the step and the
/// recipe's rules live), shared by `train` and `bench`: the loader's micro-batches with their random
/// streams, the collective, and the state it advances.
/// </summary>
/// <remarks>
/// Sub-batch g = (step·accum + k)·W + rank (micro-batch k of this rank) reseeds the stochastic
/// depth and the clustering's seeding, and <see cref="EpochOrder"/> gives it the same images
/// whatever W is: W ranks × accum A compute exactly what one process with accum W·A computes.
/// </remarks>
public static class StepRunner
{
    /// <summary>The step's settings from a run's configuration.</summary>
    public static TrainingStep.Settings SettingsOf(TrainConfig config) =>
        new(accum: config.Accum, batch: config.Batch, clipGrad: config.ClipGrad, freezeLastLayer: config.FreezeLastLayer);

    /// <summary>Runs the step on <paramref name="state"/> (advanced by one step unless the loss
    /// diverged); <paramref name="mark"/> (if any) hears each phase's end. Returns the metrics
    /// averaged over the micro-batches and ranks.</summary>
    public static Dictionary<string, double> Run(Croc.CrocConfig croc, TrainingStep.Settings settings, long seed, TrainingState state, ICollective collective,
        IEnumerator<(torch.Tensor Views, torch.Tensor Positions, IDisposable? Owner)> source, TrainingStep.Schedule schedule, Action<string>? mark = null)
    {
        var (model, metrics) = TrainingStep.run(croc, settings, new StepCollective(collective), state.Optimizer, state.Model,
            MicroBatches(seed, settings.Accum, state.Step, collective, source), schedule, mark);
        state.Model = model;
        if (double.IsFinite(metrics["loss"])) state.Step++;
        return metrics;
    }

    /// <summary>The next <paramref name="accum"/> batches of <paramref name="source"/>, each with
    /// its sub-batch's generators; a batch and its generators are freed when the next is asked for.</summary>
    static IEnumerable<TrainingStep.MicroBatch> MicroBatches(long seed, int accum, long step, ICollective collective,
        IEnumerator<(torch.Tensor Views, torch.Tensor Positions, IDisposable? Owner)> source)
    {
        for (int micro = 0; micro < accum; micro++)
        {
            if (!source.MoveNext()) throw new InvalidOperationException("the loader ran out of batches inside an epoch");
            var (views, positions, owner) = source.Current;
            using var batch = owner;
            long subBatch = (step * accum + micro) * collective.World + collective.Rank;
            using var dropPath = new torch.Generator(SubBatchSeed(seed, subBatch, 1), torch.CPU);
            using var seeding = new torch.Generator(SubBatchSeed(seed, subBatch, 2), torch.CPU);
            yield return new TrainingStep.MicroBatch(views: views, positions: positions, dropPath: dropPath, seeding: seeding);
        }
    }

    /// <summary>The seed of one random stream of one sub-batch.</summary>
    static ulong SubBatchSeed(long seed, long subBatch, int stream) => new SampleRandom(seed, -2, subBatch, stream).NextUInt64();

    /// <summary>The host's collective as the step sees it.</summary>
    sealed class StepCollective(ICollective collective) : TrainingStep.ICollective
    {
        public int Rank => collective.Rank;
        public int World => collective.World;
        public void AllReduceSum(torch.Tensor tensor) => collective.AllReduceSum(tensor);
        public void AverageGradients(IEnumerable<torch.Tensor> parameters) => collective.AverageGradients(parameters);
    }
}
