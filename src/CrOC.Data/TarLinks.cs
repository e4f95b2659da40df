namespace CrOC.Data;

/// <summary>One file entry of a tar header, in archive order: a regular file (Type '0', Target null),
/// a hard link ('1') or a symbolic link ('2') to Target.</summary>
internal sealed record TarEntry(string Name, long Offset, long Length, char Type, string? Target);

/// <summary>
/// A tar archive's entries as extracting it leaves them: one member per name, links followed
/// inside the archive (never out of it), so a dataset reads the bytes `tar -x` would write.
/// </summary>
internal static class TarLinks
{
    /// <summary>The members as extraction leaves them: the last entry of each name, at its place in
    /// the archive; a hard link as the file its target names before it, a symbolic link as the regular
    /// file its target names (relative to the link's folder; through at most 8 links). Entries that
    /// resolve to no file in the archive are left out and counted.</summary>
    public static (List<TarMember> Members, List<string> Notes) Resolve(List<TarEntry> entries)
    {
        var last = new Dictionary<string, int>(StringComparer.Ordinal);
        var fileSoFar = new Dictionary<string, TarEntry>(StringComparer.Ordinal); // hard links see the archive up to them
        var hardResolved = new TarEntry?[entries.Count];
        int repeated = 0;
        for (int i = 0; i < entries.Count; i++)
        {
            var e = entries[i];
            if (!last.TryAdd(e.Name, i)) { repeated++; last[e.Name] = i; }
            hardResolved[i] = e.Type switch
            {
                '0' => e,
                '1' => fileSoFar.GetValueOrDefault(TarArchive.Relative(e.Target!)),
                _ => null,
            };
            if (hardResolved[i] is { } file) fileSoFar[e.Name] = file;
            else fileSoFar.Remove(e.Name);
        }
        TarEntry? FileOf(int index, int hops)
        {
            var e = entries[index];
            if (e.Type != '2') return hardResolved[index];
            return hops < 8 && Within(e.Name, e.Target!) is { } target && last.TryGetValue(target, out int to) ? FileOf(to, hops + 1) : null;
        }
        var members = new List<TarMember>();
        int unresolved = 0;
        foreach (int i in last.Values.Order())
        {
            if (FileOf(i, 0) is { } file) members.Add(new TarMember(entries[i].Name, file.Offset, file.Length));
            else unresolved++;
        }
        var notes = new List<string>();
        if (unresolved > 0) notes.Add($"{unresolved} link member(s) name no file in the archive and are left out");
        if (repeated > 0) notes.Add($"{repeated} member(s) repeat an earlier name: the last of each name is used, as extraction does");
        return (members, notes);
    }

    /// <summary>A symbolic link's target as a member name: relative to the link's folder ("/" the
    /// archive's root), "." and ".." applied; null when it climbs out of the archive.</summary>
    static string? Within(string link, string target)
    {
        var parts = new List<string>();
        var folder = target.StartsWith('/') ? "" : link.Contains('/') ? link[..link.LastIndexOf('/')] : "";
        foreach (var part in (folder + "/" + target).Split('/'))
        {
            if (part is "" or ".") continue;
            if (part != "..") parts.Add(part);
            else if (parts.Count == 0) return null;
            else parts.RemoveAt(parts.Count - 1);
        }
        return string.Join('/', parts);
    }
}
