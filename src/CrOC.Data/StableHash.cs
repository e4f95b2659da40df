namespace CrOC.Data;

/// <summary>
/// 32-bit FNV-1a over UTF-16 code units: the same value in every process and on every machine
/// (string.GetHashCode is randomised per process), so processes can compare what they read.
/// </summary>
public static class StableHash
{
    public const uint Empty = 2166136261;

    /// <summary>The hash of <paramref name="text"/>.</summary>
    public static uint Of(string text) => Add(Empty, text);

    /// <summary><paramref name="hash"/> continued over <paramref name="text"/>'s characters.</summary>
    public static uint Add(uint hash, ReadOnlySpan<char> text)
    {
        foreach (char c in text) hash = (hash ^ c) * 16777619;
        return hash;
    }
}
