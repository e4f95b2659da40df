using System.Reflection;

namespace CrOC.Host.Runtime;

/// <summary>The git commit this binary was built from, for run records and model cards.</summary>
public static class GitInfo
{
    /// <summary>The short commit hash the SDK embedded at build time ("0.1.0+HASH"), or "unknown" for a
    /// build outside a git checkout; never the current folder's repository, which may be another.</summary>
    public static string Commit { get; } = Embedded(typeof(GitInfo).Assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion);

    static string Embedded(string? version) =>
        version?.IndexOf('+') is int plus and >= 0 && version.Length > plus + 1 ? version[(plus + 1)..][..System.Math.Min(7, version.Length - plus - 1)] : "unknown";
}
