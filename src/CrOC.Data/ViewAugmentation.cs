namespace CrOC.Data;

/// <summary>How one view is made (spec §9): a RandomResizedCrop to Size² pixels, a flip, colour
/// jitter, grayscale, blur and solarisation with their probabilities, then normalisation.</summary>
public sealed record ViewSpec(
    int Size,
    int Patch,
    (double Low, double High) Scale,
    double BlurProbability,
    double SolarizeProbability,
    (double Low, double High)? Ratio = null,
    double FlipProbability = 0.5,
    double JitterProbability = 0.8,
    double GrayscaleProbability = 0.2,
    (double Low, double High)? BlurSigma = null,
    double Brightness = 0.4,
    double Contrast = 0.4,
    double Saturation = 0.2,
    double Hue = 0.1)
{
    public (double Low, double High) AspectRatio => Ratio ?? (3.0 / 4.0, 4.0 / 3.0);
    public (double Low, double High) Sigma => BlurSigma ?? (0.1, 2.0);
    public int Grid => Size / Patch;
}

/// <summary>One augmented view: normalised planar pixels (3·S·S), the (x, y) original-image
/// centre of each of its patches (N·2, token order) and the crop it came from.</summary>
public sealed record AugmentedView(float[] Pixels, float[] Positions, CropBox Box);

public static class ViewAugmentation
{
    public static AugmentedView Apply(ViewSpec spec, RgbImage image, SampleRandom random)
    {
        var box = RandomResizedCrop.Sample(random, image.Width, image.Height, spec.Scale, spec.AspectRatio);
        var view = Resampling.ResizeBox(image, box.Left, box.Top, box.Width, box.Height, spec.Size, spec.Size);
        bool flipped = random.Chance(spec.FlipProbability);
        if (flipped) ColorAugment.FlipHorizontal(view);
        if (random.Chance(spec.JitterProbability)) ColorAugment.Jitter(view, random, spec.Brightness, spec.Contrast, spec.Saturation, spec.Hue);
        if (random.Chance(spec.GrayscaleProbability)) ColorAugment.Grayscale(view);
        if (random.Chance(spec.BlurProbability)) ColorAugment.GaussianBlur(view, random.Uniform(spec.Sigma.Low, spec.Sigma.High));
        if (random.Chance(spec.SolarizeProbability)) ColorAugment.Solarize(view);
        ColorAugment.Normalize(view);
        var placed = box with { Flipped = flipped };
        return new AugmentedView(view.Pixels, PatchPositions.Compute(placed, spec.Size, spec.Patch), placed);
    }
}

/// <summary>The views of one sample: CrOC's two global views (spec §9: blur 1.0 / 0.1,
/// solarise 0 / 0.2) and, optionally, DINO-style local crops.</summary>
public sealed record MultiCropSpec(ViewSpec Global1, ViewSpec Global2, ViewSpec? Local = null, int LocalCount = 0)
{
    /// <summary>CrOC's transform: two global views of <paramref name="size"/> px, scale (0.25, 1).</summary>
    public static MultiCropSpec Croc(int size = 224, int patch = 16, double minScale = 0.25) =>
        new(new ViewSpec(size, patch, (minScale, 1.0), BlurProbability: 1.0, SolarizeProbability: 0.0),
            new ViewSpec(size, patch, (minScale, 1.0), BlurProbability: 0.1, SolarizeProbability: 0.2));

    /// <summary>Adds <paramref name="count"/> DINO local crops (blur 0.5).</summary>
    public MultiCropSpec WithLocals(int count, int size = 96, double minScale = 0.05, double maxScale = 0.25) =>
        this with { Local = new ViewSpec(size, Global1.Patch, (minScale, maxScale), BlurProbability: 0.5, SolarizeProbability: 0.0), LocalCount = count };

    /// <summary>All views of a sample, each from its own random stream of (seed, epoch, index).</summary>
    public AugmentedView[] Apply(RgbImage image, long seed, long epoch, long index)
    {
        var views = new AugmentedView[2 + LocalCount];
        views[0] = ViewAugmentation.Apply(Global1, image, new SampleRandom(seed, epoch, index, 1));
        views[1] = ViewAugmentation.Apply(Global2, image, new SampleRandom(seed, epoch, index, 2));
        for (int l = 0; l < LocalCount; l++) views[2 + l] = ViewAugmentation.Apply(Local!, image, new SampleRandom(seed, epoch, index, 3 + l));
        return views;
    }
}
