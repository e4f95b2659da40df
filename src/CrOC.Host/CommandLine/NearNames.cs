namespace CrOC.Host.CommandLine;

/// <summary>The known name a mistyped one most likely meant: an option's, a command's.</summary>
public static class NearNames
{
    /// <summary>The longest name for which a near name is looked for (every known name is shorter; a 5 MB
    /// config key took 10 s of edit distances once).</summary>
    const int MaxLength = 64;

    /// <summary>The name of <paramref name="known"/> (other than <paramref name="name"/> itself) fewest
    /// edits from it, in any case, when those edits are at most a third of its length (at least one)
    /// and fewer than its letters (--h was "did you mean --lr?" once); else null.</summary>
    public static string? Nearest(string name, IEnumerable<string> known)
    {
        if (name.Length > MaxLength) return null;
        var lower = name.ToLowerInvariant();
        var close = known.Where(n => n != name).MinBy(n => Distance(n, lower));
        return close is not null && Distance(close, lower) is var edits && edits <= System.Math.Max(1, name.Length / 3) && edits < name.Length ? close : null;
    }

    /// <summary>Edits (insertions, deletions, substitutions, swaps of neighbours) between two names.</summary>
    static int Distance(string a, string b)
    {
        var d = new int[a.Length + 1, b.Length + 1];
        for (int i = 0; i <= a.Length; i++) d[i, 0] = i;
        for (int j = 0; j <= b.Length; j++) d[0, j] = j;
        for (int i = 1; i <= a.Length; i++)
            for (int j = 1; j <= b.Length; j++)
            {
                d[i, j] = System.Math.Min(System.Math.Min(d[i - 1, j] + 1, d[i, j - 1] + 1), d[i - 1, j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1));
                if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1]) d[i, j] = System.Math.Min(d[i, j], d[i - 2, j - 2] + 1);
            }
        return d[a.Length, b.Length];
    }
}
