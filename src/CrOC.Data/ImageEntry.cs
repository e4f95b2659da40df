namespace CrOC.Data;

/// <summary>
/// One image of a dataset: a file (<see cref="Member"/> null), or the member <see cref="Member"/> of
/// the tar archive <see cref="Path"/> whose bytes lie at [<see cref="Offset"/>, +<see cref="Length"/>).
/// <see cref="Name"/> ("archive.tar#member" for members) orders a dataset and names it in reports.
/// </summary>
public sealed record ImageEntry(string Path, string? Member = null, long Offset = 0, long Length = 0)
{
    /// <summary>Separates an archive from a member (or a folder inside it) in names and dataset roots.</summary>
    public const char ArchiveSeparator = '#';

    public string Name => Member is null ? Path : $"{Path}{ArchiveSeparator}{Member}";

    /// <summary>Named by a list's line, never seen on the storage: a missing one is the data's fault, while a
    /// file that a search found is missing later only when the storage lost it.</summary>
    public bool NamedOnly { get; init; }

    public static ImageEntry File(string path) => new(System.IO.Path.GetFullPath(path));

    public static ImageEntry InArchive(string archive, TarMember member) => new(archive, member.Name, member.Offset, member.Length);

    public override string ToString() => Name;
}
