namespace CrOC.Host.CommandLine;

/// <summary>
/// Options whose value is one of a few words are enums end to end: the command line, config files
/// (JSON, TOML), the stored config and checkpoints spell a member in lower case ("bf16" for
/// <c>Bf16</c>). The command line reads them here; config files through System.Text.Json's enum
/// converter with camel case (TrainConfig), which spells every one-word member the same way.
/// </summary>
public static class Choices
{
    /// <summary>The word of an enum member: its name in lower case.</summary>
    public static string Word(this Enum value) => value.ToString().ToLowerInvariant();

    /// <summary>All words of <paramref name="type"/>, as "a|b|c".</summary>
    public static string Words(Type type) => string.Join("|", Enum.GetNames(type).Select(n => n.ToLowerInvariant()));

    /// <summary>The member of <paramref name="type"/> spelled <paramref name="word"/> (any case, white space
    /// around it ignored as a number's is; names only, never numbers), or null.</summary>
    public static object? Parse(Type type, string word) =>
        Enum.GetNames(type).FirstOrDefault(n => n.Equals(word.Trim(), StringComparison.OrdinalIgnoreCase)) is { } name ? Enum.Parse(type, name) : null;
}
