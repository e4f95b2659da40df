using CrOC.Host.CommandLine;
using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using CrOC.Data;
using CrOC.Host.Distributed;
using CrOC.Host.Training;
using CrOC.Math;
using TorchSharp;
using CrOC.Host.Runtime;

namespace CrOC.Host;

/// <summary>`croc-host bench`'s command line.</summary>
[Command("bench", "time the training step (the code path of `train`) on synthetic inputs: phases, images/s, MFU, peak RSS", Notes = """
    Under mpirun (-np N) it times the data-parallel step: each process runs --batch images and
    the gradients, metrics and centres are all-reduced ("all-reduce" phase); images/s counts
    all processes; rank 0 prints.
    MFU = the ViT's FLOPs per step (teacher forward + student forward and backward ≈ 4 forwards of
    the 2B views) / step time / the matmul FLOP/s of a 4096² torch.mm measured here in the same precision.
    """)]
public sealed record BenchOptions
{
    [Option("model and heads (official: ViT-S/16, 224 px, 65536/8192 outputs)")]
    public Training.Preset Preset { get; init; } = Training.Preset.Official;
    [Option("images per step", Min = 1, Max = 65536)]
    public int Batch { get; init; } = 8;
    [Option("view size (a multiple of the preset's patch)", Min = 1, Max = 4096, Default = "the preset's")]
    public int? Size { get; init; }
    [Option("bf16: mixed precision, MFU then against the bf16 matmul speed; auto (as train): bf16 where it is faster than fp32, else fp32")]
    public PrecisionChoice Precision { get; init; } = PrecisionChoice.Auto;
    [Option("timed steps after 2 warm-ups", Min = 1, Max = 100000)]
    public int Repeats { get; init; } = 5;
    [Option("layout of the selected clusters, as train's: dynamic (the spec's) or fixed (no host read)")]
    public ObjectShapesChoice ObjectShapes { get; init; } = ObjectShapesChoice.Dynamic;
    [Option("torch intra-op threads (0: the cores shared among the local processes)", Min = 0, Max = 4096)]
    public int Threads { get; init; }
    [Option("where the step runs", Value = "cpu|cuda[:N]")]
    public string Device { get; init; } = "cpu";
    [Option("skip the data-pipeline measurement")]
    public bool NoData { get; init; }
    [Option("end with one JSON line (images_per_s, mfu, phases, peak_rss_mb, ...)")]
    public bool Json { get; init; }
}

/// <summary>
/// `croc-host bench`: the real training step (StepRunner, as `train`) on synthetic inputs, with a
/// per-phase breakdown, images/s, peak RSS and the model-FLOP utilisation against the matmul speed
/// this command measures on this machine.
/// </summary>
public static class BenchCommand
{
    public static int Run(BenchOptions o)
    {
        using var ranks = Collectives.FromEnvironment(TimeSpan.FromSeconds(600));
        try { return Measure(o, ranks); }
        catch (Exception e) when (ranks.World > 1)
        {
            return TrainCommand.ReportOnRank("bench", ranks, e, null);
        }
    }

    /// <summary>The training config bench's step runs with (train's checks, in bench's words).</summary>
    public static TrainConfig ConfigOf(BenchOptions o)
    {
        var pairs = new List<(string, string?)> { ("preset", o.Preset.Word()), ("batch", o.Batch.ToString(CultureInfo.InvariantCulture)), ("precision", o.Precision.Word()), ("device", o.Device), ("object-shapes", o.ObjectShapes.Word()) };
        if (o.Size is int s) pairs.Add(("image-size", s.ToString(CultureInfo.InvariantCulture)));
        // bench times random tensors, never the synthetic set: its size may not refuse a large --batch
        pairs.Add(("synthetic-train", System.Math.Max(o.Batch, new TrainConfig().SyntheticTrain).ToString(CultureInfo.InvariantCulture)));
        try { return TrainConfig.Resolve(pairs); }
        catch (ConfigException e) // train's words for bench's --size
        {
            throw new OptionException(e.Message.Replace("--image-size", "--size").Replace("--patch", "the preset's patch").Replace("--n-tokens", "the preset's n-tokens"));
        }
    }

