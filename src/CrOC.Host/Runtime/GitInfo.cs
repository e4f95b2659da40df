using System.Reflection;

namespace CrOC.Host.Runtime;

/// <summary>The git commit this binary was built from, for run records and model cards.</summary>
public static class GitInfo
{
    /// <summary>The short commit hash the SDK embedded at build time ("0.1.0+HASH"), with "-dirty" when
    /// the tree had uncommitted changes to tracked files (build/GitDirty.targets), or "unknown" for a
    /// build outside a git checkout; never the current folder's repository, which may be another.</summary>
    public static string Commit { get; } = Embedded(typeof(GitInfo).Assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion);

    /// <summary>"HASH7" or "HASH7-dirty" of an informational version "VERSION+HASH[-dirty]".</summary>
    public static string Embedded(string? version)
    {
        if (version?.IndexOf('+') is not int plus || plus < 0 || version.Length == plus + 1) return "unknown";
        var revision = version[(plus + 1)..];
        bool dirty = revision.EndsWith("-dirty", StringComparison.Ordinal);
        var hash = dirty ? revision[..^"-dirty".Length] : revision;
        return hash[..System.Math.Min(7, hash.Length)] + (dirty ? "-dirty" : "");
    }
}
