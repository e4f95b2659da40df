using CrOC.Data;
using CrOC.Math;
using CrOC.Host.Weights;
using SixLabors.ImageSharp;
using SixLabors.ImageSharp.PixelFormats;
using TorchSharp;

namespace CrOC.Host.Visual;

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

    /// <summary>Cluster k's colour: the palette's, then (K* above 10, possible with --n-tokens and
    /// --n-centroids-max) hues a golden angle apart, so no two clusters of a picture share one.</summary>
    public static Rgb24 ColourOf(int k)
    {
        if (k < Palette.Length) return Palette[k];
        double hue = (k * 0.6180339887498949) % 1.0 * 6.0; // sector of the HSV hexagon, s = 0.7, v = 0.9
        int sector = (int)hue;
        double f = hue - sector, v = 0.9 * 255, p = v * 0.3, q = v * (1 - 0.7 * f), t = v * (1 - 0.7 * (1 - f));
        var (r, g, b) = sector switch { 0 => (v, t, p), 1 => (q, v, p), 2 => (p, v, t), 3 => (p, q, v), 4 => (t, p, v), _ => (v, p, q) };
        return new Rgb24((byte)r, (byte)g, (byte)b);
    }

    /// <summary>Draws the joint clustering of two geometric views of each image (no colour
    /// augmentation) of head <paramref name="head"/>'s clustering, and, when <paramref name="attentionPath"/> is set, the CLS attention maps.</summary>
    /// <returns>The caption of each image (K*, matched and pruned clusters).</returns>
    public static IReadOnlyList<string> Write(Vit.VitConfig vit, Clustering.ClusteringConfig clustering, Croc.FeatureSpace space, Vit.VitParams backbone, IReadOnlyList<RgbImage> images, long seed, string path, string? attentionPath, int head = 0)
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
        // clusters of NaN features were drawn as one colour and captioned as 4 matched once (the evaluations refuse them)
        var features = Runtime.NonFiniteException.Checked(space.IsOutputTokens ? output.Tokens : last.Keys.reshape(-1, tokens + 1, vit.HeadDim), "the images' views");
        var clusters = Clustering.cluster(clustering, Clustering.Seeding.NewSampled(new torch.Generator((ulong)seed, torch.CPU)), features, torch.tensor(positions, [2 * b, tokens, 2]));
        var captions = Enumerable.Range(0, b).Select(i => Caption(clusters, i, head)).ToList();
        using var picture = Render(vit, views.Select(v => new[] { v[0].Pixels, v[1].Pixels }).ToList(), clusters, head);
        if (attentionPath is null)
        {
            PictureFile.Write(picture, path);
            return captions;
        }
        var attention = Runtime.NonFiniteException.Checked(Vit.clsAttention(last).narrow(0, 0, b).contiguous(), "the CLS attention maps").data<float>().ToArray(); // view 1: (B, h, N)
        using var maps = RenderAttention(vit, views.Select(v => v[0].Pixels).ToList(), attention);
        PictureFile.WriteTogether([(picture, path), (maps, attentionPath)]); // a failure between them left a new picture beside the old maps once
        return captions;
    }

    /// <summary>"image i: K* = k, m matched, p pruned" of head <paramref name="head"/>'s clustering of image <paramref name="image"/>.</summary>
    public static string Caption(Clustering.Clusters clusters, int image, int head)
    {
        int problem = image * clusters.ProblemsPerImage + head;
        long kStar = clusters.KStar.data<long>()[problem];
        using var validIndices = clusters.Valid;
        var valid = validIndices.data<long>().ToArray().ToHashSet();
        int matched = Enumerable.Range(0, (int)kStar).Count(k => valid.Contains(problem * clusters.Columns + k));
        return $"image {image + 1}: K* = {kStar}, {matched} matched, {kStar - matched} pruned";
    }

    /// <summary>The cluster (column of W) each token of problem <paramref name="problem"/>'s view
    /// <paramref name="view"/> belongs to, or −1 when its mask row is empty. Masks (2, S, N, Columns).</summary>
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

    /// <summary>Pixels per view pixel: views are drawn at least 256 px wide, so a patch is several pixels wide.</summary>
    public static int ScaleFor(int size) => System.Math.Max(1, (255 + size) / size);

    const int Margin = 10, Gap = 16, TextScale = 2;
    static int LineHeight => (Visual.BitmapFont.Height + 4) * TextScale;

    /// <summary>Where view <paramref name="view"/> of image <paramref name="image"/> starts in the picture.</summary>
    public static (int X, int Y) ViewOrigin(int size, int image, int view)
    {
        int cell = size * ScaleFor(size);
        return (Margin + view * (cell + Gap), (int)RowTop(size, image));
    }

    /// <summary>Where image <paramref name="image"/>'s row starts (its count as the legend's place), in long.</summary>
    static long RowTop(int size, int image) => Margin + LineHeight + image * ((long)size * ScaleFor(size) + LineHeight + Gap);

    /// <summary>Pixels per view pixel in the attention picture: half the clusters picture's.</summary>
    static int AttentionScale(int size) => System.Math.Max(1, ScaleFor(size) / 2);

    const string Legend1 = "colour + outline: a cluster found in both views (matched, kept)";
    const string Legend2 = "grey hatched: a cluster of one view only (pruned)";

    /// <summary>Pixels of the largest picture <see cref="Write"/> draws; more is refused before any
    /// work (1 GiB as RGB; it also keeps the views' pixel buffer, ≤ 3 floats per picture pixel, within an array).</summary>
    public const long MaxPicturePixels = 1L << 28;

    /// <summary>(width, height) of the clusters picture of <paramref name="images"/> images at
    /// <paramref name="size"/> px, in long: large sizes and counts overflow int.</summary>
    public static (long Width, long Height) ClustersPictureSize(int size, int images)
    {
        long cell = (long)size * ScaleFor(size);
        long width = System.Math.Max(2 * cell + Gap, Visual.BitmapFont.Measure(Legend1, TextScale)) + 2 * Margin;
        return (width, RowTop(size, images) + 2 * LineHeight + Margin);
    }

    /// <summary>(width, height) of the attention picture: per image, view 1 and one map per head.</summary>
    public static (long Width, long Height) AttentionPictureSize(int size, int images, int heads)
    {
        long cell = (long)size * AttentionScale(size), gap = AttentionGap;
        return (2 * Margin + (heads + 1) * (cell + gap) - gap, Margin + LineHeight + images * (cell + gap) - gap + Margin);
    }

    const int AttentionGap = 6;

    /// <summary>Rows of [view 1 | view 2] of head <paramref name="head"/>'s clustering, with titles,
    /// a caption per image (K*, matched and pruned clusters) and a legend: patches of a matched cluster
    /// (valid: present in both views) carry its colour in both views and an outline; patches of
    /// pruned clusters are grey and hatched. <paramref name="views"/>[i][v]: normalised planar pixels.</summary>
    public static Image<Rgb24> Render(Vit.VitConfig vit, IReadOnlyList<float[][]> views, Clustering.Clusters clusters, int head = 0)
    {
        int b = views.Count, size = vit.ImageSize, groups = clusters.ProblemsPerImage, columns = clusters.Columns;
        using var validIndices = clusters.Valid;
        var valid = validIndices.data<long>().ToArray().ToHashSet();
        int scale = ScaleFor(size), cell = size * scale;
        var (width, height) = ClustersPictureSize(size, b);
        var picture = new Image<Rgb24>((int)width, (int)height, new Rgb24(255, 255, 255));
        var black = new Rgb24(0, 0, 0);
        Visual.BitmapFont.Draw(picture, $"view 1 (head {head})", Margin, Margin, TextScale, black);
        Visual.BitmapFont.Draw(picture, "view 2", ViewOrigin(size, 0, 1).X, Margin, TextScale, black);
        for (int i = 0; i < b; i++)
        {
            int problem = i * groups + head;
            var assigned = new[] { Assignments(clusters, 0, problem), Assignments(clusters, 1, problem) };
            bool Kept(int k) => k >= 0 && valid.Contains(problem * columns + k);
            for (int v = 0; v < 2; v++)
            {
                var (ox, oy) = ViewOrigin(size, i, v);
                int At(int py, int px) => py < 0 || px < 0 || py >= vit.Grid || px >= vit.Grid ? int.MinValue : assigned[v][py * vit.Grid + px];
                for (int y = 0; y < cell; y++)
                    for (int x = 0; x < cell; x++)
                    {
                        int py = y / scale, px = x / scale, gy = py / vit.Patch, gx = px / vit.Patch;
                        int k = At(gy, gx);
                        Rgb24 colour;
                        if (!Kept(k))
                            colour = ((x + y) / 6 % 3 == 0) ? new Rgb24(70, 70, 70) : Gray(views[i][v], size, py, px);
                        else
                        {
                            // Outline: within 3 px of a patch edge whose neighbour belongs to another cluster.
                            int inX = x % (vit.Patch * scale), inY = y % (vit.Patch * scale), edge = vit.Patch * scale - 3;
                            bool outline = (inX < 3 && At(gy, gx - 1) != k) || (inX >= edge && At(gy, gx + 1) != k)
                                        || (inY < 3 && At(gy - 1, gx) != k) || (inY >= edge && At(gy + 1, gx) != k);
                            var tint = ColourOf(k);
                            colour = outline ? Darker(tint) : Tinted(views[i][v], size, py, px, tint, 0.45f);
                        }
                        picture[ox + x, oy + y] = colour;
                    }
            }
            var (cx, cy) = ViewOrigin(size, i, 0);
            Visual.BitmapFont.Draw(picture, Caption(clusters, i, head), cx, cy + cell + 4, TextScale, black);
        }
        int legendY = ViewOrigin(size, b, 0).Y;
        Visual.BitmapFont.Draw(picture, Legend1, Margin, legendY, TextScale, black);
        Visual.BitmapFont.Draw(picture, Legend2, Margin, legendY + LineHeight, TextScale, black);
        return picture;
    }

    static Rgb24 Darker(Rgb24 c) => new((byte)(c.R * 0.55), (byte)(c.G * 0.55), (byte)(c.B * 0.55));

    static Rgb24 Gray(float[] normalised, int size, int y, int x)
    {
        var c = Tinted(normalised, size, y, x, Pruned, 0);
        byte l = (byte)(0.6 * (0.299 * c.R + 0.587 * c.G + 0.114 * c.B) + 0.4 * 160);
        return new Rgb24(l, l, l);
    }

    /// <summary>Per image: view 1, then one heat map per head of the CLS attention (B, h, N) over it (bright = attended), titled.</summary>
    static Image<Rgb24> RenderAttention(Vit.VitConfig vit, IReadOnlyList<float[]> views, float[] attention)
    {
        int b = views.Count, heads = vit.Heads, size = vit.ImageSize, tokens = vit.Grid * vit.Grid;
        int scale = AttentionScale(size), cell = size * scale, gap = AttentionGap;
        int top = Margin + LineHeight;
        var (width, height) = AttentionPictureSize(size, b, heads);
        var picture = new Image<Rgb24>((int)width, (int)height, new Rgb24(255, 255, 255));
        for (int m = 0; m <= heads; m++)
            Visual.BitmapFont.Draw(picture, m == 0 ? "view 1" : $"head {m - 1}", Margin + m * (cell + gap), Margin, TextScale, new Rgb24(0, 0, 0)); // numbered as --head counts (from 1 once)
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
                        picture[Margin + m * (cell + gap) + x, top + i * (cell + gap) + y] = colour;
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
