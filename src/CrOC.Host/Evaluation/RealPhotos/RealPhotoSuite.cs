using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using CrOC.Data;
using CrOC.Host.CommandLine;
using CrOC.Host.Visual;

namespace CrOC.Host.Evaluation.RealPhotos;

/// <summary>A backbone the suite evaluates: a method at a seed, from a checkpoint or a random initialisation.</summary>
public sealed record EvaluatedBackbone(string Method, int Seed, string Weights, bool Random)
{
    public string Key => $"{Method switch { "CrOC" => "croc", "DINO-only" => "dino", _ => "random" }}-seed{Seed}";
}

/// <summary>
/// The real-photo suite (`croc-host experiment --suite real`): pre-trains CrOC and DINO-only with one
/// recipe at each seed (the two methods of a seed side by side, one thread each), then evaluates
/// them and a random initialisation of the same architecture with frozen backbones — CamVid test
/// mIoU (probe trained on CamVid train), Weizmann horse IoU (probe trained on its train split),
/// Tiny ImageNet weighted k-NN — and probes the kept checkpoints of seed 0 on CamVid val for the
/// curve. Every job writes JSON; a rerun skips what is done (and resumes interrupted runs).
/// </summary>
public sealed class RealPhotoSuite(RealPhotoPlan plan, string dataRoot, string output, Action<string> log)
{
    const int Parallel = 2;
    readonly string camVid = Path.Combine(dataRoot, "camvid");
    readonly string horses = Path.Combine(dataRoot, "weizmann-horses");
    readonly string tinyImageNet = Path.Combine(dataRoot, "tiny-imagenet-subset.tar");
    readonly Dictionary<string, double> phaseSeconds = [];

    string Runs => Path.Combine(output, "runs");
    string Evaluations => Path.Combine(output, "eval");
    string Logs => Path.Combine(output, "logs");
    public string RunFolder(string method, int seed) => Path.Combine(Runs, $"{Slug(method)}-seed{seed}");

    /// <summary>Runs every phase and returns the results (also written to results.json and results.md).</summary>
    public RealPhotoResults Run()
    {
        CheckData();
        var trainval = WriteTrainvalList();
        Phase("pre-training", () => Pretrain(trainval));
        var backbones = plan.Seeds.SelectMany(seed => new[]
        {
            new EvaluatedBackbone("CrOC", seed, FinalCheckpoint("CrOC", seed), false),
            new EvaluatedBackbone("DINO-only", seed, FinalCheckpoint("DINO-only", seed), false),
            new EvaluatedBackbone("random init", seed, FinalCheckpoint("CrOC", seed), true),
        }).ToList();
        Phase("evaluation", () => HostJobs.Run(ToRun(backbones.SelectMany(EvaluationJobs)), Parallel, log));
        var curve = CurvePoints();
        Phase("curve", () => HostJobs.Run(ToRun(curve.Select(CurveJob)), Parallel, log));
        Phase("pictures", () => Pictures(backbones));
        var results = RealPhotoResults.Collect(plan, backbones, curve, this, phaseSeconds);
        results.Write(output);
        CurvePicture.Write($"CamVid val mIoU during pre-training (seed {plan.Seeds[0]})", "pre-training step", "mIoU %", results.CurveSeries(), Path.Combine(PicturesFolder, "curve-camvid-val.png"));
        return results;
    }

    /// <summary>Runs a phase and adds its wall time to the suite's record (phases.json), so that a
    /// resumed or repeated suite reports the time spent over all its invocations — an interrupted
    /// or failed invocation's too.</summary>
    public void Phase(string name, Action work)
    {
        log($"== {name}");
        var watch = Stopwatch.StartNew();
        try { work(); }
        finally
        {
            var record = Path.Combine(output, "phases.json");
            var spent = SpentSoFar(record, log);
            phaseSeconds[name] = spent.GetValueOrDefault(name) + watch.Elapsed.TotalSeconds;
            foreach (var (phase, seconds) in spent) phaseSeconds.TryAdd(phase, seconds);
            CrOC.Host.Weights.AtomicFile.WriteAllText(record, System.Text.Json.JsonSerializer.Serialize(phaseSeconds));
        }
        log($"== {name} done in {watch.Elapsed.TotalMinutes:F1} min");
    }

