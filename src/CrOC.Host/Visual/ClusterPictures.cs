using CrOC.Data;
using CrOC.Host.Training;
using CrOC.Math;
using SixLabors.ImageSharp;
using SixLabors.ImageSharp.PixelFormats;
using TorchSharp;

namespace CrOC.Host;

/// <summary>
/// The poster's "online cluster visualisation": two views of an image side by side, every patch
/// tinted with the colour of its cluster (its argmax in W), the same colour in both views for the
/// same cluster; patches of pruned (single-view) clusters are greyed out.
/// </summary>
public static class ClusterPictures
{
    static readonly Rgb24[] Palette =
    [
        new(230, 25, 75), new(60, 180, 75), new(255, 225, 25), new(0, 130, 200), new(245, 130, 48),
        new(145, 30, 180), new(70, 240, 240), new(240, 50, 230), new(210, 245, 60), new(250, 190, 212),
    ];

    /// <summary>Loads the teacher of <paramref name="checkpoint"/> and draws the clusters of the
    /// first four images of <paramref name="images"/>.</summary>
    public static void WriteForRun(TrainConfig config, string checkpoint, VocSegmentation images, string path)
    {
        var croc = CrocSetup.Croc(config);
        var state = TrainingState.Fresh(config, croc);
        Checkpoints.Restore(checkpoint, config, state);
        var decoded = Enumerable.Range(0, System.Math.Min(4, images.Count)).Select(i => images.Load(i).Image).ToList();
        Write(croc, state.Model.Teacher, decoded, config.Seed, path);
    }

    /// <summary>Draws the joint clustering of two geometric views of each image (no colour
    /// augmentation), for the first feature group (head 0).</summary>
    public static void Write(Croc.CrocConfig croc, Network.NetworkParams teacher, IReadOnlyList<RgbImage> images, long seed, string path)
    {
        using var scope = torch.NewDisposeScope();
        using var noGrad = torch.no_grad();
        var vit = croc.Network.Vit;
        var plain = MultiCropSpec.Croc(vit.ImageSize, vit.Patch);
        ViewSpec Geometric(ViewSpec v) => v with { JitterProbability = 0, GrayscaleProbability = 0, BlurProbability = 0, SolarizeProbability = 0 };
        plain = plain with { Global1 = Geometric(plain.Global1), Global2 = Geometric(plain.Global2) };
        var views = images.Select((image, i) => plain.Apply(image, seed, 0, i)).ToList();
        int b = images.Count, size = vit.ImageSize, tokens = vit.Grid * vit.Grid;
        var pixels = new float[2 * b * 3 * size * size];
        var positions = new float[2 * b * tokens * 2];
        for (int v = 0; v < 2; v++)
            for (int i = 0; i < b; i++)
            {
                views[i][v].Pixels.CopyTo(pixels, (v * b + i) * 3 * size * size);
                views[i][v].Positions.CopyTo(positions, (v * b + i) * tokens * 2);
            }
        var input = torch.tensor(pixels, [2 * b, 3, size, size]);
        var out_ = Vit.forward(vit, teacher.Backbone, new Vit.ForwardOptions(0.0, null, true), input);
        var features = croc.Features.IsOutputTokens ? out_.Tokens : out_.Last!.Value.Keys.reshape(-1, tokens + 1, vit.HeadDim);
        var clusters = Clustering.cluster(croc.Clustering, Clustering.Seeding.NewSampled(new torch.Generator((ulong)seed, torch.CPU)), features, torch.tensor(positions, [2 * b, tokens, 2]));
        int groups = clusters.ProblemsPerImage, kBar = clusters.KBar;
        var masks = clusters.Masks.to_type(torch.float32).contiguous().data<float>().ToArray(); // (2, S, N, K̄)
        var valid = clusters.Valid.data<long>().ToArray().ToHashSet();
        int s = b * groups;
        int scale = System.Math.Max(1, 160 / size), cell = size * scale, gap = 8;
        using var picture = new Image<Rgb24>(2 * cell + gap, b * (cell + gap) - gap, new Rgb24(255, 255, 255));
        for (int i = 0; i < b; i++)
            for (int v = 0; v < 2; v++)
            {
                int problem = i * groups; // head 0
                for (int y = 0; y < cell; y++)
                    for (int x = 0; x < cell; x++)
                    {
                        int py = y / scale, px = x / scale;
                        int token = (py / vit.Patch) * vit.Grid + px / vit.Patch;
                        int k = Argmax(masks, ((v * s + problem) * tokens + token) * kBar, kBar);
                        var rgb = Enumerable.Range(0, 3).Select(c => views[i][v].Pixels[c * size * size + py * size + px] * ColorAugment.Std[c] + ColorAugment.Mean[c]).ToArray();
                        var tint = k >= 0 && valid.Contains(problem * kBar + k) ? Palette[k % Palette.Length] : new Rgb24(90, 90, 90);
                        float alpha = k >= 0 && valid.Contains(problem * kBar + k) ? 0.5f : 0.7f;
                        picture[v * (cell + gap) + x, i * (cell + gap) + y] = new Rgb24(
                            Blend(rgb[0], tint.R, alpha), Blend(rgb[1], tint.G, alpha), Blend(rgb[2], tint.B, alpha));
                    }
            }
        Directory.CreateDirectory(Path.GetDirectoryName(Path.GetFullPath(path))!);
        picture.SaveAsPng(path);
    }

    static int Argmax(float[] values, int at, int count)
    {
        int best = -1;
        float top = 0;
        for (int k = 0; k < count; k++) if (values[at + k] > top) { top = values[at + k]; best = k; }
        return best;
    }

    static byte Blend(float image, byte tint, float alpha) => (byte)System.Math.Clamp((int)System.Math.Round(((1 - alpha) * image + alpha * tint / 255f) * 255f), 0, 255);
}
