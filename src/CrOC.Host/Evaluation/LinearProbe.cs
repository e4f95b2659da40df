using System.Diagnostics;
using CrOC.Data;
using CrOC.Math;
using TorchSharp;
using CrOC.Host.Runtime;

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
    bool Grayscale = false,
    PrecisionChoice Precision = PrecisionChoice.Fp32,
    bool Standardize = false)
{
    /// <summary>These settings when they work together (checked before any work: eval-seg found a
    /// lone --standardize only after loading the backbone once).</summary>
    public ProbeOptions Checked() => Standardize && !CacheFeatures
        ? throw new CommandLine.OptionException("--standardize needs --cache-features (the statistics come from the cached training features)")
        : this;
}

/// <summary>Per-class IoU and their mean; <see cref="Predictions"/>: the predicted class maps
/// (Size × Size, row-major) of the first validation images, when asked for.</summary>
public sealed record SegmentationResult(double MeanIoU, double[] PerClassIoU, long[,] Confusion, double Seconds, IReadOnlyList<byte[]> Predictions);

/// <summary>
/// Linear segmentation on frozen patch tokens (spec §12.1): features at Size px, a 1×1 convolution
/// whose logits are upsampled bilinearly to FeatureSize² (equal to upsampling the features first:
/// both maps are linear and the bilinear weights sum to 1), trained with SGD (momentum, weight
/// decay, ×0.1 at the milestone) on cross-entropy ignoring 255; evaluation at Size px, logits
/// upsampled to Size² (the masks resized to it by nearest neighbour), argmax, confusion matrix. Training crops are
/// RandomResizedCrop(scale 0.8–1) + flip, or, with CacheFeatures, the whole image once (no
/// augmentation: the train and validation features are computed once and shared by every probe
/// seed). With Grayscale, images are converted to gray: colour no longer names the class. With
/// Standardize (and CacheFeatures), each feature channel is shifted and scaled by the training
/// features' mean and standard deviation (as MAE's linear probe's affine-free BatchNorm): still a
/// linear probe of the frozen features, but one SGD converges on in far fewer epochs.
/// The backbone must be on <paramref name="device"/>; the probe and the batches are put there.
/// </summary>
public sealed class LinearProbe(Vit.VitConfig vit, Vit.VitParams backbone, int classes, ProbeOptions options, Action<string> log, torch.Device? device = null)
{
    readonly torch.Device where = device ?? torch.CPU;
    readonly Vit.ForwardOptions inference = Vit.ForwardOptions.InferenceAs(Precisions.ToLayers(options.Precision));
    readonly int grid = options.Size / vit.Patch;

    /// <summary>Frozen feature maps (B, D, g, g) float32 of normalised images (B, 3, S, S).</summary>
    torch.Tensor Features(torch.Tensor images)
    {
        using var noGrad = torch.no_grad();
        var tokens = Vit.forward(vit, backbone, inference, images).Tokens;
        return NonFiniteException.Checked(Segmentation.featureMaps(grid, grid, tokens).to_type(torch.float32), "the probe's images");
    }

    /// <summary>Logits (B, C, size, size) of feature maps (B, D, g, g).</summary>
    static torch.Tensor Logits(Segmentation.Probe probe, torch.Tensor features, int size) => Segmentation.upsample(size, Segmentation.probe(probe, features));

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

    /// <summary>Images (B, 3, S, S) and labels (B, labelSize, labelSize) of samples <paramref name="indices"/>.</summary>
    (torch.Tensor Images, torch.Tensor Labels) Batch(VocSegmentation set, IReadOnlyList<int> indices, int labelSize, Func<int, SampleRandom?> augment)
    {
        var samples = new (float[] Pixels, byte[] Mask)[indices.Count];
        Parallel.For(0, indices.Count, new ParallelOptions { MaxDegreeOfParallelism = 2 }, j =>
        {
            var (image, mask) = set.Load(indices[j]);
            CheckLabels(set.MaskPath(indices[j]), mask);
            samples[j] = Prepare(image, mask, augment(indices[j]));
        });
        int s = options.Size, pixels = 3 * s * s;
        var flat = new float[samples.Length * pixels];
        var labels = new long[samples.Length * labelSize * labelSize];
        for (int i = 0; i < samples.Length; i++)
        {
            samples[i].Pixels.CopyTo(flat, i * pixels);
            var small = labelSize == s ? samples[i].Mask : MaskResize.Resize(samples[i].Mask, s, s, labelSize, labelSize);
            for (int j = 0; j < small.Length; j++) labels[i * labelSize * labelSize + j] = small[j];
        }
        return (torch.tensor(flat, [samples.Length, 3, s, s]).to(where), torch.tensor(labels, [samples.Length, labelSize, labelSize]).to(where));
    }

