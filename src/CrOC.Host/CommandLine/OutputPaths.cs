using CrOC.Data;

namespace CrOC.Host.CommandLine;

/// <summary>Checks that outputs can be written before long work starts (<see cref="OutputException"/>, exit 2).</summary>
public static class OutputPaths
{
    /// <summary>How a refusal names an --output that may be defaulted beside --weights (it said "--output 'FOLDER'" when none was given, once).</summary>
    public static string OutputBesideWeights(string? given) => given is null ? "--output (by default beside --weights)" : "--output";

    /// <summary>A file to be written at <paramref name="path"/>: not a folder, and its folder
    /// exists (or can be made) and takes a new file. Returns the full path.</summary>
    public static string File(string path, string option)
    {
        var full = Path.GetFullPath(NotEmpty(path, option));
        if (Path.GetFileName(path) is "." or ".." || Path.EndsInDirectorySeparator(path)) // made the folder, then failed after the work ("already exists"), once
            throw new OutputException($"{option} '{path}' names a folder, not a file: give the file's name");
        if (BrokenLink(full) is { } broken) throw new OutputException($"{option} '{path}' is {broken}");
        if (Directory.Exists(full)) throw new OutputException($"{option} '{path}' is a folder, not a file");
        if (PathLimits.Problem(full) is { } tooLong) throw new OutputException($"{option} '{path}' cannot be written: {tooLong}");
        Folder(Path.GetDirectoryName(full)!, option);
        return full;
    }

    /// <summary>A file that a rerun of the command rewrites (as <see cref="File"/>): never one of the
    /// command's <paramref name="inputs"/>, and when it exists, an earlier output of the command
    /// (<paramref name="isEarlierOutput"/>; <paramref name="kind"/> names it in the refusal): that
    /// is replaced, no other file is.</summary>
    public static string Replaceable(string path, string option, string kind, Func<string, bool> isEarlierOutput, params string[] inputs)
    {
        var full = NotInput(path, option, inputs);
        if (System.IO.File.Exists(full) && !isEarlierOutput(full))
            throw new OutputException($"{option} '{path}' exists and is not {kind}, which a rerun would replace; choose another path");
        return full;
    }

    /// <summary>Whether <paramref name="path"/> holds a JSON object with the member <paramref name="key"/>
    /// (an evaluation's result: "miou", "top1"), not a run's config.json or any other JSON file. A
    /// result is small: only its first MiB is read (a FIFO, a device or a huge file is no result).</summary>
    public static bool IsJsonResult(string path, string key)
    {
        if (CrOC.Data.RegularFile.ReadAtMost(path, 1 << 20) is not { } bytes) return false;
        try { return StrictJson.Parse(bytes) is System.Text.Json.Nodes.JsonObject o && o.ContainsKey(key); }
        catch (System.Text.Json.JsonException) { return false; }
    }

    /// <summary>A file to be written (as <see cref="File"/>) that is none of the command's <paramref name="inputs"/>.</summary>
    public static string NotInput(string path, string option, params string[] inputs)
    {
        var full = File(path, option);
        if (System.IO.File.Exists(full) && RealPaths.Of(full) is var real && inputs.Distinct().Any(input => RealPaths.Of(input) == real)) // a link to the input is the input
            throw new OutputException($"{option} '{path}' is this command's input file; choose another path");
        return full;
    }

    /// <summary>Renames the file or folder <paramref name="path"/> to PATH.SUFFIX (PATH.SUFFIX-2, …
    /// when taken), never over another; returns the new name.</summary>
    public static string SetAside(string path, string suffix)
    {
        var aside = Enumerable.Range(1, int.MaxValue - 1).Select(n => $"{path}.{suffix}{(n == 1 ? "" : $"-{n}")}").First(p => !System.IO.File.Exists(p) && !Directory.Exists(p));
        if (Directory.Exists(path)) Directory.Move(path, aside);
        else System.IO.File.Move(path, aside);
        return aside;
    }

    /// <summary>What the symbolic link <paramref name="full"/> is when the kernel finds nothing at its
    /// end (a link to a missing path, or a loop), or null (no link, or a link to something).</summary>
    static string? BrokenLink(string full)
    {
        var link = new FileInfo(full);
        if (link.LinkTarget is null) return null;
        const int LinkLoop = 40; // ELOOP
        return RealPaths.ResolveError(full) switch
        {
            null => null,
            LinkLoop => $"a link that leads back to itself ('{link.LinkTarget}')",
            _ => $"a link to '{link.LinkTarget}', which does not exist",
        };
    }

    static string NotEmpty(string path, string option) =>
        string.IsNullOrWhiteSpace(path) ? throw new OutputException($"{option} is empty: give a path") : path;

    /// <summary>A folder at <paramref name="path"/> that exists (or can be made) and takes new files. Returns the full path.</summary>
    public static string Folder(string path, string option)
    {
        var full = Path.TrimEndingDirectorySeparator(Path.GetFullPath(NotEmpty(path, option))); // "runs/a/" is "runs/a": DIR.old-* lands beside it
        if (BrokenLink(full) is { } broken) throw new OutputException($"{option} '{path}' is {broken}"); // "is a file, not a folder" once
        if (System.IO.File.Exists(full)) throw new OutputException($"{option} '{path}' is a file, not a folder");
        if (PathLimits.Problem(full) is { } tooLong) throw new OutputException($"{option} '{path}' cannot be written: {tooLong}");
        if (PathLimits.Bytes(full) > PathLimits.PathBytes - PathLimits.RoomBelowFolder) // its files' paths (checkpoints/step-….safetensors and their temporary names) would pass the limit after the work
            throw new OutputException($"{option} '{path}' is {PathLimits.Bytes(full)} bytes long: the files written in it would pass the {PathLimits.PathBytes}-byte limit of a path; keep it under {PathLimits.PathBytes - PathLimits.RoomBelowFolder} bytes");
        if (DiskSpace.NearestExisting(full) is var above && System.IO.File.Exists(above)) // full itself is not a file (above)
            throw new OutputException($"{option} '{path}' lies below '{above}', which is a file, not a folder");
        try
        {
            MadeFolders.Make(full);
            var probe = Path.Combine(full, $".croc-write-test-{Environment.ProcessId}-{Guid.NewGuid():N}");
            try { System.IO.File.WriteAllBytes(probe, [0]); } // a byte: an empty file is made on a full disk too, whose results were lost after the work once
            finally { if (System.IO.File.Exists(probe)) System.IO.File.Delete(probe); }
        }
        catch (IOException e) when (DiskSpace.IsDiskFull(e)) // exit 1 as any full disk: it may clear, so a requeue may retry
        {
            throw new IOException($"{option} '{path}' cannot be written: not one byte fits on its disk", e.HResult);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            // a folder that exists yet "cannot find" a file being created in it: /dev/fd (a pipe's `>(…)`), /proc, /sys
            var reason = e is FileNotFoundException && Directory.Exists(full)
                ? "no new file can be made in it (outputs are written as a new file beside their name, then renamed into place, so a pipe's /dev/fd path or /proc cannot take one)"
                : e.Message;
            throw new OutputException($"{option} '{path}' cannot be written: {reason}");
        }
        return full;
    }
}