    static int Measure(BenchOptions o, ICollective ranks)
    {
        var (preset, batch, precision, deviceName, repeats, json) = (o.Preset, o.Batch, o.Precision, o.Device, o.Repeats, o.Json);
        bool explicitThreads = o.Threads > 0;
        int threads = o.Threads;
        bool data = !o.NoData;

        if (!explicitThreads) threads = Collectives.DefaultThreads(ranks);
        data &= ranks.World == 1;
        var print = ranks.IsRoot ? (Action<string>)Console.WriteLine : _ => { };
        var device = Devices.Resolve(deviceName, ranks.LocalRank);
        torch.set_num_threads(threads);
        var config = ConfigOf(o);
        precision = config.Precision; // auto resolved
        ranks.AgreeOnSettings(Agreement.SettingsOf(o with { Precision = precision })); // the step's shapes, its count, and images/s (processes × --batch)
        var croc = CrocSetup.Croc(config);
        var vit = croc.Network.Vit;
        if (device.type == DeviceType.CPU) CrocSetup.CheckStepMemory(config, batch, $"--size {vit.ImageSize} with the preset's patch {vit.Patch}", headOptions: null);
        using var state = TrainingState.Fresh(config, croc, device);
        var generator = new torch.Generator(1UL + (ulong)ranks.Rank, torch.CPU);
        using var views = torch.randn([2L * batch, 3, vit.ImageSize, vit.ImageSize], generator: generator).to(device);
        using var positions = (torch.rand([2L * batch, vit.Tokens, 2], generator: generator) * vit.ImageSize).to(device);
        print($"bench: preset {preset.Word()}, ViT D={vit.Dim} depth {vit.Depth} patch {vit.Patch}, {vit.ImageSize} px, batch {batch} (2 views), {precision.Word()}, {config.ObjectShapes.Word()} object shapes, {threads} threads, {ranks.World} process(es), {device}; {MklVendorCheck.Status}; {HeapSettings.Status}");
        if (Collectives.Oversubscription(threads, ranks.LocalWorld) is { } warning) print(warning);

        var phases = new Dictionary<string, List<double>>();
        var totals = new List<double>();
        var stepPhases = new List<Dictionary<string, double>>(); // per timed step: the phases it ran (a non-finite loss skips the update's)
        var schedule = new TrainingStep.Schedule(epoch: 1, lr: 1e-4, weightDecay: 0.04, momentum: 0.996, teacherTemp: 0.04, teacherTempC: 0.04);
        for (int i = 0; i < repeats + 2; i++)
        {
            var watch = Stopwatch.StartNew();
            double last = 0;
            var step = new Dictionary<string, double>();
            StepRunner.Run(croc, StepRunner.SettingsOf(config), config.Seed, state, ranks, Repeat(views, positions), schedule, phase =>
            {
                if (device.type == DeviceType.CUDA) torch.cuda.synchronize(); // phases end when their kernels do
                double now = watch.Elapsed.TotalSeconds;
                step[phase] = step.GetValueOrDefault(phase) + now - last;
                last = now;
            });
            double total = watch.Elapsed.TotalSeconds;
            print($"  step {i + 1}{(i < 2 ? " (warm-up)" : "")}: {total:F2} s");
            if (i < 2) continue;
            totals.Add(total);
            stepPhases.Add(step);
            foreach (var (phase, t) in step) (phases.TryGetValue(phase, out var l) ? l : phases[phase] = []).Add(t);
        }
        double stepSeconds = Timing.MedianOf(totals);
        double peakRss = PeakRssMegabytes(); // the steps' peak: before the 4096² matmul and the data timing (~360 MB more for the tiny preset once)
        int images = batch * ranks.World;
        double matmul = MatmulFlops(precision == PrecisionChoice.Bf16 ? torch.bfloat16 : torch.float32, device);
        double vitFlops = 4.0 * 2 * batch * ForwardFlops(vit);
        double mfu = vitFlops / stepSeconds / matmul;
        double? dataRate = data ? DataBenchmark.ImagesPerSecond(vit.ImageSize, vit.Patch, batch) : null;
        if (!ranks.IsRoot) return 0;

        Console.WriteLine($"{"phase",-18} {"median s",9} {"share",7}");
        var medians = phases.ToDictionary(p => p.Key, p => Timing.MedianOf(p.Value));
        foreach (var (phase, t) in medians) Console.WriteLine($"{phase,-18} {t,9:F3} {100 * t / stepSeconds,6:F1}%");
        Console.WriteLine($"step: {stepSeconds:F3} s median over {totals.Count}, {images / stepSeconds:F2} images/s ({ranks.World} process(es))");
        Console.WriteLine($"matmul (4096² {precision.Word()} mm): {matmul / 1e9:F0} GFLOP/s; ViT: {vitFlops / 1e9:F0} GFLOP per step → {vitFlops / stepSeconds / 1e9:F0} GFLOP/s, MFU {100 * mfu:F1}%");
        if (dataRate is double r) Console.WriteLine($"data pipeline (2 workers, {vit.ImageSize} px views of 640x480 JPEGs): {r:F1} images/s");
        Console.WriteLine($"clustering: {100 * medians.GetValueOrDefault("clustering") / stepSeconds:F1}% of the step; peak RSS {peakRss:F0} MB");
        if (json)
            Console.WriteLine(JsonSerializer.Serialize(new Dictionary<string, object?>
            {
                ["preset"] = preset.Word(), ["batch"] = batch, ["precision"] = precision.Word(), ["object_shapes"] = config.ObjectShapes.Word(), ["threads"] = threads, ["processes"] = ranks.World,
                ["step_s"] = stepSeconds, ["images_per_s"] = images / stepSeconds, ["mfu"] = mfu,
                ["matmul_gflops"] = matmul / 1e9, ["vit_gflops_per_step"] = vitFlops / 1e9,
                ["phases"] = medians, ["clustering_share"] = medians.GetValueOrDefault("clustering") / stepSeconds,
                ["step_times_s"] = totals, ["phase_times_s"] = stepPhases, // the medians' inputs: the timed steps' times, in order
                ["data_images_per_s"] = dataRate, ["peak_rss_mb"] = peakRss,
            }, new JsonSerializerOptions { Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping }));
        return 0;
    }