    /// <summary>Reads the first <paramref name="count"/> images and masks of a set once, before the
    /// probe's work: a bad file (undecodable, a mask of another size, a label beyond the classes) is
    /// found first. Returns whether any pixel has a class label (not 255).</summary>
    bool Verify(VocSegmentation set, int count, string what)
    {
        log($"checking {count} {what} images and masks");
        int labelled = 0;
        Parallel.For(0, count, new ParallelOptions { MaxDegreeOfParallelism = 2 }, i =>
        {
            var (_, mask) = set.Load(i);
            CheckLabels(set.MaskPath(i), mask);
            if (Array.Exists(mask, label => label != Segmentation.Ignore)) Interlocked.Exchange(ref labelled, 1);
        });
        return labelled == 1;
    }

    /// <summary>Verifies the evaluation set (<see cref="Verify"/>): one whose masks hold no class label has
    /// nothing to score, found before the probe trains (it was refused only after the training once).</summary>
    void VerifyEvaluation(VocSegmentation val)
    {
        if (!Verify(val, val.Count, "evaluation")) throw NothingToScore(val);
    }

    static DatasetException NothingToScore(VocSegmentation val) =>
        new($"no pixel of the {val.Count} validation image(s) has a class label (all are 255, ignored): there is nothing to score");

    /// <summary>Every label is a class below C or 255 (ignored): the probe has no logit for any other.</summary>
    void CheckLabels(string path, byte[] mask)
    {
        foreach (var label in mask)
            if (label >= classes && label != Segmentation.Ignore)
                throw new DatasetException($"{path}: label {label} is neither a class (0..{classes - 1}) nor 255 (ignored); set --classes (or labels.txt) to the dataset's classes");
    }

    /// <summary>Features and labels of <paramref name="count"/> images of a set, computed once.</summary>
    (torch.Tensor Features, torch.Tensor Labels) Cache(VocSegmentation set, int count, int labelSize, string what)
    {
        var features = new List<torch.Tensor>();
        var labels = new List<torch.Tensor>();
        var progress = new ProgressReport($"frozen features of {what}", count, log);
        for (int start = 0; start < count; start += options.Batch)
        {
            using var scope = torch.NewDisposeScope();
            var (images, l) = Batch(set, Enumerable.Range(start, System.Math.Min(options.Batch, count - start)).ToList(), labelSize, _ => null);
            features.Add(Features(images).MoveToOuterDisposeScope());
            labels.Add(l.MoveToOuterDisposeScope());
            progress.Advance(images.shape[0]);
        }
        var result = (torch.cat(features, 0), torch.cat(labels, 0));
        features.Concat(labels).ToList().ForEach(t => t.Dispose());
        return result;
    }

    /// <summary>One probe per seed; with CacheFeatures all share one feature pass.</summary>
    public IReadOnlyList<SegmentationResult> Run(VocSegmentation train, VocSegmentation val, IReadOnlyList<int> seeds, int keepPredictions = 0)
    {
        options.Checked();
        var watch = Stopwatch.StartNew();
        int count = options.MaxTrain > 0 ? System.Math.Min(options.MaxTrain, train.Count) : train.Count;
        if (where.type == DeviceType.CPU)
        {
            // the logits' bound is held several times over (half of memory); the cache's size is exact (it may take more)
            var (logits, cached) = ProbeBytes(count, val.Count);
            MemoryFit.CheckBytes(logits, ProbeSettings(cache: false), "use a smaller --feature-size, --size or --batch");
            MemoryFit.CheckBytes(logits + cached, ProbeSettings(cache: true), "use a smaller --size or --feature-size, or leave out --cache-features", share: 0.8);
        }
        (torch.Tensor Features, torch.Tensor Labels)? trainCache = null, valCache = null;
        if (options.CacheFeatures)
        {
            // a bad training file stops the feature pass where it lies; a bad evaluation file would
            // be reached only after the whole training pass
            VerifyEvaluation(val);
            trainCache = Cache(train, count, options.FeatureSize, $"{count} training images");
            valCache = Cache(val, val.Count, options.Size, $"{val.Count} evaluation images");
            if (options.Standardize) (trainCache, valCache) = Standardized(trainCache.Value, valCache.Value);
        }
        else
        {
            // the evaluation would read the validation set only after the training
            Verify(train, count, "training");
            VerifyEvaluation(val);
        }
        double shared = watch.Elapsed.TotalSeconds;
        var results = new List<SegmentationResult>();
        foreach (var seed in seeds)
        {
            using var seedScope = torch.NewDisposeScope(); // the probe, its initialisation's temporaries and the confusion (with SGD's buffers, 1–2 MB a seed stayed once)
            var probeWatch = Stopwatch.StartNew();
            var probe = Train(train, count, trainCache, seed);
            results.Add(Evaluate(probe, val, valCache, seed, keepPredictions, shared + probeWatch.Elapsed.TotalSeconds));
        }
        trainCache?.Features.Dispose(); trainCache?.Labels.Dispose();
        valCache?.Features.Dispose(); valCache?.Labels.Dispose();
        return results;
    }

