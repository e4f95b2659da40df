using System.Globalization;
using System.Reflection;
using System.Text;
using System.Text.Json;
using CrOC.Data;

namespace CrOC.Host.CommandLine;

/// <summary>One declared option: its name, property and declaration.</summary>
public sealed record OptionInfo(string Name, PropertyInfo Property, OptionAttribute Declaration)
{
    public Type ValueType => Nullable.GetUnderlyingType(Property.PropertyType) ?? Property.PropertyType;
    public bool IsFlag => ValueType == typeof(bool);
}

/// <summary>
/// The command line of an options record <typeparamref name="T"/>, generated from its
/// <see cref="OptionAttribute"/> declarations: parsing (`--kebab-name value`, `--name=value`,
/// `--flag` or `--flag false`, comma-separated lists), validation of every range and choice, and
/// the help text with every option, its default and its allowed values.
/// </summary>
public static class OptionSet<T> where T : class, new()
{
    /// <summary>The declared options in declaration order.</summary>
    public static readonly IReadOnlyList<OptionInfo> Options = typeof(T)
        .GetProperties(BindingFlags.Public | BindingFlags.Instance)
        .Where(p => p.GetCustomAttribute<OptionAttribute>() is not null)
        .OrderBy(p => Depth(p.DeclaringType!)).ThenBy(p => p.MetadataToken) // a base record's options first
        .Select(p => new OptionInfo(JsonNamingPolicy.KebabCaseLower.ConvertName(p.Name), p, p.GetCustomAttribute<OptionAttribute>()!))
        .ToList();

    static int Depth(Type type) => type.BaseType is null ? 0 : 1 + Depth(type.BaseType);

    static readonly Dictionary<string, OptionInfo> ByName = Options.ToDictionary(o => o.Name);

    public static CommandAttribute Command => typeof(T).GetCustomAttribute<CommandAttribute>()
        ?? throw new InvalidOperationException($"{typeof(T).Name} has no [Command]");

    public static OptionInfo? Find(string name) => ByName.GetValueOrDefault(name);

    /// <summary>Parses a subcommand's arguments over the defaults, then validates.</summary>
    public static T Parse(string[] args)
    {
        var options = new T();
        Apply(options, Arguments.Pairs(args));
        Validate(options);
        return options;
    }

    /// <summary>Sets the options named by <paramref name="pairs"/> on <paramref name="target"/>, a fresh
    /// instance owned by the caller. <paramref name="alsoKnown"/>: the command's names read elsewhere
    /// (train's --config), offered as suggestions for an unknown name too.</summary>
    public static void Apply(T target, IEnumerable<(string Name, string? Value)> pairs, params string[] alsoKnown)
    {
        foreach (var (name, value) in pairs)
        {
            if (name == "help") // `--help=yes` was dropped without a word, and the command ran
            {
                if (value is not null) throw new OptionException($"--help takes no value, got '--help={Quoted.Printable(value)}'");
                continue;
            }
            var option = Find(name) ?? throw new OptionException($"unknown option --{Quoted.Printable(name)}{Suggestion(name, ["help", .. alsoKnown])}");
            option.Property.SetValue(target, ParseValue(option, value));
        }
    }

    /// <summary>" (did you mean --NAME?)" for the options that have <paramref name="name"/> as one of their
    /// words (--size: --image-size), else the <see cref="NearNames.Nearest"/> among the options and
    /// <paramref name="alsoKnown"/> (the command line's --help), or "".</summary>
    public static string Suggestion(string name, params string[] alsoKnown)
    {
        var names = Options.Select(o => o.Name).Concat(alsoKnown).ToList();
        var holding = names.Where(n => n != name && n.Split('-').Contains(name)).Take(3).ToList();
        if (holding.Count > 0) return $" (did you mean {string.Join(" or ", holding.Select(n => "--" + n))}?)"; // train's --size had no suggestion once
        return NearNames.Nearest(name, names) is { } close ? $" (did you mean --{close}?)" : "";
    }