    /// <summary>The phases' seconds recorded in <paramref name="record"/> (none when it is absent). A
    /// record that does not read as phase names and seconds is set aside as *.refused and counted as
    /// none: it must neither hide the phase's own outcome nor fail every later invocation.</summary>
    public static Dictionary<string, double> SpentSoFar(string record, Action<string> log)
    {
        if (!File.Exists(record)) return [];
        try
        {
            var times = JsonSerializer.Deserialize<Dictionary<string, double>>(RegularFile.ReadAtMost(record, 1 << 20) ?? throw new IOException("not a readable file of at most 1 MiB")) ?? [];
            // 1e400 reads as ∞, which the record's next write cannot hold (an internal error at the phase's end)
            return times.Values.All(s => double.IsFinite(s) && s >= 0) ? times : throw new JsonException("a time that is no finite number of seconds");
        }
        catch (Exception e) when (e is JsonException or IOException or UnauthorizedAccessException)
        {
            var aside = OutputPaths.SetAside(record, "refused");
            log($"note: {record} is no record of phase times ({e.Message.Split('\n')[0]}); kept as {aside}, the times start anew");
            return [];
        }
    }

    void CheckData()
    {
        foreach (var (path, what) in new[] { (camVid, "CamVid (VOC layout)"), (horses, "Weizmann Horses (VOC layout)") })
            if (!Directory.Exists(Path.Combine(path, "ImageSets", "Segmentation")))
                throw new DatasetException($"{what} not found at '{path}': --data-root must hold camvid/, weizmann-horses/ and tiny-imagenet-subset.tar (see ../shared/data/README.md)");
        if (!File.Exists(tinyImageNet)) throw new DatasetException($"Tiny ImageNet not found at '{tinyImageNet}'");
        // before hours of pre-training, each found by its evaluation once (exit 1 after the runs):
        // every split the plan reads with its images and masks, the archive whole, the result files writable
        foreach (var split in new[] { "trainval", "train", "val", "test" }) _ = new VocSegmentation(camVid, split);
        foreach (var split in new[] { "train", "val" }) _ = new VocSegmentation(horses, split);
        _ = EvalSegCommand.ClassNames(camVid, null); // a labels.txt there that is a folder or binary: refused now, not by the CamVid jobs hours later
        var horseLabels = Path.Combine(horses, "labels.txt");
        if (!EvalSegCommand.ClassNames(horses, null).Contains("horse")) // the table's horse IoU
            throw new DatasetException($"'{horseLabels}' {(File.Exists(horseLabels) ? "names no class 'horse'" : "is missing")} (as in ../shared/data: background, horse)");
        if (TarArchive.Open(tinyImageNet).Problem is { } damage)
            throw new DatasetException($"Tiny ImageNet's archive is damaged ({damage}): its k-NN would use the members before the damage only");
        OutputPaths.Folder(PicturesFolder, "--output (its pictures/)");
        foreach (var file in new[] { "results.json", "results.md" }) OutputPaths.File(Path.Combine(output, file), $"--output (its {file})");
    }

    /// <summary>CamVid's trainval photos as a list of files (the pre-training data; test is never seen).</summary>
    string WriteTrainvalList()
    {
        var names = new VocSegmentation(camVid, "trainval");
        // before hours of pre-training: another copy would end short of the final checkpoint the evaluations need
        if (names.Count / RealPhotoPlan.Batch != RealPhotoPlan.BatchesPerEpoch)
            throw new DatasetException($"CamVid's trainval list names {names.Count} photos: {names.Count / RealPhotoPlan.Batch} batches of {RealPhotoPlan.Batch} per epoch, where the plan's {plan.Epochs} epochs need {RealPhotoPlan.BatchesPerEpoch} (468 photos, as in ../shared/data) to make {plan.Steps} steps");
        var list = Path.Combine(output, "camvid-trainval.txt");
        Directory.CreateDirectory(output);
        File.WriteAllLines(list, Enumerable.Range(0, names.Count).Select(i => Path.GetFullPath(names.ImagePath(i))));
        return list;
    }

    void Pretrain(string trainval) => HostJobs.Run(PretrainJobs(trainval), Parallel, log);

