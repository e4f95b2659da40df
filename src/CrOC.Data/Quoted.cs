using System.Text;

namespace CrOC.Data;

/// <summary>A value of the user's as an error line quotes it: on one line and of bounded length.</summary>
public static class Quoted
{
    /// <summary>At most 300 characters: the first 200, "…", the last 60 and the length (a list's one line
    /// of 200 MB made an error line of 200 MB once), never half of a character.</summary>
    public static string Shortened(string text)
    {
        if (text.Length <= 300) return text;
        int head = char.IsHighSurrogate(text[199]) ? 199 : 200, tail = char.IsLowSurrogate(text[^60]) ? 59 : 60;
        return $"{text[..head]}…{text[^tail..]} ({text.Length:N0} characters)";
    }

    /// <summary><paramref name="line"/> with each of its words (runs without a space: a path, a
    /// value) <see cref="Shortened"/>: a failure quoting a 120 KB path was a line of 120 KB once.</summary>
    public static string LongWordsShortened(string line) =>
        line.Length <= 300 ? line : string.Join(' ', line.Split(' ').Select(Shortened));

    /// <summary><see cref="Shortened"/> and <see cref="Escaped"/>: a newline in an option's name split its error line in two once.</summary>
    public static string Printable(string text) => Escaped(Shortened(text));

    /// <summary><paramref name="text"/> with control characters written as escapes (\n, \t, \u0000), whole
    /// (a file's path in a log, to be copied).</summary>
    public static string Escaped(string text)
    {
        if (!text.Any(char.IsControl)) return text;
        var result = new StringBuilder(text.Length + 8);
        foreach (var c in text)
            result.Append(c switch
            {
                '\n' => "\\n",
                '\t' => "\\t",
                '\r' => "\\r",
                _ when char.IsControl(c) => $"\\u{(int)c:x4}",
                _ => c.ToString(),
            });
        return result.ToString();
    }
}
