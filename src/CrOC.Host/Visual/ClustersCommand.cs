using CrOC.Data;
using CrOC.Host.CommandLine;
using CrOC.Host.Runtime;
using CrOC.Host.Weights;
using CrOC.Math;

namespace CrOC.Host.Visual;

/// <summary>`croc-host clusters`'s command line.</summary>
[Command("clusters", "picture of CrOC's online clusters of two views of each image (+ CLS attention maps per head)", Notes = """
    Matched clusters (present in both views) share a colour and an outline in both views; patches
    of pruned clusters (one view only) are hatched grey; a legend is drawn in the picture.
    Clustering settings are the official ones (K0 5, K* <= 4, lambda 20, 5 iterations, lambda_pos 4).
    As in training, the cost is rescaled once over all the images drawn together: an image's
    clusters can change with the other images beside it (the same seed and images, the same picture).
    Example: croc-host clusters --weights run/checkpoints/step-00000128.safetensors --data photos/ --count 3
    """)]
public sealed record ClustersOptions
{
    [Option("a checkpoint or backbone file; the teacher is used", Required = true, Value = "FILE")]
    public string Weights { get; init; } = "";
    [Option("one image (or give --data)", Value = "PATH")]
    public string? Image { get; init; }
    [Option("images: folders, archives, patterns or lists, comma-separated as train's --data; the first --count are drawn", Value = "ROOT[,ROOT…]")]
    public string? Data { get; init; }
    [Option("images drawn from --data", Min = 1, Max = 64)]
    public int Count { get; init; } = 4;
    [Option("the picture; the attention maps go beside it with -attention before .png", Value = "PNG", Default = "FILE's name + -clusters.png, beside FILE")]
    public string? Output { get; init; }
    [Option("seed of the views and of the clustering's seeds: same seed, same picture", Min = 0)]
    public int Seeds { get; init; }
    [Option("view size in pixels (a multiple of the patch size)", Min = 1, Max = 4096, Default = "the backbone's training size")]
    public int? Size { get; init; }
    [Option("attention heads, if not D/64", Min = 1, Max = 1024)]
    public int? Heads { get; init; }
    [Option("which attention head's clustering is drawn", Min = 0, Max = 1023)]
    public int Head { get; init; }
    [Option("torch threads (0: all cores)", Min = 0, Max = 4096)]
    public int Threads { get; init; }
}

