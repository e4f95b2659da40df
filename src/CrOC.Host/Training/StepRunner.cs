using CrOC.Math;
using Microsoft.FSharp.Core;
using TorchSharp;

namespace CrOC.Host.Training;

/// <summary>The values of the schedules at one iteration.</summary>
public readonly record struct StepSchedule(int Epoch, double Lr, double WeightDecay, double Momentum, double TeacherTemp, double TeacherTempC);

/// <summary>
/// One optimiser step (spec §2, §8), shared by `train` and `bench`: for each micro-batch
/// <see cref="Croc.step"/> and backward (loss / accum) in a dispose scope, keeping the new centres;
/// then per-tensor clipping, the last-layer freeze, AdamW and the EMA teacher.
/// </summary>
public static class StepRunner
{
    static readonly FSharpFunc<string, Unit> NoMark = FSharpFunc.Of((string _) => (Unit)null!);

    /// <summary>Runs the step; <paramref name="mark"/> (if any) hears each phase's end:
    /// data, teacher forward, clustering, student forward, heads + losses, backward, optimiser, EMA.
    /// Returns the metrics averaged over the micro-batches.</summary>
    public static Dictionary<string, double> Run(Croc.CrocConfig croc, TrainConfig config, TrainingState state,
        IEnumerator<(torch.Tensor Views, torch.Tensor Positions, IDisposable? Owner)> microBatches, StepSchedule s, Action<string>? mark = null)
    {
        var values = new Dictionary<string, double>();
        var trainable = Network.trainable(state.Model.Student).ToList();
        var tensors = trainable.Select(t => t.Item2).ToList();
        var marker = mark is null ? NoMark : FSharpFunc.Of((string phase) => { mark(phase); return (Unit)null!; });
        Optim.zeroGradients(tensors);
        for (int micro = 0; micro < config.Accum; micro++)
        {
            if (!microBatches.MoveNext()) throw new InvalidOperationException("the loader ran out of batches inside an epoch");
            var (views, positions, owner) = microBatches.Current;
            using var batch = owner;
            mark?.Invoke("data");
            using var scope = torch.NewDisposeScope();
            var input = new Croc.StepInput(views, positions, s.TeacherTemp, s.TeacherTempC, Clustering.Seeding.NewSampled(state.Seeding), state.DropPath, marker);
            var result = Croc.step(croc, state.Model, input);
            Tensors.over(result.Loss, config.Accum).backward(); // no temporary Scalar: see Tensors.withScalar
            mark?.Invoke("backward");
            Accumulate(values, result, config.Batch, config.Accum);
            var old = state.Model;
            state.Model = new Croc.CrocState(old.Student, old.Teacher, result.Centre.DetachFromDisposeScope(), result.CentreC.DetachFromDisposeScope());
            old.Centre.Dispose();
            old.CentreC.Dispose();
        }
        if (!double.IsFinite(values["loss"])) return values; // the caller stops the run; nothing is updated
        Optim.clipPerTensor(config.ClipGrad, tensors);
        bool freeze = s.Epoch < config.FreezeLastLayer;
        state.Optimizer.Step(trainable, s.Lr,
            FSharpFunc.Of((string name, torch.Tensor t) => Network.decays(name, t) ? s.WeightDecay : 0.0),
            FSharpFunc.Of((string name) => freeze && name.Contains("last_layer", StringComparison.Ordinal)));
        mark?.Invoke("optimiser");
        Ema.ema(s.Momentum, state.Teacher.Select(t => t.Tensor), state.Student.Select(t => t.Tensor));
        mark?.Invoke("EMA");
        state.Step++;
        return values;
    }

    static void Accumulate(Dictionary<string, double> values, Croc.StepResult r, int batch, int accum)
    {
        void Add(string key, double v) => values[key] = values.GetValueOrDefault(key) + v / accum;
        Add("loss", r.Loss.item<float>());
        Add("loss_img", r.LossImg.item<float>());
        Add("loss_obj", r.LossObj.item<float>());
        Add("objects_per_image", (double)r.ValidObjects / batch);
        Add("objects_empty", r.ObjectsEmpty ? 1 : 0);
        Add("mean_k_star", r.MeanKStar);
        Add("teacher_entropy", r.TeacherEntropy);
        Add("kl_teacher_student", r.KlTeacherStudent);
    }
}
