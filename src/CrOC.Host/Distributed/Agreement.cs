using System.Text.Json;
using CrOC.Data;
using CrOC.Host.CommandLine;
using TorchSharp;

namespace CrOC.Host.Distributed;

/// <summary>
/// Checks, before the collectives that depend on them, that every rank was started with the same
/// values: collectives matched across different sizes or counts corrupt memory or hang. Every rank
/// meets the same check, so all end with the same <see cref="RanksDisagreeException"/> (exit 2).
/// </summary>
public static class Agreement
{
    /// <summary>Refuses a <paramref name="value"/> that differs between the ranks (one all-gather).</summary>
    public static void Agree(this ICollective ranks, string what, double value, string advice, bool showValues = true)
    {
        if (ranks.World == 1) return;
        var seen = ranks.AllGatherValues(value);
        if (seen.Distinct().Count() > 1)
            throw new RanksDisagreeException($"the processes disagree on {what}{(showValues ? $" ({string.Join(", ", seen)})" : "")}: {advice}");
    }

    /// <summary>Refuses settings (name, value as text) whose values differ between the ranks, naming
    /// them: their count first, then a hash of each value gathered from every rank (one all-gather,
    /// the same count on each). `--precision auto` resolves per machine, so mixed CPUs differ there.</summary>
    public static void AgreeOnSettings(this ICollective ranks, IReadOnlyList<(string Key, string Value)> settings, string advice = "every process needs the same options")
    {
        if (ranks.World == 1) return;
        ranks.Agree("the number of settings", settings.Count, "every machine needs the same croc-host build");
        double[] seen;
        using (torch.NewDisposeScope())
            seen = ranks.AllGather(torch.tensor(settings.Select(s => (double)StableHash.Of(s.Value)).ToArray(), torch.float64)).data<double>().ToArray(); // (W · n), rank-major
        var differing = settings.Where((_, i) => Enumerable.Range(0, ranks.World).Select(r => seen[r * settings.Count + i]).Distinct().Count() > 1).Select(s => s.Key).ToList();
        if (differing.Count == 0) return;
        var precision = differing.Contains("precision") ? " (--precision auto picks bf16 per machine: give --precision bf16 or fp32 on machines of different CPUs)" : "";
        throw new RanksDisagreeException($"the processes disagree on the setting(s) {string.Join(", ", differing)}{precision}: {advice}");
    }

    /// <summary>A command's options as settings: each option's name and its value as JSON.</summary>
    public static List<(string Key, string Value)> SettingsOf<T>(T options) where T : class, new() =>
        OptionSet<T>.Options.Select(o => (o.Name, JsonSerializer.Serialize(o.Property.GetValue(options), o.Property.PropertyType))).ToList();
}