    static object? ParseValue(OptionInfo option, string? text)
    {
        var type = option.ValueType;
        if (type == typeof(bool))
            return text is null || (text.ToLowerInvariant() switch
            {
                "true" or "1" or "yes" => true,
                "false" or "0" or "no" => false,
                _ => throw new OptionException($"--{option.Name} takes true or false (also yes/no, 1/0; or nothing), got '{Quoted.Printable(text)}'"),
            });
        if (text is null) // `--train-args --epochs` takes "--epochs" for the next option
            throw new OptionException($"--{option.Name} needs a value ({Placeholder(option)}){(type == typeof(string) ? $"; a value that starts with -- goes after '=': --{option.Name}=VALUE" : "")}");
        if (type == typeof(string) && TextProblem(option, text) is { } problem) throw new OptionException($"--{option.Name} {problem}");
        if (type == typeof(string)) return IsPath(option) ? CrOC.Data.ImageSources.HomeExpanded(text) : text; // `--output=~/x`: no shell expands ~ after '='
        if (type.IsEnum) return Choices.Parse(type, text) ?? throw new OptionException($"--{option.Name} must be one of {Choices.Words(type)}, got '{Quoted.Printable(text)}'");
        if (type.IsArray)
        {
            var element = type.GetElementType()!;
            var items = element == typeof(string) ? Arguments.PathItems(text) : Arguments.ListItems(text);
            if (Arguments.EmptyItems(items) is { } empty) throw new OptionException($"--{option.Name} {empty} ({Placeholder(option)}), got '{Quoted.Printable(text)}'");
            if (element == typeof(string) && TextProblem(option, items) is { } itemProblem)
                throw new OptionException($"--{option.Name} {itemProblem}");
            var array = Array.CreateInstance(element, items.Length);
            for (int i = 0; i < items.Length; i++) array.SetValue(element == typeof(string) ? items[i] : Number(option, element, items[i]), i);
            return array;
        }
        return Number(option, type, text);
    }

    /// <summary>Whether the option's value is a path (FILE, DIR, PATH, PNG, ROOT) or a list of paths, whose leading ~/ is the home folder.</summary>
    static bool IsPath(OptionInfo option) => option.Declaration.Value is "FILE" or "DIR" or "PATH" or "PNG" or "ROOT" or "ROOTS" or "ROOT[,ROOT…]";

    /// <summary>What is wrong with <paramref name="text"/> as the value (or a list's item) of a path or
    /// name option, from the command line or a config file, or null: blank ("is required" once; a
    /// split '' looked for '.txt'), a NUL (an internal error once), or bytes that were not UTF-8,
    /// which .NET reads as U+FFFD (unless a path of that character exists): a file of that name would
    /// be written under another name, and an existing one reported missing.</summary>
    public static string? TextProblem(OptionInfo option, string text)
    {
        if (!IsPath(option) && option.Declaration.Value is not "NAME") return null;
        if (text.Trim().Length == 0) return $"needs a value ({Placeholder(option)}), got '{Quoted.Printable(text)}'";
        if (text.Contains('\0')) return $"holds a NUL character, which no path can: '{Quoted.Printable(text)}'";
        if (text.Contains('\uFFFD') && !File.Exists(text) && !Directory.Exists(text))
            return $"holds U+FFFD (\uFFFD), which .NET puts for bytes that are not UTF-8, and names nothing here: '{Quoted.Printable(text)}' (a file written there would get another name than the one asked for); rename the file or folder to a UTF-8 name";
        return null;
    }

    /// <summary>The first of a list's items' <see cref="TextProblem(OptionInfo, string)"/>, or null.</summary>
    public static string? TextProblem(OptionInfo option, IEnumerable<string> items) =>
        items.Select(item => TextProblem(option, item)).FirstOrDefault(problem => problem is not null);

