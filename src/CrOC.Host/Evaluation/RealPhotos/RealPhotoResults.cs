using System.Globalization;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.Json.Serialization;
using CrOC.Data;
using CrOC.Host.Weights;

namespace CrOC.Host.Evaluation.RealPhotos;

/// <summary>One backbone's numbers: CamVid test mIoU (mean over probe seeds) and per class,
/// Weizmann horse IoU and mIoU, Tiny ImageNet k-NN top-1, pre-training seconds (0 for random init).</summary>
public sealed record BackboneResult(string Method, int Seed, double CamVid, double[] CamVidProbeSeeds, Dictionary<string, double> CamVidClasses,
    double Horse, double HorseMeanIoU, double Knn, double PretrainSeconds);

/// <summary>
/// Every number of a suite run, gathered from its JSON files: per backbone, per method (mean ± std
/// over seeds, values per seed), the curve, the time per phase. <see cref="Write"/> stores
/// results.json and results.md (the README's table).
/// </summary>
public sealed record RealPhotoResults(string Plan, IReadOnlyList<BackboneResult> Backbones, IReadOnlyList<(string Line, int Step, double MeanIoU)> Curve, IReadOnlyDictionary<string, double> PhaseSeconds)
{
    public static readonly string[] Methods = ["random init", "DINO-only", "CrOC"];

    public static RealPhotoResults Collect(RealPhotoPlan plan, IReadOnlyList<EvaluatedBackbone> backbones, IReadOnlyList<(string Line, int Step, string Weights)> curve, RealPhotoSuite suite, IReadOnlyDictionary<string, double> phases)
    {
        // each file passed the done-check, which reads it the same way: a failure here is a file changed since
        T Read<T>(string path, Func<JsonNode?, T> numbers)
        {
            try { return numbers(StrictJson.Parse(File.ReadAllText(path))); }
            catch (Exception e) when (e is JsonException or FormatException)
            {
                throw new DatasetException($"'{path}' is no result of its evaluation ({e.Message}); delete it and rerun the suite to redo it");
            }
        }
        var rows = backbones.Select(b =>
        {
            var camVid = Read(suite.EvaluationJson(b, "camvid"), EvaluationRecord.Segmentation);
            var horsesJson = suite.EvaluationJson(b, "horses");
            var horses = Read(horsesJson, EvaluationRecord.Segmentation);
            // a class absent for a probe seed (NaN) counts 0, as in the mIoU and eval-seg's table
            double ClassIoU(IReadOnlyList<ProbeRunRecord> runs, string name) => Statistics.MeanAbsentAsZero(runs.Select(r => r.ClassIoU[name]));
            var perClass = camVid.Runs[0].ClassIoU.Keys.ToDictionary(n => n, n => ClassIoU(camVid.Runs, n));
            if (!horses.Runs[0].ClassIoU.ContainsKey("horse"))
                throw new DatasetException($"'{horsesJson}' names no class 'horse' (Weizmann's labels.txt names background and horse); delete it and rerun the suite to redo it");
            double seconds = b.Random ? 0 : Training.MetricsLog.TrainingSeconds(suite.RunFolder(b.Method, b.Seed));
            return new BackboneResult(b.Method, b.Seed, camVid.MeanIoU, camVid.Runs.Select(r => r.MeanIoU).ToArray(), perClass,
                ClassIoU(horses.Runs, "horse"), horses.MeanIoU, Read(suite.EvaluationJson(b, "knn"), EvaluationRecord.Knn), seconds);
        }).ToList();
        var points = curve.Select(p => (p.Line, p.Step, Read(suite.CurveJson(p.Line, p.Step), EvaluationRecord.Segmentation).MeanIoU)).ToList();
        return new RealPhotoResults(plan.Name, rows, points, phases.ToDictionary());
    }

    /// <summary>The README table: rows random init / DINO-only / CrOC.</summary>
    public string Table()
    {
        var text = new StringBuilder();
        var seeds = Backbones.Select(b => b.Seed).Distinct().ToList();
        text.AppendLine($"| method | CamVid test mIoU % | Weizmann horse IoU % | Weizmann mIoU % | Tiny ImageNet k-NN top-1 % | pre-training (per run) |");
        text.AppendLine("|---|---|---|---|---|---|");
        foreach (var method in Methods)
        {
            var rows = Backbones.Where(b => b.Method == method).ToList();
            var time = method == "random init" ? "–" : $"{rows.Average(r => r.PretrainSeconds) / 60:F1} min";
            text.AppendLine($"| {method} | {Statistics.PercentCell(rows.Select(r => r.CamVid))} | {Statistics.PercentCell(rows.Select(r => r.Horse))} | {Statistics.PercentCell(rows.Select(r => r.HorseMeanIoU))} | {Statistics.PercentCell(rows.Select(r => r.Knn))} | {time} |");
        }
        text.AppendLine();
        var spread = seeds.Count == 1 // one seed's cells are its values: no std, no brackets
            ? $"Seed {seeds[0]} alone"
            : $"Mean ± std over seeds {string.Join(", ", seeds)} (values per seed in brackets)";
        text.AppendLine($"{spread}; each CamVid value is itself the mean of the probe seeds.");
        return text.ToString();
    }

