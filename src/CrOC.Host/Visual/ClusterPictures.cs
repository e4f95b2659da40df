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
/// same cluster; patches of pruned (single-view) clusters are greyed out. Also the last block's
/// CLS attention maps, one per head.
/// </summary>
public static class ClusterPictures
{
    public static readonly Rgb24[] Palette =
    [
        new(230, 25, 75), new(60, 180, 75), new(255, 225, 25), new(0, 130, 200), new(245, 130, 48),
        new(145, 30, 180), new(70, 240, 240), new(240, 50, 230), new(210, 245, 60), new(250, 190, 212),
    ];

    public static readonly Rgb24 Pruned = new(90, 90, 90);

    /// <summary>Loads the teacher of a checkpoint and draws the clusters of the first four images.</summary>
    public static void WriteForRun(TrainConfig config, string checkpoint, VocSegmentation images, string path)
    {
        var croc = CrocSetup.Croc(config);
        var state = TrainingState.Fresh(config, croc);
        Checkpoints.Restore(checkpoint, config, state);
        var decoded = Enumerable.Range(0, System.Math.Min(4, images.Count)).Select(i => images.Load(i).Image).ToList();
        Write(croc.Network.Vit, croc.Clustering, croc.Features, state.Model.Teacher.Backbone, decoded, config.Seed, path, null);
    }

    /// <summary>Draws the joint clustering of two geometric views of each image (no colour
    /// augmentation) for head 0, and, when <paramref name="attentionPath"/> is set, the CLS attention maps.</summary>
    public static void Write(Vit.VitConfig vit, Clustering.ClusteringConfig clustering, Croc.FeatureSpace space, Vit.VitParams backbone, IReadOnlyList<RgbImage> images, long seed, string path, string? attentionPath, int head = 0)
    {
        using var scope = torch.NewDisposeScope();
        using var noGrad = torch.no_grad();
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
        var output = Vit.forward(vit, backbone, new Vit.ForwardOptions(0.0, null, true, Layers.Precision.Fp32), torch.tensor(pixels, [2 * b, 3, size, size]));
        var last = output.Last!.Value;
        var features = space.IsOutputTokens ? output.Tokens : last.Keys.reshape(-1, tokens + 1, vit.HeadDim);
        var clusters = Clustering.cluster(clustering, Clustering.Seeding.NewSampled(new torch.Generator((ulong)seed, torch.CPU)), features, torch.tensor(positions, [2 * b, tokens, 2]));
        using (var picture = Render(vit, views.Select(v => new[] { v[0].Pixels, v[1].Pixels }).ToList(), clusters))
        {
            Directory.CreateDirectory(Path.GetDirectoryName(Path.GetFullPath(path))!);
            picture.SaveAsPng(path);
        }
        if (attentionPath is null) return;
        var attention = Vit.clsAttention(last).narrow(0, 0, b).contiguous().data<float>().ToArray(); // view 1: (B, h, N)
        using var maps = RenderAttention(vit, views.Select(v => v[0].Pixels).ToList(), attention);
        maps.SaveAsPng(attentionPath);
    }

    /// <summary>The cluster (column of W) each token of problem <paramref name="problem"/>'s view
    /// <paramref name="view"/> belongs to, or −1 when its mask row is empty. Masks (2, S, N, K̄).</summary>
    public static int[] Assignments(Clustering.Clusters clusters, int view, int problem)
    {
        var w = clusters.Masks.select(0, view).select(0, problem).to_type(torch.float32).contiguous();
        int n = (int)w.shape[0], k = (int)w.shape[1];
        var values = w.data<float>().ToArray();
        return Enumerable.Range(0, n).Select(t =>
        {
            int best = -1;
            float top = 0;
            for (int c = 0; c < k; c++) if (values[t * k + c] > top) { top = values[t * k + c]; best = c; }
            return best;
        }).ToArray();
    }

    /// <summary>Rows of [view 1 | view 2], each view scaled to ≥ 160 px and tinted by cluster (head 0).
    /// <paramref name="views"/>[i][v] are normalised planar pixels of image i, view v.</summary>
    public static Image<Rgb24> Render(Vit.VitConfig vit, IReadOnlyList<float[][]> views, Clustering.Clusters clusters)
    {
        int b = views.Count, size = vit.ImageSize, groups = clusters.ProblemsPerImage, kBar = clusters.KBar;
        var valid = clusters.Valid.data<long>().ToArray().ToHashSet();
        int scale = System.Math.Max(1, 160 / size), cell = size * scale, gap = 8;
        var picture = new Image<Rgb24>(2 * cell + gap, b * (cell + gap) - gap, new Rgb24(255, 255, 255));
        for (int i = 0; i < b; i++)
            for (int v = 0; v < 2; v++)
            {
                int problem = i * groups; // head 0
                var assigned = Assignments(clusters, v, problem);
                for (int y = 0; y < cell; y++)
                    for (int x = 0; x < cell; x++)
                    {
                        int py = y / scale, px = x / scale;
                        int k = assigned[(py / vit.Patch) * vit.Grid + px / vit.Patch];
                        bool kept = k >= 0 && valid.Contains(problem * kBar + k);
                        var tint = kept ? Palette[k % Palette.Length] : Pruned;
                        float alpha = kept ? 0.5f : 0.7f;
                        picture[v * (cell + gap) + x, i * (cell + gap) + y] = Tinted(views[i][v], size, py, px, tint, alpha);
                    }
            }
        return picture;
    }

    /// <summary>Per image: view 1, then one heat map per head of the CLS attention (B, h, N) over it.</summary>
    static Image<Rgb24> RenderAttention(Vit.VitConfig vit, IReadOnlyList<float[]> views, float[] attention)
    {
        int b = views.Count, heads = vit.Heads, size = vit.ImageSize, tokens = vit.Grid * vit.Grid;
        int scale = System.Math.Max(1, 128 / size), cell = size * scale, gap = 6;
        var picture = new Image<Rgb24>((heads + 1) * (cell + gap) - gap, b * (cell + gap) - gap, new Rgb24(255, 255, 255));
        for (int i = 0; i < b; i++)
            for (int m = 0; m <= heads; m++)
            {
                float max = m == 0 ? 1 : Enumerable.Range(0, tokens).Max(t => attention[(i * heads + m - 1) * tokens + t]);
                for (int y = 0; y < cell; y++)
                    for (int x = 0; x < cell; x++)
                    {
                        int py = y / scale, px = x / scale;
                        Rgb24 colour;
                        if (m == 0) colour = Tinted(views[i], size, py, px, Pruned, 0);
                        else
                        {
                            float a = attention[(i * heads + m - 1) * tokens + (py / vit.Patch) * vit.Grid + px / vit.Patch] / max;
                            colour = new Rgb24((byte)(255 * a), (byte)(255 * a * a), (byte)(80 * (1 - a)));
                        }
                        picture[m * (cell + gap) + x, i * (cell + gap) + y] = colour;
                    }
            }
        return picture;
    }

    static Rgb24 Tinted(float[] normalised, int size, int y, int x, Rgb24 tint, float alpha)
    {
        byte Channel(int c, byte t)
        {
            float value = normalised[c * size * size + y * size + x] * ColorAugment.Std[c] + ColorAugment.Mean[c];
            return (byte)System.Math.Clamp((int)System.Math.Round(((1 - alpha) * value + alpha * t / 255f) * 255f), 0, 255);
        }
        return new Rgb24(Channel(0, tint.R), Channel(1, tint.G), Channel(2, tint.B));
    }
}
