namespace CrOC.Data;

/// <summary>
/// The meaningful lines of a text list (a .txt list of dataset roots, an annotations file): read
/// whole up to a limit (a link to a device such as /dev/zero never ends), UTF-8 unless a byte-order
/// mark names UTF-16 or UTF-32 (Windows PowerShell's `>` writes UTF-16), lines ended by \n, \r\n
/// or \r, each trimmed, empty lines and '#' comments left out; a line holding a NUL is refused.
/// </summary>
public static class TextList
{
    public static IReadOnlyList<string> Lines(string path, int limit)
    {
        using var reader = new StreamReader(new MemoryStream(TarArchive.ReadFileOrMember(path, limit)), System.Text.Encoding.UTF8, detectEncodingFromByteOrderMarks: true);
        var lines = new List<string>();
        for (int number = 1; reader.ReadLine() is { } line; number++)
        {
            // a NUL is no path's (.NET's path functions throw ArgumentException on it: an internal error once)
            if (line.Contains('\0')) throw new DatasetException($"'{path}' line {number} holds a NUL character: not a text list");
            if (line.TrimStart('\uFEFF').Trim() is { Length: > 0 } kept && !kept.StartsWith('#')) lines.Add(kept); // a second mark written as text, too
        }
        return lines;
    }
}
