using CrOC.Math;
using TorchSharp;

namespace CrOC.Host.Training;

/// <summary>Everything a run needs to continue exactly where it stopped. Disposing it frees the
/// networks, centres and moments (several runs in one process: the synthetic experiment carried
/// each run's state into the next until the GC ran).</summary>
public sealed class TrainingState : IDisposable
{
    public required Croc.CrocState Model { get; set; }
    public required Optim.AdamW Optimizer { get; init; }
    /// <summary>Optimiser steps done so far.</summary>
    public long Step { get; set; }

    /// <summary>A new run's state on <paramref name="device"/> (CPU by default); initialised on
    /// the CPU generator, so every device starts from the same weights.</summary>
    public static TrainingState Fresh(TrainConfig config, Croc.CrocConfig croc, torch.Device? device = null)
    {
        using var init = new torch.Generator((ulong)config.Seed, torch.CPU);
        var model = Croc.init(croc, init);
        if (device is not null && device.type != DeviceType.CPU)
        {
            var onCpu = model;
            model = Croc.toDevice(croc.Network, device, onCpu);
            Free(onCpu); // the CPU copy waited for the GC once
        }
        return new TrainingState { Model = model, Optimizer = new Optim.AdamW() };
    }

    /// <summary>The student's (name, tensor) pairs with official names.</summary>
    public IEnumerable<(string Name, torch.Tensor Tensor)> Student => Network.named(Model.Student).Select(t => (t.Item1, t.Item2));
    public IEnumerable<(string Name, torch.Tensor Tensor)> Teacher => Network.named(Model.Teacher).Select(t => (t.Item1, t.Item2));

    public void Dispose()
    {
        Free(Model);
        ((IDisposable)Optimizer).Dispose();
    }

    /// <summary>Disposes a model's networks and centres.</summary>
    static void Free(Croc.CrocState model)
    {
        foreach (var (_, tensor) in Network.named(model.Student).Concat(Network.named(model.Teacher))) tensor.Dispose();
        model.Centre.Dispose();
        model.CentreC.Dispose();
    }
}