/// <summary>`croc-host clusters`: the online clusters of two views, and the CLS attention maps.</summary>
public static class ClustersCommand
{
    public static int Run(ClustersOptions o)
    {
        if ((o.Image is null) == (o.Data is null)) throw new OptionException("give exactly one of --image and --data");
        if (o.Image is not null && o.Count != new ClustersOptions().Count) throw new OptionException($"--count {o.Count} draws images from --data; --image shows one image: leave --count out, or give --data"); // ignored silently once
        if (o.Threads > 0) TorchSharp.torch.set_num_threads(o.Threads);
        if (o.Output is { } named && !named.EndsWith(".png", StringComparison.OrdinalIgnoreCase)) throw new OutputException($"--output '{named}' must end with .png (the picture is a PNG)");
        if (o.Output is { } stemless && Path.GetFileNameWithoutExtension(stemless).Length == 0) throw new OutputException($"--output '{stemless}' names no picture: give a name before .png, e.g. clusters.png"); // wrote a hidden '.png' and '-attention.png' once
        string[] roots = o.Data is null ? [] : Arguments.PathList(o.Data, "--data");
        var files = o.Image is not null ? ImageSources.Files([o.Image]) : ImageSources.Find(roots);
        string[] inputs = o.Image is null ? [o.Weights] : [o.Weights, o.Image]; // a dataset's photos are no pictures of ours (Replaceable)
        var option = OutputPaths.OutputBesideWeights(o.Output);
        var output = OutputPaths.Replaceable(o.Output ?? Path.ChangeExtension(o.Weights, null) + "-clusters.png", option, "a picture croc-host drew", PictureMark.IsOn, inputs);
        var attention = OutputPaths.Replaceable(Path.ChangeExtension(output, null) + "-attention.png", "--output (its attention picture)", "a picture croc-host drew", PictureMark.IsOn, inputs);
        // a rerun drew the pictures as images, then replaced one of them, once
        if (roots.FirstOrDefault(root => ImageSources.Reaches(root, output)) is { } holder)
            throw new OutputException($"--output '{o.Output ?? output}' lies inside --data '{holder}': a later run would draw its pictures as images; write them outside it");
        var loaded = BackboneLoader.Load(o.Weights, NetworkChoice.Teacher, o.Heads);
        var c = loaded.Config;
        foreach (var remark in loaded.Remarks(NetworkChoice.Teacher, "", o.Weights, "drawn")) Console.WriteLine(remark); // its teacher's absence and an incomplete export, silent once
        if (loaded.HeadsDoubt is { } doubt) Console.WriteLine(doubt);
        var vit = o.Size is int s ? new Vit.VitConfig(imageSize: s, patch: c.Patch, dim: c.Dim, depth: c.Depth, heads: c.Heads, mlpRatio: c.MlpRatio, eps: c.Eps) : c;
        if (vit.ImageSize % vit.Patch != 0) throw new OptionException($"--size must be a multiple of the patch size {vit.Patch}");
        int k0 = Clustering.ClusteringConfig.Official.K0;
        if (2 * vit.Tokens < k0) throw new OptionException($"--size {vit.ImageSize} gives {vit.Tokens} patch(es) per view; the clustering starts from {k0} clusters over both views' patches: use --size of at least {vit.Patch * (int)System.Math.Ceiling(System.Math.Sqrt(k0 / 2.0))}");
        if (o.Head >= vit.Heads) throw new OptionException($"--head must be below the {vit.Heads} heads of this backbone");
        int shown = System.Math.Min(files.Count, o.Count); // --image: one file
        RefuseHugePictures(vit, shown);
        MemoryFit.Check(vit, 2L * shown, training: false, PrecisionChoice.Fp32, $"--size {vit.ImageSize} with the backbone's patch {vit.Patch} and {shown} image(s)");
        if (vit.Tokens >= LongForward) Console.WriteLine($"{2 * shown} views of {vit.ImageSize} px ({vit.Tokens:N0} patches each) through the backbone and the clustering: this may take minutes"); // minutes without a line once
        var images = o.Image is not null ? [new ImageDecoder().Decode(files[0])] : FirstDecodable(files, o.Count);
        if (o.Image is null && images.Count < o.Count) Console.WriteLine($"note: --count {o.Count}, but --data has {Counted.Of(images.Count, "image that decodes: it is", "images that decode: all of them are")} drawn"); // fewer without a word once
        var captions = ClusterPictures.Write(vit, Clustering.ClusteringConfig.Official, Croc.FeatureSpace.LastBlockKeys, loaded.Params, images, o.Seeds, output, attention, o.Head);
        foreach (var caption in captions) Console.WriteLine(caption);
        Console.WriteLine($"wrote {output} ({Counted.Of(images.Count, "image")}, head {o.Head}) and {attention} ({vit.Heads} heads)");
        return ExitCodes.Ok;
    }

    /// <summary>Patches per view from which the forward is announced (4096: 1024 px at patch 16).</summary>
    const int LongForward = 4096;

    /// <summary>The first <paramref name="count"/> images of a folder that decode; the others are
    /// skipped with a line each (none decoding is a <see cref="DatasetException"/>).</summary>
    static List<RgbImage> FirstDecodable(IReadOnlyList<ImageEntry> files, int count)
    {
        var decoder = new ImageDecoder();
        var images = new List<RgbImage>();
        foreach (var file in files.TakeWhile(_ => images.Count < count))
        {
            try { images.Add(decoder.Decode(file)); }
            catch (DecodeException e) { Console.WriteLine($"skipped {e.Said}"); }
        }
        return images.Count > 0 ? images : throw new DatasetException(files.Count == 1 ? "the one image of --data does not decode" : $"none of the {files.Count} images of --data decodes");
    }

    /// <summary>Refuses, before any image is read, pictures above <see cref="ClusterPictures.MaxPicturePixels"/>.</summary>
    static void RefuseHugePictures(Vit.VitConfig vit, int images)
    {
        foreach (var (what, (width, height)) in new[] { ("clusters", ClusterPictures.ClustersPictureSize(vit.ImageSize, images)), ("attention", ClusterPictures.AttentionPictureSize(vit.ImageSize, images, vit.Heads)) })
            if (width * height > ClusterPictures.MaxPicturePixels)
                throw new OptionException($"--size {vit.ImageSize} with {images} image(s) makes a {what} picture of {width} × {height} pixels, above {ClusterPictures.MaxPicturePixels >> 20} M: use a smaller --size or --count");
    }
}
