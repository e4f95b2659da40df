namespace CrOC.Host.CommandLine;

/// <summary>A bad command line, reported with exit code 2.</summary>
public sealed class OptionException(string message) : Exception(message), IBadOption;

/// <summary>The tokens of a subcommand's arguments.</summary>
public static class Arguments
{
    /// <summary>The `--name value`, `--name=value` (a value may then start with --; after a space too
    /// when its name part holds a space) and `--flag` arguments in order; `-h` is `--help`. An option given twice is refused (as a config file's key
    /// given twice is): `--data a --data b` would otherwise train on b alone without a word.</summary>
    public static List<(string Name, string? Value)> Pairs(string[] args)
    {
        var pairs = new List<(string, string?)>();
        for (int i = 0; i < args.Length; i++)
        {
            if (args[i] is "-h") { pairs.Add(("help", null)); continue; }
            if (!args[i].StartsWith("--", StringComparison.Ordinal) || args[i].Length == 2)
                throw new OptionException($"unexpected argument '{CrOC.Data.Quoted.Printable(args[i])}' (options are --name value)");
            var name = args[i][2..];
            int equals = name.IndexOf('=');
            if (equals >= 0) { pairs.Add((name[..equals], name[(equals + 1)..])); continue; }
            bool hasValue = i + 1 < args.Length && (!args[i + 1].StartsWith("--", StringComparison.Ordinal) || NameHoldsSpace(args[i + 1]));
            pairs.Add((name, hasValue ? args[++i] : null));
        }
        if (pairs.GroupBy(p => p.Item1).FirstOrDefault(g => g.Count() > 1 && g.Key != "help") is { } repeated)
            throw new OptionException($"--{CrOC.Data.Quoted.Printable(repeated.Key)} is given {repeated.Count()} times ({CrOC.Data.Quoted.Printable(string.Join(", ", repeated.Select(p => p.Item2 ?? "no value")))}): give it once (lists are comma-separated)");
        return pairs;
    }

    /// <summary>Whether an argument that starts with -- has white space in its name part (before any
    /// '='): no option's name does, so it is a value (`--train-args "--epochs 16"`), while
    /// `--data="My VOC"` is still an option.</summary>
    static bool NameHoldsSpace(string argument) => argument[2..].Split('=')[0].Any(char.IsWhiteSpace);

    public static bool AsksForHelp(string[] args) => args.Any(a => a is "--help" or "-h");

    /// <summary>The items of a list option's value: comma-separated and trimmed (the command line's and
    /// a config file's string form alike). Empty items are kept for the caller to refuse: "0,,1" is a
    /// list with a value missing, not "0,1".</summary>
    public static string[] ListItems(string text) => text.Split(',', StringSplitOptions.TrimEntries);

    /// <summary>What is wrong with a list's <paramref name="items"/> ("needs at least one value" when all
    /// are empty, "has an empty item (number K of N)"), or null.</summary>
    public static string? EmptyItems(string[] items) =>
        items.All(item => item.Length == 0) ? "needs at least one value"
        : Array.FindIndex(items, item => item.Length == 0) is var empty and >= 0 ? $"has an empty item (number {empty + 1} of {items.Length})"
        : null;

    /// <summary><see cref="PathItems"/> of an option given as one string, an empty item refused as the list options refuse it
    /// ("the dataset root '' does not exist" once).</summary>
    public static string[] PathList(string text, string option) =>
        PathItems(text) is var items && EmptyItems(items) is { } problem ? throw new OptionException($"{option} {problem}, got '{CrOC.Data.Quoted.Printable(text)}'") : items;

    /// <summary>The items of a list of paths: as <see cref="ListItems"/>, but a value that names an
    /// existing file, folder or archive (archive.tar#folder) as a whole, ~/ expanded as the dataset
    /// search expands it, is that one path (a folder whose name holds a comma).</summary>
    public static string[] PathItems(string text) =>
        text.Contains(',') && CrOC.Data.ImageSources.HomeExpanded(text.Trim()) is var whole
            && (File.Exists(whole) || Directory.Exists(whole) || CrOC.Data.TarArchive.Split(whole) is { } split && !split.Inside.Contains(',')) // "a.tar#train,b": two roots
            ? [text.Trim()] : ListItems(text);
}