    /// <summary>The pre-training runs, each echoing a progress line every <see cref="RealPhotoPlan.LogEvery"/> steps.</summary>
    public IReadOnlyList<HostJob> PretrainJobs(string trainval) =>
        plan.Seeds.SelectMany(seed => new[] { "CrOC", "DINO-only" }.Select(method => new HostJob(
            $"{method} seed {seed}",
            [
                "train", .. plan.Recipe, "--data", trainval, "--output", RunFolder(method, seed), "--seed", $"{seed}",
                "--alpha", method == "CrOC" ? "1" : "0", "--epochs", $"{plan.Epochs}", "--max-steps", $"{plan.Steps}",
                "--checkpoint-every", $"{plan.CurveEvery}", "--keep-checkpoints", "2", "--keep-every", $"{plan.CurveEvery}", "--log-every", $"{plan.LogEvery}",
            ],
            Path.Combine(Logs, $"train-{Slug(method)}-seed{seed}.log"), EchoProgress: true))).ToList();

    string FinalCheckpoint(string method, int seed) =>
        Training.Checkpoints.List(RunFolder(method, seed)).LastOrDefault(c => Training.Checkpoints.StepOf(c) == plan.Steps)
        ?? throw new DatasetException($"the {method} run of seed {seed} has no checkpoint of step {plan.Steps} in {RunFolder(method, seed)}");

    public string EvaluationJson(EvaluatedBackbone b, string task) => Path.Combine(Evaluations, $"{b.Key}-{task}.json");
    public string PredictionsFolder(EvaluatedBackbone b) => Path.Combine(Evaluations, $"{b.Key}-camvid-predictions");

    IEnumerable<string> Weights(EvaluatedBackbone b) => b.Random ? ["--weights", b.Weights, "--random", "--init-seed", $"{b.Seed}"] : ["--weights", b.Weights];

    /// <summary>The frozen-backbone evaluations of one backbone: the CamVid and Weizmann probes and the
    /// Tiny ImageNet k-NN (its forward in bf16 where bf16 is faster than fp32, else fp32: emulated bf16 made a
    /// quick-suite k-NN take 8 minutes on an AVX2-only CPU).</summary>
    public IEnumerable<HostJob> EvaluationJobs(EvaluatedBackbone b)
    {
        var pictures = b.Seed == plan.Seeds[0] ? (IEnumerable<string>)["--save-predictions", PredictionsFolder(b), "--save-count", "1000"] : [];
        yield return new HostJob($"{b.Key} CamVid test probe",
            ["eval-seg", .. Weights(b), "--data", camVid, "--train-split", "train", "--val-split", "test", .. plan.CamVidProbe.Arguments(), .. pictures, "--threads", "1", "--json", EvaluationJson(b, "camvid")],
            Path.Combine(Logs, $"{b.Key}-camvid.log"));
        yield return new HostJob($"{b.Key} Weizmann probe",
            ["eval-seg", .. Weights(b), "--data", horses, "--train-split", "train", "--val-split", "val", .. plan.HorseProbe.Arguments(), "--threads", "1", "--json", EvaluationJson(b, "horses")],
            Path.Combine(Logs, $"{b.Key}-horses.log"));
        yield return new HostJob($"{b.Key} Tiny ImageNet k-NN",
            ["eval-knn", .. Weights(b), "--bank", $"{tinyImageNet}#tiny-imagenet-200/train", "--queries", $"{tinyImageNet}#tiny-imagenet-200/val/images",
             "--query-annotations", $"{tinyImageNet}#tiny-imagenet-200/val/val_annotations.txt", "--size", $"{plan.KnnSize}",
             "--bank-stride", $"{plan.KnnBankStride}", "--query-stride", $"{plan.KnnQueryStride}", "--precision", "auto", "--threads", "1", "--json", EvaluationJson(b, "knn")],
            Path.Combine(Logs, $"{b.Key}-knn.log"));
    }

    /// <summary>A job is done when its JSON exists (written last) and so does any --save-predictions
    /// folder it was asked for, last changed no later than the JSON: a rerun whose first seed changed
    /// must make that seed's predictions, and again when it was stopped while making them (the
    /// folder then newer than an earlier run's JSON), and the JSON records this job's data and settings.</summary>
    public static bool NotDone(HostJob job) =>
        Argument(job, "--json") is not { } json || !File.Exists(json)
        || (Argument(job, "--save-predictions") is { } predictions
            && (!Directory.Exists(predictions) || Directory.GetLastWriteTimeUtc(predictions) > File.GetLastWriteTimeUtc(json)))
        || OtherInputs(job, json);

