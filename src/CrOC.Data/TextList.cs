namespace CrOC.Data;

/// <summary>
/// The meaningful lines of a text list (a .txt list of dataset roots, an annotations file): read
/// whole up to a limit (a link to a device such as /dev/zero never ends), UTF-8 with or without a
/// byte-order mark, each line trimmed, empty lines and '#' comments left out.
/// </summary>
public static class TextList
{
    public static IReadOnlyList<string> Lines(string path, int limit) =>
        System.Text.Encoding.UTF8.GetString(TarArchive.ReadFileOrMember(path, limit)).TrimStart('\uFEFF')
            .Split('\n').Select(l => l.Trim()).Where(l => l.Length > 0 && !l.StartsWith('#')).ToList();
}