    static object Number(OptionInfo option, Type type, string text)
    {
        if (type == typeof(int) && int.TryParse(text, NumberStyles.Integer, CultureInfo.InvariantCulture, out var i)) return i;
        if (type == typeof(double) && double.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out var d)) return d;
        if (type == typeof(int) && long.TryParse(text, NumberStyles.Integer, CultureInfo.InvariantCulture, out var wide))
            throw new OptionException($"--{option.Name} must be in [{IntegerBounds(option.Declaration)}], got {wide}");
        string what = type == typeof(double) ? "a number" : "an integer";
        throw new OptionException($"--{option.Name} needs {what}{(Range(option.Declaration) is { } r ? $" ({r})" : "")}, got '{Quoted.Printable(text)}'");
    }

    /// <summary>Checks every declared range, choice and required option of <paramref name="options"/>.</summary>
    public static void Validate(T options) => Validate(options, _ => true);

    /// <summary>Checks the options whose names pass <paramref name="which"/>, as <see cref="Validate(T)"/>.</summary>
    public static void Validate(T options, Func<string, bool> which)
    {
        foreach (var option in Options.Where(o => which(o.Name)))
        {
            var value = option.Property.GetValue(options);
            var d = option.Declaration;
            if (value is null || value is string { Length: 0 })
            {
                if (d.Required) throw new OptionException($"--{option.Name} is required ({d.Help})");
                continue;
            }
            if (value is Enum choice && !Enum.IsDefined(choice.GetType(), choice))
                throw new OptionException($"--{option.Name} must be one of {Choices.Words(choice.GetType())}, got {choice}");
            var numbers = value switch
            {
                int i => [i],
                double x => [x],
                int[] a => a.Select(v => (double)v).ToArray(),
                double[] a => a,
                _ => Array.Empty<double>(),
            };
            if (numbers.GroupBy(x => x).FirstOrDefault(g => g.Count() > 1) is { } repeated) // each item is a run, a probe or a timing of its own
                throw new OptionException($"--{option.Name} must be distinct, got {string.Join(",", numbers.Select(x => x.ToString(CultureInfo.InvariantCulture)))} ({repeated.Key.ToString(CultureInfo.InvariantCulture)} {(repeated.Count() == 2 ? "twice" : $"{repeated.Count()} times")})");
            foreach (var x in numbers)
                if (!InRange(d, x))
                {
                    string rule = Range(d) is not { } r ? "finite" : WithinBounds(d, x) ? "finite and " + r : r; // "> 0, got Infinity" reads as a pass
                    throw new OptionException($"--{option.Name} must be {rule}, got {x.ToString(CultureInfo.InvariantCulture)}");
                }
        }
    }

    static bool InRange(OptionAttribute d, double x) => double.IsFinite(x) && WithinBounds(d, x);

    static bool WithinBounds(OptionAttribute d, double x) =>
        (double.IsNaN(d.Min) || (d.MinExclusive ? x > d.Min : x >= d.Min))
        && (double.IsNaN(d.Max) || (d.MaxExclusive ? x < d.Max : x <= d.Max));

    /// <summary>"LOW, HIGH": the integers an int option takes (its declared range within int's).</summary>
    public static string IntegerBounds(OptionAttribute d)
    {
        double low = double.IsNaN(d.Min) ? int.MinValue : System.Math.Max(int.MinValue, d.MinExclusive ? System.Math.Floor(d.Min) + 1 : System.Math.Ceiling(d.Min));
        double high = double.IsNaN(d.Max) ? int.MaxValue : System.Math.Min(int.MaxValue, d.MaxExclusive ? System.Math.Ceiling(d.Max) - 1 : System.Math.Floor(d.Max));
        return $"{low.ToString(CultureInfo.InvariantCulture)}, {high.ToString(CultureInfo.InvariantCulture)}";
    }

    /// <summary>The allowed range in words ("≥ 1", "in [0, 1)", …), or null when any finite value goes.</summary>
    public static string? Range(OptionAttribute d)
    {
        string F(double v) => v.ToString(CultureInfo.InvariantCulture);
        bool low = !double.IsNaN(d.Min), high = !double.IsNaN(d.Max);
        if (low && high) return $"in {(d.MinExclusive ? "(" : "[")}{F(d.Min)}, {F(d.Max)}{(d.MaxExclusive ? ")" : "]")}";
        if (low) return $"{(d.MinExclusive ? ">" : "≥")} {F(d.Min)}";
        if (high) return $"{(d.MaxExclusive ? "<" : "≤")} {F(d.Max)}";
        return null;
    }

    static string Placeholder(OptionInfo option)
    {
        if (option.Declaration.Value is { } v) return v;
        var type = option.ValueType;
        if (type.IsEnum) return Choices.Words(type);
        if (type.IsArray) return type.GetElementType() == typeof(string) ? "A,B,…" : "N,N,…";
        return type == typeof(double) ? "X" : type == typeof(string) ? "TEXT" : "N";
    }

    static string DefaultText(OptionInfo option, T defaults)
    {
        if (option.Declaration.Default is { } words) return words;
        return option.Property.GetValue(defaults) switch
        {
            null => "none",
            string { Length: 0 } => "none",
            string s => s,
            bool b => b ? "true" : "false",
            Enum e => e.Word(),
            double x => x.ToString("G", CultureInfo.InvariantCulture),
            Array { Length: 0 } => "none",
            Array a => string.Join(",", a.Cast<object>().Select(e => Convert.ToString(e, CultureInfo.InvariantCulture))),
            var other => Convert.ToString(other, CultureInfo.InvariantCulture) ?? "",
        };
    }

    /// <summary>The help of the command: summary, usage, every option with default and range, notes.</summary>
    public static string Help(T? defaults = null, string? moreOptions = null)
    {
        var command = Command;
        var text = new StringBuilder();
        text.AppendLine($"croc-host {command.Name}: {command.Summary}");
        text.AppendLine();
        var required = string.Concat(Options.Where(o => o.Declaration.Required).Select(o => $" --{o.Name} {Placeholder(o)}"));
        text.AppendLine($"Usage: croc-host {command.Name}{required} [options]");
        text.AppendLine();
        text.AppendLine("Options (--name value, --name=value; lists are comma-separated):");
        text.Append(moreOptions);
        text.Append(OptionLines(defaults));
        text.AppendLine("  --help                      this help");
        if (command.Notes is { } notes) text.AppendLine().AppendLine(notes.TrimEnd());
        return text.ToString().TrimEnd() + "\n";
    }

    /// <summary>One entry per option: `--name VALUE`, its meaning, its default and its allowed values.</summary>
    public static string OptionLines(T? defaults = null)
    {
        defaults ??= new T();
        var text = new StringBuilder();
        foreach (var option in Options)
        {
            var d = option.Declaration;
            var head = option.IsFlag ? $"  --{option.Name}" : $"  --{option.Name} {Placeholder(option)}";
            var facts = new List<string> { d.Required ? "required" : $"default {DefaultText(option, defaults)}" };
            if (Range(d) is { } r) facts.Add(r);
            text.Append(head.PadRight(30));
            if (head.Length >= 30) text.AppendLine().Append(new string(' ', 30));
            text.AppendLine(Wrap($"{d.Help} [{string.Join("; ", facts)}]", 30, 100));
        }
        return text.ToString();
    }

    static string Wrap(string line, int indent, int width)
    {
        var result = new StringBuilder();
        int column = indent;
        foreach (var word in line.Split(' '))
        {
            if (column > indent && column + 1 + word.Length > width)
            {
                result.AppendLine().Append(new string(' ', indent));
                column = indent;
            }
            else if (column > indent) { result.Append(' '); column++; }
            result.Append(word);
            column += word.Length;
        }
        return result.ToString();
    }
}