    /// <summary>Per class: the mean over seeds in percent, an absent class counting 0 (as in the mIoU).</summary>
    public string ClassTable()
    {
        static string Cell(IEnumerable<double> iou) => Statistics.MeanAbsentAsZero(iou) is var mean && double.IsNaN(mean) ? "n/a (absent)" : RealPhotoSuite.Percent(mean);
        var names = Backbones[0].CamVidClasses.Keys.ToList();
        var text = new StringBuilder($"| method | {string.Join(" | ", names)} |\n|---|{string.Concat(names.Select(_ => "---|"))}\n");
        foreach (var method in Methods)
        {
            var rows = Backbones.Where(b => b.Method == method).ToList();
            text.AppendLine($"| {method} | {string.Join(" | ", names.Select(n => Cell(rows.Select(r => r.CamVidClasses[n]))))} |");
        }
        return text.ToString();
    }

    /// <summary>The curve per line (CrOC, DINO-only), both starting at the random initialisation (step 0), in percent.</summary>
    public IReadOnlyList<(string Label, IReadOnlyList<(double X, double Y)> Points)> CurveSeries() =>
        new[] { "CrOC", "DINO-only" }.Select(line => (line, (IReadOnlyList<(double, double)>)Curve.Where(p => p.Line == line || p.Line == "init")
            .OrderBy(p => p.Step).Select(p => ((double)p.Step, 100 * p.MeanIoU)).ToList())).ToList();

    public string CurveTable()
    {
        var steps = Curve.Select(p => p.Step).Distinct().Order().ToList();
        double? At(string line, int step) => Curve.Where(p => (p.Line == line || p.Line == "init") && p.Step == step).Select(p => (double?)p.MeanIoU).FirstOrDefault();
        var text = new StringBuilder($"| CamVid val mIoU % at step | {string.Join(" | ", steps)} |\n|---|{string.Concat(steps.Select(_ => "---|"))}\n");
        foreach (var line in new[] { "DINO-only", "CrOC" })
            text.AppendLine($"| {line} | {string.Join(" | ", steps.Select(s => At(line, s) is double v ? RealPhotoSuite.Percent(v) : "–"))} |");
        return text.ToString();
    }

    /// <summary>NaN as JSON's null, as eval-seg writes an absent class: only a class absent in every probe
    /// seed is NaN here (JSON has no NaN: the serializer refused it, ending the suite at its last step).
    /// Infinity still throws.</summary>
    sealed class NaNAsNull : JsonConverter<double>
    {
        // not used (results.json is written, never read back); the converter must have both directions
        public override double Read(ref Utf8JsonReader reader, Type type, JsonSerializerOptions options) =>
            reader.TokenType == JsonTokenType.Null ? double.NaN : reader.GetDouble();

        public override void Write(Utf8JsonWriter writer, double value, JsonSerializerOptions options)
        {
            if (double.IsNaN(value)) writer.WriteNullValue();
            else writer.WriteNumberValue(value);
        }
    }

    public void Write(string output)
    {
        var json = JsonSerializer.Serialize(new
        {
            plan = Plan,
            backbones = Backbones,
            curve = Curve.Select(p => new { line = p.Line, step = p.Step, miou = p.MeanIoU }),
            phase_seconds = PhaseSeconds,
        }, new JsonSerializerOptions { WriteIndented = true, IncludeFields = true, Converters = { new NaNAsNull() } });
        AtomicFile.WriteAllText(Path.Combine(output, "results.json"), json + "\n");
        var phases = string.Join(", ", PhaseSeconds.Select(p => $"{p.Key} {p.Value / 60:F1} min"));
        AtomicFile.WriteAllText(Path.Combine(output, "results.md"),
            $"{Table()}\n{ClassTable()}\n{CurveTable()}\nTime per phase ({Plan} suite): {phases}; total {PhaseSeconds.Values.Sum() / 60:F1} min.\n");
    }
}
