using System.Diagnostics;
using CrOC.Data;
using CrOC.Math;
using TorchSharp;
using CrOC.Host.Runtime;

namespace CrOC.Host.Evaluation;

/// <summary>The k-NN protocol's settings (DINO: k = 20, T = 0.07).</summary>
public sealed record KnnOptions(int K = 20, double Temperature = 0.07, int Size = 64, int Batch = 128, PrecisionChoice Precision = PrecisionChoice.Fp32);

/// <summary>Top-1 accuracy and what it was measured on.</summary>
public sealed record KnnResult(double Top1, int Bank, int Queries, int Skipped, double Seconds);

/// <summary>
/// Weighted k-NN classification with a frozen backbone (DINO's protocol): every image resized to
/// Size² (whole image, bicubic), the final-LN CLS output as its feature, queries classified by the
/// k most cosine-similar bank images voting exp(sim / T) (<see cref="Knn.scores"/>). Undecodable
/// images are skipped and counted.
/// </summary>
public sealed class KnnEvaluation(Vit.VitConfig vit, Vit.VitParams backbone, KnnOptions options, Action<string> log, torch.Device? device = null)
{
    readonly torch.Device where = device ?? torch.CPU;
    readonly Vit.ForwardOptions inference = Vit.ForwardOptions.InferenceAs(Precisions.ToLayers(options.Precision));
    readonly ImageDecoder decoder = new();
    int skipped;

    public KnnResult Run(LabelledImages bank, LabelledImages queries)
    {
        var watch = Stopwatch.StartNew();
        skipped = 0;
        var (bankFeatures, bankLabels, decodedBank) = Features(bank, "k-NN bank features");
        var (queryFeatures, queryLabels, decodedQueries) = Features(queries, "k-NN query features");
        decodedBank.Covers(decodedQueries, label => $"none of its {Counted.Of(bank.CountOf(label), "bank image")} decodes"); // decoded queries of a class the bank lost are refused, not scored
        if (bank.Labels.Distinct().Count() > 1 && decodedBank.Labels.Distinct().ToList() is [var only]) // the one-class warning before the run saw every image
            log($"warning: with the undecodable images skipped, the bank has one class ('{bank.Classes[(int)only]}'): every query is given it, so top-1 is only the share of queries of that class");
        if (options.K > bankLabels.shape[0]) log($"note: k = {options.K} exceeds the bank's {bankLabels.shape[0]} images: every bank image votes (k = {bankLabels.shape[0]})");
        using var scores = Knn.scores(options.K, options.Temperature, bank.Classes.Count, 1000, bankFeatures, bankLabels, queryFeatures);
        double top1 = Knn.top1(scores, queryLabels);
        return new KnnResult(top1, (int)bankLabels.shape[0], (int)queryLabels.shape[0], skipped, watch.Elapsed.TotalSeconds);
    }

    /// <summary>L2-normalisable CLS features (N, D) float32 and labels (N) of the decodable images, and those images.</summary>
    (torch.Tensor Features, torch.Tensor Labels, LabelledImages Decoded) Features(LabelledImages set, string what)
    {
        int size = options.Size, pixels = 3 * size * size;
        // one (N, D) block filled batch by batch: Cls is a view of the (B, 1 + N, D) tokens, and kept
        // per batch it held their whole storage (the bank's peak was ~65× its size at 64 px once);
        // nor is the bank concatenated at the end, which held it twice
        torch.Tensor? all = null;
        var decoded = new List<int>(); // indices of the images that decoded
        var progress = new ProgressReport(what, set.Images.Count, log);
        for (int start = 0; start < set.Images.Count; start += options.Batch)
        {
            int count = System.Math.Min(options.Batch, set.Images.Count - start);
            var views = new float[count][];
            Parallel.For(0, count, new ParallelOptions { MaxDegreeOfParallelism = 2 }, i =>
            {
                try
                {
                    var image = decoder.Decode(set.Images[start + i]);
                    var view = Resampling.ResizeBox(image, 0, 0, image.Width, image.Height, size, size);
                    ColorAugment.Normalize(view);
                    views[i] = view.Pixels;
                }
                catch (DecodeException e)
                {
                    Interlocked.Increment(ref skipped);
                    log($"skipped {e.Said}");
                }
            });
            var kept = Enumerable.Range(0, count).Where(i => views[i] is not null).ToList();
            if (kept.Count > 0)
            {
                using var scope = torch.NewDisposeScope();
                using var noGrad = torch.no_grad();
                var flat = new float[kept.Count * pixels];
                for (int j = 0; j < kept.Count; j++) views[kept[j]].CopyTo(flat, j * pixels);
                var cls = NonFiniteException.Checked(Vit.forward(vit, backbone, inference, torch.tensor(flat, [kept.Count, 3, size, size]).to(where)).Cls, what);
                all ??= torch.empty([set.Images.Count, cls.shape[1]], torch.float32, where).MoveToOuterDisposeScope();
                all.narrow(0, decoded.Count, kept.Count).copy_(cls);
                decoded.AddRange(kept.Select(i => start + i));
            }
            progress.Advance(count);
        }
        if (all is null) throw new DatasetException($"{what}: no decodable image");
        var images = set.Keeping(decoded.ToHashSet().Contains);
        return (all.narrow(0, 0, decoded.Count), torch.tensor(images.Labels.Select(l => (long)l).ToArray()).to(where), images); // skipped images leave rows unused
    }
}