    /// <summary>The probe's memory beside the backbone's (which <see cref="FrozenBackboneOptions.CheckInput"/>
    /// checks): a lower bound on the logits — a training batch's at FeatureSize² in float32 with the
    /// upsampling's, the log-softmax's and their gradients (4 copies) and int64 labels, or an
    /// evaluation image's at Size² with its labels and argmax — and, with CacheFeatures, the exact size
    /// of the cached feature maps (float32) and labels (int64) of every image.</summary>
    (double Logits, double Cached) ProbeBytes(int trainCount, int valCount)
    {
        double fs2 = (double)options.FeatureSize * options.FeatureSize, s2 = (double)options.Size * options.Size, grid2 = (double)grid * grid;
        double batch = System.Math.Min(options.Batch, trainCount) * fs2 * (16.0 * classes + 8), image = s2 * (4.0 * classes + 16);
        double cached = options.CacheFeatures ? (trainCount + (double)valCount) * grid2 * vit.Dim * 4 + (trainCount * fs2 + valCount * s2) * 8 : 0;
        return (System.Math.Max(batch, image), cached);
    }

    string ProbeSettings(bool cache) =>
        $"the probe's logits at --feature-size {options.FeatureSize} and --size {options.Size} for {classes} classes with --batch {options.Batch}{(cache ? " and the cached features and labels" : "")}";

    /// <summary>Both caches with every channel standardised by the training features' statistics.</summary>
    public static ((torch.Tensor, torch.Tensor), (torch.Tensor, torch.Tensor)) Standardized((torch.Tensor Features, torch.Tensor Labels) train, (torch.Tensor Features, torch.Tensor Labels) val)
    {
        using var scope = torch.NewDisposeScope();
        var dims = new long[] { 0, 2, 3 };
        var mean = train.Features.mean(dims, keepdim: true);
        using var tiny = 1e-6.ToScalar(); // held until the call returns: see CrOC.Math.Tensors.withScalar
        long perChannel = train.Features.numel() / train.Features.shape[1];
        // one feature per channel has no spread (the unbiased std of one value is NaN): centred only
        var std = perChannel > 1 ? train.Features.std(dims, keepdim: true).clamp_min(tiny) : torch.ones_like(mean);
        var standardTrain = ((train.Features - mean) / std).MoveToOuterDisposeScope();
        var standardVal = ((val.Features - mean) / std).MoveToOuterDisposeScope();
        train.Features.Dispose();
        val.Features.Dispose();
        return ((standardTrain, train.Labels), (standardVal, val.Labels));
    }

