namespace CrOC.Data;

/// <summary>
/// A hash of a dataset's list of images that does not depend on where it lies: each image's name
/// below the folder common to all of them (and an archive member's byte length), in the list's
/// order. Two machines that found the same files under different roots agree; a list with another
/// file, another order or another member size differs. The bytes of plain files are not read, so
/// two files of one name whose contents differ are not told apart.
/// </summary>
public static class DatasetFingerprint
{
    public static uint Of(IReadOnlyList<ImageEntry> images)
    {
        if (images.Count == 0) return StableHash.Empty;
        int common = CommonFolderLength(images);
        uint hash = StableHash.Empty;
        foreach (var image in images)
        {
            hash = StableHash.Add(hash, image.Path.AsSpan(common));
            if (image.Member is not null) hash = StableHash.Add(hash, $"#{image.Member}:{image.Length}");
            hash = StableHash.Add(hash, "\n");
        }
        return hash;
    }

    /// <summary>The length of the longest folder prefix ("/a/b/") that every image's path starts with.</summary>
    static int CommonFolderLength(IReadOnlyList<ImageEntry> images)
    {
        string first = images[0].Path;
        int length = first.LastIndexOf('/') + 1;
        foreach (var image in images)
        {
            int shared = first.AsSpan(0, length).CommonPrefixLength(image.Path);
            if (shared < length) length = shared == 0 ? 0 : first.LastIndexOf('/', shared - 1) + 1;
        }
        return length;
    }
}
