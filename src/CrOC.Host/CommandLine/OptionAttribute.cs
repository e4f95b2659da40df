namespace CrOC.Host.CommandLine;

/// <summary>
/// Declares a property of an options record as the command-line option `--kebab-name`: one line
/// of meaning, and the allowed values (a numeric range, checked for every element of a list, and
/// finite for reals; or a set of choices). The property's initial value is the default. The help,
/// the parser and the validation are all generated from these declarations (<see cref="OptionSet{T}"/>).
/// </summary>
[AttributeUsage(AttributeTargets.Property)]
public sealed class OptionAttribute(string help) : Attribute
{
    public string Help { get; } = help;
    /// <summary>Least allowed value (NaN: no bound).</summary>
    public double Min { get; init; } = double.NaN;
    /// <summary>Largest allowed value (NaN: no bound).</summary>
    public double Max { get; init; } = double.NaN;
    public bool MinExclusive { get; init; }
    public bool MaxExclusive { get; init; }
    public bool Required { get; init; }
    /// <summary>The value's placeholder in the help (N, X, FILE, …); derived from the type when null.</summary>
    public string? Value { get; init; }
    /// <summary>The default in words, where the initial value does not say it (e.g. "the preset's").</summary>
    public string? Default { get; init; }
}

/// <summary>Names a subcommand's options record: the command, a one-line summary and notes for its help.</summary>
[AttributeUsage(AttributeTargets.Class)]
public sealed class CommandAttribute(string name, string summary) : Attribute
{
    public string Name { get; } = name;
    public string Summary { get; } = summary;
    /// <summary>Text after the option list: examples, exit codes, advice.</summary>
    public string? Notes { get; init; }
}
