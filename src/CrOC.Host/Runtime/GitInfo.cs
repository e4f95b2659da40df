using System.Diagnostics;

namespace CrOC.Host.Runtime;

/// <summary>The git commit of the working directory, for run records and model cards.</summary>
public static class GitInfo
{
    static readonly Lazy<string> commit = new(() =>
    {
        try
        {
            using var git = Process.Start(new ProcessStartInfo("git", "rev-parse --short HEAD") { RedirectStandardOutput = true, RedirectStandardError = true });
            if (git is null) return "unknown";
            var text = git.StandardOutput.ReadToEnd().Trim();
            git.WaitForExit();
            return git.ExitCode == 0 && text.Length > 0 ? text : "unknown";
        }
        catch (System.ComponentModel.Win32Exception)
        {
            return "unknown";
        }
    });

    /// <summary>The short commit hash, or "unknown" outside a git checkout.</summary>
    public static string Commit => commit.Value;
}