    /// <summary>The jobs that are not done, each one's earlier result and predictions set aside first
    /// (NAME.json.stale, FOLDER.stale): an evaluation replaces only results of its own kind, and the
    /// old ones are kept.</summary>
    public List<HostJob> ToRun(IEnumerable<HostJob> jobs)
    {
        var toRun = jobs.Where(NotDone).ToList();
        var earlier = toRun.SelectMany(job => new[] { Argument(job, "--json"), Argument(job, "--save-predictions") }).OfType<string>();
        foreach (var path in earlier.Where(p => File.Exists(p) || Directory.Exists(p)))
        {
            var aside = OutputPaths.SetAside(path, "stale"); // not in the log's text: the move must not depend on it
            log($"set aside {path} (of other settings, without its numbers, unreadable or unfinished) as {aside}");
        }
        return toRun;
    }

    /// <summary>Whether the result <paramref name="json"/> records other settings than the job asks
    /// for — other data (e.g. from a run with another --data-root) or another probe or k-NN setting:
    /// its numbers are not this job's. Each option of the job whose snake_case name is a key of the
    /// record (or of its "probe") must hold the same value: --data, --bank, --queries and --query-annotations
    /// as full paths (an archive's #member as written), numbers as numbers, --probe-seeds item by item; each
    /// true/false key must be true exactly when the job gives its flag. A key the record lacks is not
    /// compared, but for the data (--data, --bank), which it must record; an unreadable record, or one without
    /// the numbers the suite reads (<see cref="EvaluationRecord"/>), is not the job's. The weights are not compared: they lie in the
    /// suite's own output folder, which may have moved.</summary>
    static bool OtherInputs(HostJob job, string json)
    {
        JsonObject? record;
        try { record = StrictJson.Parse(File.ReadAllText(json)) as JsonObject; }
        catch (JsonException) { return true; }
        if (record is null || !EvaluationRecord.IsResultOf(job.Arguments[0], record)) return true; // no numbers to read: a hand-written record was counted as done once
        var given = Options(job);
        // a record without the job's data is no result of it (a hand-written {"top1": 0.01} was counted once)
        if (new[] { "data", "bank" }.FirstOrDefault(given.ContainsKey) is { } data && !record.ContainsKey(data)) return true;
        var settings = record.Concat(record["probe"] as JsonObject ?? new JsonObject()).Where(s => s.Key != "weights" && s.Value is not null);
        return settings.Any(s => s.Value!.GetValueKind() is JsonValueKind.True or JsonValueKind.False
            ? s.Value.GetValue<bool>() != given.ContainsKey(s.Key)
            : given.TryGetValue(s.Key, out var value) && value is not null && !Same(s.Key, s.Value!, value));
    }

    /// <summary>The job's options by snake_case name (--feature-size → feature_size), a flag's value null.</summary>
    static Dictionary<string, string?> Options(HostJob job)
    {
        var options = new Dictionary<string, string?>();
        for (int i = 0; i < job.Arguments.Count; i++)
            if (job.Arguments[i].StartsWith("--", StringComparison.Ordinal))
                options[job.Arguments[i][2..].Replace('-', '_')] = i + 1 < job.Arguments.Count && !job.Arguments[i + 1].StartsWith("--", StringComparison.Ordinal) ? job.Arguments[i + 1] : null;
        return options;
    }

