using System.Text;

namespace CrOC.Host.CommandLine;

/// <summary>
/// Linux's limits on paths, in UTF-8 bytes: a whole path at most 4095 (PATH_MAX with its ending
/// zero), one name at most 255 (NAME_MAX). An output is checked against them before the work, as
/// its folder is checked to take a new file, so a long path does not fail at the first write.
/// </summary>
public static class PathLimits
{
    public const int PathBytes = 4095, NameBytes = 255;

    /// <summary>The room a folder's path keeps below the path limit for what the program writes in
    /// it: a subfolder (checkpoints/, tensorboard/) and a file name with its temporary suffix.</summary>
    public const int RoomBelowFolder = 256;

    public static int Bytes(string text) => Encoding.UTF8.GetByteCount(text);

    /// <summary>Whether the full path <paramref name="full"/> is within both limits.</summary>
    public static bool Fits(string full) => Problem(full) is null;

    /// <summary>Why <paramref name="full"/> cannot be written, or null when it fits.</summary>
    public static string? Problem(string full) =>
        full.Split('/').FirstOrDefault(name => Bytes(name) > NameBytes) is { } longName
            ? $"the name '{Start(longName)}…' is {Bytes(longName)} bytes long, more than the {NameBytes} a file or folder name may have"
            : Bytes(full) > PathBytes ? $"the path is {Bytes(full)} bytes long, more than the {PathBytes} a path may have" : null;

    /// <summary>The first 24 chars of a long name (it has more than 85: a char is at most 3 bytes of UTF-8), one
    /// fewer where the 24th begins a surrogate pair (half an emoji printed as '?' once).</summary>
    static string Start(string longName) => longName[..(char.IsHighSurrogate(longName[23]) ? 23 : 24)];
}
