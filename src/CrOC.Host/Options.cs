namespace CrOC.Host;

/// <summary>A bad command line, reported with exit code 2.</summary>
public sealed class OptionException(string message) : Exception(message);

/// <summary>`--name value` pairs and `--flag`s of a subcommand.</summary>
public sealed class Options
{
    readonly Dictionary<string, string?> values;

    Options(Dictionary<string, string?> values) => this.values = values;

    public bool Help => values.ContainsKey("help");

    /// <summary>The `--name value`, `--name=value` (a value may then start with --) and `--flag`
    /// arguments in order; `-h` is `--help`.</summary>
    public static List<(string Name, string? Value)> Pairs(string[] args)
    {
        var pairs = new List<(string, string?)>();
        for (int i = 0; i < args.Length; i++)
        {
            if (args[i] is "-h") { pairs.Add(("help", null)); continue; }
            if (!args[i].StartsWith("--", StringComparison.Ordinal))
                throw new OptionException($"unexpected argument '{args[i]}'");
            var name = args[i][2..];
            int equals = name.IndexOf('=');
            if (equals >= 0) { pairs.Add((name[..equals], name[(equals + 1)..])); continue; }
            bool hasValue = i + 1 < args.Length && !args[i + 1].StartsWith("--", StringComparison.Ordinal);
            pairs.Add((name, hasValue ? args[++i] : null));
        }
        return pairs;
    }

    public static Options Parse(string[] args)
    {
        var values = new Dictionary<string, string?>();
        foreach (var (name, value) in Pairs(args)) values[name] = value;
        return new Options(values);
    }

    /// <summary>The integer option <paramref name="name"/>, or <paramref name="fallback"/>; must be ≥ 1.</summary>
    public int PositiveInt(string name, int fallback) => Int(name, fallback, 1, "a positive integer");

    /// <summary>The integer option <paramref name="name"/>, or <paramref name="fallback"/>; must be ≥ 0 (seeds).</summary>
    public int NonNegativeInt(string name, int fallback) => Int(name, fallback, 0, "an integer ≥ 0");

    int Int(string name, int fallback, int least, string what)
    {
        if (!values.Remove(name, out var text)) return fallback;
        if (!int.TryParse(text, out var value) || value < least)
            throw new OptionException($"--{name} needs {what}, got '{text}'");
        return value;
    }

    /// <summary>The number option <paramref name="name"/>, or <paramref name="fallback"/>.</summary>
    public double Number(string name, double fallback)
    {
        if (!values.Remove(name, out var text)) return fallback;
        if (!double.TryParse(text, System.Globalization.NumberStyles.Float, System.Globalization.CultureInfo.InvariantCulture, out var value))
            throw new OptionException($"--{name} needs a number, got '{text}'");
        return value;
    }

    public bool Has(string name) => values.ContainsKey(name);

    /// <summary>A flag without value (e.g. --non-strict).</summary>
    public bool Flag(string name)
    {
        if (!values.Remove(name, out var text)) return false;
        if (text is not null) throw new OptionException($"--{name} takes no value, got '{text}'");
        return true;
    }

    /// <summary>The text option <paramref name="name"/>, or null when absent.</summary>
    public string? Text(string name)
    {
        if (!values.Remove(name, out var text)) return null;
        return text ?? throw new OptionException($"--{name} needs a value");
    }

    public string Required(string name) => Text(name) ?? throw new OptionException($"--{name} is required");

    /// <summary>The option <paramref name="name"/>, one of <paramref name="allowed"/>, or <paramref name="fallback"/>.</summary>
    public string Choice(string name, string fallback, string[] allowed)
    {
        if (!values.Remove(name, out var text)) return fallback;
        if (text is null || !allowed.Contains(text))
            throw new OptionException($"--{name} must be one of {string.Join("|", allowed)}, got '{text}'");
        return text;
    }

    /// <summary>Fails on any option that no one asked for.</summary>
    public void RejectUnknown()
    {
        values.Remove("help");
        if (values.Count > 0)
            throw new OptionException($"unknown option(s): {string.Join(", ", values.Keys.Select(k => "--" + k))}");
    }
}