    /// <summary>Whether a recorded value is the job's: paths in full, numbers and number lists as numbers.</summary>
    static bool Same(string key, JsonNode recorded, string asked)
    {
        static double? Number(JsonNode? node) => node?.GetValueKind() == JsonValueKind.Number ? node.GetValue<double>() : null;
        static double? Parsed(string text) => double.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out var v) ? v : null;
        return recorded.GetValueKind() switch
        {
            JsonValueKind.String when key is "data" or "bank" or "queries" or "query_annotations" => ImageSources.FullRoot(recorded.GetValue<string>()) == ImageSources.FullRoot(asked),
            JsonValueKind.String => recorded.GetValue<string>() == asked,
            JsonValueKind.Number => Number(recorded) == Parsed(asked),
            JsonValueKind.Array => recorded.AsArray().Select(Number).SequenceEqual(asked.Split(',').Select(Parsed)),
            _ => true,
        };
    }

    static string? Argument(HostJob job, string option) => job.Arguments.SkipWhile(a => a != option).Skip(1).FirstOrDefault();

    /// <summary>The curve's points: (line, step, weights): the random initialisation of seed 0 at
    /// step 0 (line "init", the start of both curves) and every kept checkpoint of the seed-0 runs.</summary>
    public IReadOnlyList<(string Line, int Step, string Weights)> CurvePoints()
    {
        int seed = plan.Seeds[0];
        var points = new List<(string, int, string)> { ("init", 0, FinalCheckpoint("CrOC", seed)) };
        foreach (var method in new[] { "CrOC", "DINO-only" })
            foreach (var checkpoint in Training.Checkpoints.List(RunFolder(method, seed)).Where(c => Training.Checkpoints.StepOf(c) % plan.CurveEvery == 0 || Training.Checkpoints.StepOf(c) == plan.Steps))
                points.Add((method, (int)Training.Checkpoints.StepOf(checkpoint), checkpoint));
        return points;
    }

    /// <summary>A curve point's result, named by the curve's seed too: a suite rerun with other --seeds
    /// into the same --output must not take another seed's points as done.</summary>
    public string CurveJson(string line, int step) => Path.Combine(Evaluations, $"curve-{Slug(line)}-seed{plan.Seeds[0]}-step{step:D6}.json");

    static string Slug(string line) => line switch { "CrOC" => "croc", "DINO-only" => "dino", _ => line };

    HostJob CurveJob((string Line, int Step, string Weights) point) => new(
        $"curve {point.Line} step {point.Step}",
        ["eval-seg", "--weights", point.Weights, .. point.Line == "init" ? (string[])["--random", "--init-seed", $"{plan.Seeds[0]}"] : [],
         "--data", camVid, "--train-split", "train", "--val-split", "val", .. plan.CurveProbe.Arguments(), "--threads", "1", "--json", CurveJson(point.Line, point.Step)],
        Path.Combine(Logs, $"curve-{Slug(point.Line)}-seed{plan.Seeds[0]}-{point.Step}.log"));

    public string PicturesFolder => Path.Combine(output, "pictures");

    void Pictures(IReadOnlyList<EvaluatedBackbone> backbones)
    {
        int seed = plan.Seeds[0];
        var croc = backbones.First(b => b.Method == "CrOC" && b.Seed == seed);
        var dino = backbones.First(b => b.Method == "DINO-only" && b.Seed == seed);
        Directory.CreateDirectory(PicturesFolder);
        var test = new VocSegmentation(camVid, "test");
        var photos = Path.Combine(output, "camvid-test-pictures.txt");
        int[] chosen = [test.Count / 8, test.Count / 2, 7 * test.Count / 8]; // three sequences of the test split
        File.WriteAllLines(photos, chosen.Select(i => Path.GetFullPath(test.ImagePath(i))));
        var clusters = Path.Combine(PicturesFolder, "clusters-camvid.png");
        foreach (var earlier in new[] { clusters, Path.ChangeExtension(clusters, null) + "-attention.png" }.Where(p => File.Exists(p) && !PictureMark.IsOn(p)))
        {
            var aside = OutputPaths.SetAside(earlier, "old");
            log($"set aside {earlier} (an earlier build's, without the mark clusters replaces) as {aside}");
        }
        HostJobs.Run([new HostJob("clusters of CrOC's teacher on CamVid test photos",
            ["clusters", "--weights", croc.Weights, "--data", photos, "--count", "3", "--output", clusters, "--threads", "2"],
            Path.Combine(Logs, "clusters.log"))], 1, log);
        PredictionPictures.Write(test, plan.CamVidProbe.Size, EvalSegCommand.ClassNames(camVid, null),
            [("CrOC", PredictionsFolder(croc)), ("DINO-only", PredictionsFolder(dino))], [.. chosen, test.Count - 1], Path.Combine(PicturesFolder, "predictions-camvid.png"));
        log($"pictures in {PicturesFolder}");
    }

    public static string Percent(double value) => (100 * value).ToString("F1", CultureInfo.InvariantCulture);
}