    static IEnumerator<(torch.Tensor, torch.Tensor, IDisposable?)> Repeat(torch.Tensor views, torch.Tensor positions)
    {
        while (true) yield return (views, positions, null);
    }

    /// <summary>Multiply-add FLOPs of one image's forward pass (matmuls and attention).</summary>
    public static double ForwardFlops(Vit.VitConfig c)
    {
        double t = c.Tokens + 1, d = c.Dim;
        double patch = 2.0 * c.Tokens * 3 * c.Patch * c.Patch * d;
        double block = 2 * t * d * 3 * d + 2 * 2 * t * t * d + 2 * t * d * d + 2 * 2 * t * d * c.MlpRatio * d;
        return patch + c.Depth * block;
    }

    static double MatmulFlops(torch.ScalarType type, torch.Device device)
    {
        using var scope = torch.NewDisposeScope();
        if (type == torch.bfloat16) CrOC.Math.SignalStack.ensure(); // AMX tiles on this thread
        var a = torch.randn(4096, 4096).to_type(type).to(device);
        var b = torch.randn(4096, 4096).to_type(type).to(device);
        var times = new List<double>();
        for (int i = 0; i < 4; i++)
        {
            var watch = Stopwatch.StartNew();
            torch.mm(a, b).Dispose();
            if (device.type == DeviceType.CUDA) torch.cuda.synchronize();
            if (i > 0) times.Add(watch.Elapsed.TotalSeconds);
        }
        return 2.0 * 4096 * 4096 * 4096 / Timing.MedianOf(times);
    }

    static double PeakRssMegabytes()
    {
        var line = File.Exists("/proc/self/status") ? File.ReadLines("/proc/self/status").FirstOrDefault(l => l.StartsWith("VmHWM:", StringComparison.Ordinal)) : null;
        return line is null ? double.NaN : double.Parse(line.Split(' ', StringSplitOptions.RemoveEmptyEntries)[1], CultureInfo.InvariantCulture) / 1024;
    }
}