    Segmentation.Probe Train(VocSegmentation train, int count, (torch.Tensor Features, torch.Tensor Labels)? cache, int seed)
    {
        int fs = options.FeatureSize;
        using var generator = new torch.Generator((ulong)seed, torch.CPU);
        var probe = new Segmentation.Probe(
            Layers.Init.truncNormal(generator, 0.02, [classes, vit.Dim, 1, 1]).to(where).detach().requires_grad_(true),
            torch.zeros(classes, device: where).requires_grad_(true));
        using var sgd = new Optim.Sgd(options.Momentum, options.WeightDecay); // its momentum buffers go with it
        int batches = (count + options.Batch - 1) / options.Batch;
        var progress = new ProgressReport($"probe (seed {seed}) training batches", (long)options.Epochs * batches, log);
        long usedInAll = 0;
        for (int epoch = 0; epoch < options.Epochs; epoch++)
        {
            double lr = epoch >= options.Milestone ? options.Lr * 0.1 : options.Lr;
            var order = new SampleRandom(seed, epoch, -7).Permutation(count);
            double total = 0;
            int used = 0; // batches with a labelled pixel: one whose pixels are all void (255) has no loss (0/0 was "diverged" once)
            for (int start = 0; start < count; start += options.Batch)
            {
                using var scope = torch.NewDisposeScope();
                var picked = order.Skip(start).Take(options.Batch).ToArray();
                torch.Tensor features, labels;
                if (cache is var (cachedFeatures, cachedLabels))
                {
                    var rows = torch.tensor(picked.Select(i => (long)i).ToArray()).to(where);
                    (features, labels) = (cachedFeatures.index_select(0, rows), cachedLabels.index_select(0, rows));
                }
                else
                {
                    var (images, l) = Batch(train, picked, fs, i => new SampleRandom(seed, epoch, i, 5));
                    (features, labels) = (Features(images), l);
                }
                progress.Advance();
                if (!labels.ne(Segmentation.Ignore).any().item<bool>()) continue;
                var loss = Segmentation.loss(Logits(probe, features, fs), labels);
                probe.Weight.grad?.zero_();
                probe.Bias.grad?.zero_();
                loss.backward();
                sgd.Step([probe.Weight, probe.Bias], lr);
                float value = loss.item<float>();
                if (!float.IsFinite(value))
                    throw new NonFiniteException($"the probe's loss is {value} in epoch {epoch + 1} (probe seed {seed}): it diverged at lr {lr:G3}; use a smaller --lr");
                total += value;
                used++;
            }
            usedInAll += used;
            // cached features are the same each epoch; random crops may find labels in a later one
            if ((cache is not null || epoch == options.Epochs - 1) && usedInAll == 0)
                throw new DatasetException($"no pixel of the {count} training image(s) has a class label{(cache is null ? " in any epoch's crops" : "")} at --feature-size {fs} (all are 255, ignored): there is nothing to train on");
            if (epoch == options.Epochs - 1 || (epoch + 1) % System.Math.Max(1, options.Epochs / 5) == 0)
                log($"probe (seed {seed}) epoch {epoch + 1}/{options.Epochs}: loss {total / System.Math.Max(1, used):F4}, lr {lr:G3}{(used < batches ? $" ({batches - used} of {batches} batches without a labelled pixel skipped)" : "")}");
        }
        // the last update follows the last finite loss: a probe that overflowed there scored every pixel as one class (--lr 1e39 gave "mIoU 10.5")
        if (!Segmentation.isFinite(probe))
            throw new NonFiniteException($"the probe's weights are NaN or infinite after its last update (probe seed {seed}): it diverged at --lr {options.Lr:G3}; use a smaller --lr");
        return probe;
    }

    SegmentationResult Evaluate(Segmentation.Probe probe, VocSegmentation val, (torch.Tensor Features, torch.Tensor Labels)? cache, int seed, int keepPredictions, double seconds)
    {
        var watch = Stopwatch.StartNew();
        // without cached features each image runs the backbone: long work at 448 px, so it reports
        var progress = cache is null ? new ProgressReport($"probe (seed {seed}) evaluation images", val.Count, log) : null;
        var confusion = torch.zeros(classes, classes, dtype: torch.int64, device: where);
        var predictions = new List<byte[]>();
        for (int i = 0; i < val.Count; i++)
        {
            using var scope = torch.NewDisposeScope();
            using var noGrad = torch.no_grad();
            var (features, labels) = cache is var (f, l) ? (f.narrow(0, i, 1), l.narrow(0, i, 1)) : FeaturesOf(val, i);
            var predicted = Logits(probe, features, options.Size).argmax(1);
            confusion.add_(Segmentation.confusion(classes, predicted, labels));
            if (i < keepPredictions) predictions.Add(predicted.to_type(torch.uint8).cpu().data<byte>().ToArray());
            progress?.Advance();
        }
        var perClass = Segmentation.iou(confusion);
        var matrix = new long[classes, classes];
        var values = confusion.cpu().data<long>().ToArray();
        if (values.All(v => v == 0)) throw NothingToScore(val); // labels lost to the resize to --size
        for (int r = 0; r < classes; r++) for (int c = 0; c < classes; c++) matrix[r, c] = values[r * classes + c];
        return new SegmentationResult(Segmentation.meanIoU(perClass), perClass, matrix, seconds + watch.Elapsed.TotalSeconds, predictions);
    }

    (torch.Tensor Features, torch.Tensor Labels) FeaturesOf(VocSegmentation set, int i)
    {
        var (images, labels) = Batch(set, [i], options.Size, _ => null);
        return (Features(images), labels);
    }
}
