using System.Globalization;
using System.Reflection;
using System.Text;
using System.Text.Json;

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

    /// <summary>Sets the options named by <paramref name="pairs"/> on <paramref name="target"/>, a fresh instance owned by the caller.</summary>
    public static void Apply(T target, IEnumerable<(string Name, string? Value)> pairs)
    {
        foreach (var (name, value) in pairs)
        {
            if (name == "help") continue;
            var option = Find(name) ?? throw new OptionException($"unknown option --{name}{Suggestion(name)}");
            option.Property.SetValue(target, ParseValue(option, value));
        }
    }

    /// <summary>" (did you mean --NAME?)" for the options that have <paramref name="name"/> as one of their
    /// words (--size: --image-size), else the option nearest to it by edits, or "".</summary>
    public static string Suggestion(string name)
    {
        var holding = Options.Select(o => o.Name).Where(n => n != name && n.Split('-').Contains(name)).Take(3).ToList();
        if (holding.Count > 0) return $" (did you mean {string.Join(" or ", holding.Select(n => "--" + n))}?)"; // train's --size had no suggestion once
        var close = Options.Select(o => o.Name).OrderBy(n => Distance(n, name)).FirstOrDefault();
        return close is not null && Distance(close, name) <= System.Math.Max(2, name.Length / 3) ? $" (did you mean --{close}?)" : "";
    }

    static int Distance(string a, string b)
    {
        var row = Enumerable.Range(0, b.Length + 1).ToArray();
        for (int i = 1; i <= a.Length; i++)
        {
            int diagonal = row[0];
            row[0] = i;
            for (int j = 1; j <= b.Length; j++)
            {
                int above = row[j];
                row[j] = System.Math.Min(System.Math.Min(row[j] + 1, row[j - 1] + 1), diagonal + (a[i - 1] == b[j - 1] ? 0 : 1));
                diagonal = above;
            }
        }
        return row[b.Length];
    }

    static object? ParseValue(OptionInfo option, string? text)
    {
        var type = option.ValueType;
        if (type == typeof(bool))
            return text is null || (text.ToLowerInvariant() switch
            {
                "true" or "1" or "yes" => true,
                "false" or "0" or "no" => false,
                _ => throw new OptionException($"--{option.Name} takes true or false (or nothing), got '{text}'"),
            });
        if (text is null) throw new OptionException($"--{option.Name} needs a value ({Placeholder(option)})");
        if (type == typeof(string) && (IsPath(option) || option.Declaration.Value is "NAME") && text.Trim().Length == 0) // "is required" once; a split '' looked for '.txt'
            throw new OptionException($"--{option.Name} needs a value ({Placeholder(option)}), got '{text}'");
        if (type == typeof(string)) return IsPath(option) ? CrOC.Data.ImageSources.HomeExpanded(text) : text; // `--output=~/x`: no shell expands ~ after '='
        if (type.IsEnum) return Choices.Parse(type, text) ?? throw new OptionException($"--{option.Name} must be one of {Choices.Words(type)}, got '{text}'");
        if (type.IsArray)
        {
            var element = type.GetElementType()!;
            var items = element == typeof(string) ? Arguments.PathItems(text) : Arguments.ListItems(text);
            if (Arguments.EmptyItems(items) is { } empty) throw new OptionException($"--{option.Name} {empty} ({Placeholder(option)}), got '{text}'");
            var array = Array.CreateInstance(element, items.Length);
            for (int i = 0; i < items.Length; i++) array.SetValue(element == typeof(string) ? items[i] : Number(option, element, items[i]), i);
            return array;
        }
        return Number(option, type, text);
    }

    /// <summary>Whether the option's value is a path (FILE, DIR, PATH, PNG, ROOT), whose leading ~/ is the home folder.</summary>
    static bool IsPath(OptionInfo option) => option.Declaration.Value is "FILE" or "DIR" or "PATH" or "PNG" or "ROOT";

    static object Number(OptionInfo option, Type type, string text)
    {
        if (type == typeof(int) && int.TryParse(text, NumberStyles.Integer, CultureInfo.InvariantCulture, out var i)) return i;
        if (type == typeof(double) && double.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out var d)) return d;
        if (type == typeof(int) && long.TryParse(text, NumberStyles.Integer, CultureInfo.InvariantCulture, out var wide))
            throw new OptionException($"--{option.Name} must lie in [{IntegerBounds(option.Declaration)}], got {wide}");
        string what = type == typeof(double) ? "a number" : "an integer";
        throw new OptionException($"--{option.Name} needs {what}{(Range(option.Declaration) is { } r ? $" ({r})" : "")}, got '{text}'");
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
