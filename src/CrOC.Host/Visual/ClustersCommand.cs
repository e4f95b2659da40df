using CrOC.Data;
using CrOC.Host.Weights;
using CrOC.Math;

namespace CrOC.Host;

/// <summary>`croc-host clusters`: the online clusters of two views, and the CLS attention maps.</summary>
public static class ClustersCommand
{
    const string Help = """
        croc-host clusters: draw CrOC's joint clustering of two views of each image, matched clusters in
        the same colour (pruned single-view clusters grey), plus the last block's CLS attention per head.

        Options:
          --weights FILE     a checkpoint or backbone file (required); the teacher is used
          --image PATH       one image, or --data DIR / pattern / list: the first --count images (4)
          --output PNG       (clusters.png); the attention maps go to PNG with -attention before .png
          --seeds S          seed of the views and of the clustering's seeds (0): same S, same picture
          --size S           view size in pixels (the backbone's training size)
          --heads N          attention heads if not D/64
        Clustering settings are the official ones (K0 5, K* <= 4, lambda 20, 5 iterations, lambda_pos 4).
        """;

    public static int Run(Options options)
    {
        if (options.Help) { Console.WriteLine(Help); return 0; }
        var weights = options.Required("weights");
        var image = options.Text("image");
        var data = options.Text("data");
        int count = options.PositiveInt("count", 4);
        var output = options.Text("output") ?? "clusters.png";
        long seed = options.NonNegativeInt("seeds", 0);
        int? size = options.Has("size") ? options.PositiveInt("size", 224) : null;
        int? heads = options.Has("heads") ? options.PositiveInt("heads", 6) : null;
        options.RejectUnknown();
        if ((image is null) == (data is null)) throw new OptionException("give exactly one of --image and --data");

        try
        {
            var loaded = BackboneLoader.Load(weights, "teacher", heads);
            var c = loaded.Config;
            var vit = size is int s ? new Vit.VitConfig(s, c.Patch, c.Dim, c.Depth, c.Heads, c.MlpRatio, c.Eps) : c;
            if (vit.ImageSize % vit.Patch != 0) throw new OptionException($"--size must be a multiple of the patch size {vit.Patch}");
            var files = image is not null ? [image] : ImageSources.Find([data!]).Take(count).ToList();
            var decoder = new ImageDecoder();
            var images = files.Select(decoder.Decode).ToList();
            var attention = Path.ChangeExtension(output, null) + "-attention.png";
            ClusterPictures.Write(vit, Clustering.ClusteringConfig.Official, Croc.FeatureSpace.LastBlockKeys, loaded.Params, images, seed, output, attention);
            Console.WriteLine($"wrote {output} ({images.Count} images, head 0) and {attention} ({vit.Heads} heads)");
            return 0;
        }
        catch (Exception e) when (e is WeightsException or DatasetException or DecodeException)
        {
            Console.Error.WriteLine($"croc-host clusters: {e.Message}");
            return 1;
        }
    }
}
