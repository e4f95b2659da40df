using System.Diagnostics;
using CrOC.Data;
using CrOC.Math;
using TorchSharp;

namespace CrOC.Host.Evaluation;

/// <summary>The linear segmentation protocol's settings (spec §12.1 defaults).</summary>
public sealed record ProbeOptions(
    int Size = 448,
    int FeatureSize = 100,
    int Epochs = 25,
    double Lr = 0.01,
    int Batch = 60,
    int Milestone = 20,
    double Momentum = 0.9,
    double WeightDecay = 1e-4,
    bool CacheFeatures = false,
    int MaxTrain = 0,
    int Seed = 0,
    bool Grayscale = false,
    string Precision = "fp32");

/// <summary>Per-class IoU and their mean.</summary>
public sealed record SegmentationResult(double MeanIoU, double[] PerClassIoU, long[,] Confusion, double Seconds);

/// <summary>
/// Linear segmentation on frozen patch tokens (spec §12.1): features at Size px, upsampled
/// bilinearly to FeatureSize², a 1×1 convolution trained with SGD (momentum, weight decay, ×0.1 at
/// the milestone) on cross-entropy ignoring 255; evaluation at Size px, logits upsampled to the
/// full resolution, argmax, confusion matrix. Training crops are RandomResizedCrop(scale 0.8–1) +
/// flip, or, with CacheFeatures, the whole image once (no augmentation, features computed once).
/// With Grayscale, train and validation images are converted to gray: colour no longer names the
/// class, so the probe must read shape and texture from the features.
/// </summary>
/// The backbone must be on <paramref name="device"/>; the probe and the batches are put there.
public sealed class LinearProbe(Vit.VitConfig vit, Vit.VitParams backbone, int classes, ProbeOptions options, Action<string> log, torch.Device? device = null)
{
    readonly torch.Device where = device ?? torch.CPU;
    readonly Vit.ForwardOptions inference = Vit.ForwardOptions.InferenceAs(Training.CrocSetup.PrecisionOf(options.Precision));
    readonly int grid = options.Size / vit.Patch;

    /// <summary>Frozen feature maps (B, D, g, g) of normalised images (B, 3, S, S).</summary>
    torch.Tensor Features(torch.Tensor images)
    {
        using var noGrad = torch.no_grad();
        var tokens = Vit.forward(vit, backbone, inference, images).Tokens;
        return Segmentation.featureMaps(grid, grid, tokens);
    }

    /// <summary>A sample resized (or randomly cropped and flipped) to Size px: normalised pixels and labels.</summary>
    (float[] Pixels, byte[] Mask) Prepare(RgbImage image, byte[] mask, SampleRandom? augment)
    {
        var box = augment is null
            ? new CropBox(0, 0, image.Height, image.Width, false)
            : RandomResizedCrop.Sample(augment, image.Width, image.Height, (0.8, 1.0), (3.0 / 4.0, 4.0 / 3.0)) with { Flipped = augment.Chance(0.5) };
        var view = Resampling.ResizeBox(image, box.Left, box.Top, box.Width, box.Height, options.Size, options.Size);
        var labels = MaskResize.ResizeBox(mask, image.Width, image.Height, box.Left, box.Top, box.Width, box.Height, options.Size, options.Size);
        if (box.Flipped) { ColorAugment.FlipHorizontal(view); labels = MaskResize.Flip(labels, options.Size); }
        if (options.Grayscale) ColorAugment.Grayscale(view);
        ColorAugment.Normalize(view);
        return (view.Pixels, labels);
    }

    (torch.Tensor Images, torch.Tensor Labels) Stack(IReadOnlyList<(float[] Pixels, byte[] Mask)> samples, int labelSize)
    {
        int s = options.Size, pixels = 3 * s * s;
        var flat = new float[samples.Count * pixels];
        var labels = new long[samples.Count * labelSize * labelSize];
        for (int i = 0; i < samples.Count; i++)
        {
            samples[i].Pixels.CopyTo(flat, i * pixels);
            var small = MaskResize.Resize(samples[i].Mask, s, s, labelSize, labelSize);
            for (int j = 0; j < small.Length; j++) labels[i * labelSize * labelSize + j] = small[j];
        }
        return (torch.tensor(flat, [samples.Count, 3, s, s]).to(where), torch.tensor(labels, [samples.Count, labelSize, labelSize]).to(where));
    }

    public SegmentationResult Run(VocSegmentation train, VocSegmentation val)
    {
        var watch = Stopwatch.StartNew();
        int d = vit.Dim, fs = options.FeatureSize;
        var generator = new torch.Generator((ulong)options.Seed, torch.CPU);
        var probe = new Segmentation.Probe(
            Layers.Init.truncNormal(generator, 0.02, [classes, d, 1, 1]).to(where).detach().requires_grad_(true),
            torch.zeros(classes, device: where).requires_grad_(true));
        var sgd = new Optim.Sgd(options.Momentum, options.WeightDecay);
        int count = options.MaxTrain > 0 ? System.Math.Min(options.MaxTrain, train.Count) : train.Count;

        // With CacheFeatures the frozen features and labels of every training image are computed once.
        List<(torch.Tensor Features, torch.Tensor Labels)>? cache = null;
        if (options.CacheFeatures)
        {
            cache = [];
            for (int start = 0; start < count; start += options.Batch)
            {
                using var scope = torch.NewDisposeScope();
                var samples = Enumerable.Range(start, System.Math.Min(options.Batch, count - start)).Select(i => { var (img, m) = train.Load(i); return Prepare(img, m, null); }).ToList();
                var (images, labels) = Stack(samples, fs);
                cache.Add((Features(images).DetachFromDisposeScope(), labels.DetachFromDisposeScope()));
            }
            log($"cached frozen features of {count} training images");
        }

        for (int epoch = 0; epoch < options.Epochs; epoch++)
        {
            double lr = epoch >= options.Milestone ? options.Lr * 0.1 : options.Lr;
            var order = new SampleRandom(options.Seed, epoch, -7).Permutation(count);
            double total = 0;
            int batches = 0;
            for (int start = 0; start < count; start += options.Batch)
            {
                using var scope = torch.NewDisposeScope();
                var picked = order.Skip(start).Take(options.Batch).ToArray();
                torch.Tensor features, labels;
                if (cache is not null)
                {
                    // Rows of the cached chunks.
                    var rows = picked.Select(i => (Chunk: i / options.Batch, Row: i % options.Batch)).ToList();
                    features = torch.stack(rows.Select(r => cache[r.Chunk].Features[r.Row]).ToArray());
                    labels = torch.stack(rows.Select(r => cache[r.Chunk].Labels[r.Row]).ToArray());
                }
                else
                {
                    var samples = picked.Select(i => { var (img, m) = train.Load(i); return Prepare(img, m, new SampleRandom(options.Seed, epoch, i, 5)); }).ToList();
                    var (images, l) = Stack(samples, fs);
                    features = Features(images);
                    labels = l;
                }
                var logits = Segmentation.probe(probe, Segmentation.upsample(fs, features));
                var loss = Segmentation.loss(logits, labels);
                probe.Weight.grad?.zero_();
                probe.Bias.grad?.zero_();
                loss.backward();
                sgd.Step([probe.Weight, probe.Bias], lr);
                total += loss.item<float>();
                batches++;
            }
            log($"probe epoch {epoch + 1}/{options.Epochs}: loss {total / System.Math.Max(1, batches):F4}, lr {lr:G3}");
        }

        var confusion = torch.zeros(classes, classes, dtype: torch.int64, device: where);
        for (int i = 0; i < val.Count; i++)
        {
            using var scope = torch.NewDisposeScope();
            using var noGrad = torch.no_grad();
            var (image, mask) = val.Load(i);
            var (images, labels) = Stack([Prepare(image, mask, null)], options.Size);
            // The probe is linear, so upsampling the logits equals upsampling the features first.
            var logits = Segmentation.upsample(options.Size, Segmentation.probe(probe, Features(images)));
            confusion.add_(Segmentation.confusion(classes, logits.argmax(1), labels));
        }
        var perClass = Segmentation.iou(confusion);
        var matrix = new long[classes, classes];
        var values = confusion.cpu().data<long>().ToArray();
        for (int r = 0; r < classes; r++) for (int c = 0; c < classes; c++) matrix[r, c] = values[r * classes + c];
        return new SegmentationResult(Segmentation.meanIoU(perClass), perClass, matrix, watch.Elapsed.TotalSeconds);
    }
}
