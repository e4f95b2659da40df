using System.Text;

namespace CrOC.Data;

/// <summary>A regular file inside a tar archive: its name and where its bytes lie.</summary>
public sealed record TarMember(string Name, long Offset, long Length);

/// <summary>
/// The members of an uncompressed tar archive (POSIX ustar, GNU long names, pax path/size records),
/// found in one sequential pass over the 512-byte headers that seeks past the data; nothing is
/// extracted. Members are then read by offset, so any member can be read by any worker in any order.
/// Untrusted input: a bad header checksum, a size that runs past the end of the file or a malformed
/// record ends the index there; the members before it are kept and <see cref="Problem"/> says why.
/// As extracting the archive would: a name given twice is its last member; a hard link is the member
/// it names before it, a symbolic link the regular member its target names (resolved in the archive);
/// a link naming nothing in the archive is left out and counted in <see cref="Notes"/>.
/// </summary>
public sealed class TarArchive
{
    const int Block = 512;
    /// <summary>Longest GNU long name or pax header accepted.</summary>
    const long MaxMetadataBytes = 1 << 20;

    public string Path { get; }
    /// <summary>Regular-file members (and links resolved to them) in archive order, one per name.</summary>
    public IReadOnlyList<TarMember> Members { get; }
    /// <summary>Why indexing stopped early (a damaged or truncated archive), or null.</summary>
    public string? Problem { get; }
    /// <summary>What indexing left out or chose (unresolved links, names given twice), one line each.</summary>
    public IReadOnlyList<string> Notes { get; }

    TarArchive(string path, IReadOnlyList<TarMember> members, string? problem, IReadOnlyList<string> notes) =>
        (Path, Members, Problem, Notes) = (path, members, problem, notes);

    public static bool IsArchive(string path) => path.EndsWith(".tar", StringComparison.OrdinalIgnoreCase);

    /// <summary>Indexes <paramref name="path"/>; throws <see cref="DatasetException"/> when it cannot be opened.</summary>
    public static TarArchive Open(string path)
    {
        try
        {
            // a FIFO is refused, not waited for (every data command hung on one; with a writer, its Length was an internal error)
            using var stream = RegularFile.Open(path, out var whyNot) ?? throw new DatasetException($"cannot read the archive '{path}': {whyNot}");
            var entries = new List<TarEntry>();
            var problem = Index(stream, entries);
            var (members, notes) = TarLinks.Resolve(entries);
            return new TarArchive(System.IO.Path.GetFullPath(path), members, problem is null ? null : $"{path}: {problem}", [.. notes.Select(n => $"{path}: {n}")]);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new DatasetException($"cannot read the archive '{path}': {e.Message}");
        }
    }

    /// <summary>Fills <paramref name="members"/> with the file and link entries in archive order;
    /// returns why it stopped early, or null at a clean end.</summary>
    static string? Index(Stream stream, List<TarEntry> members)
    {
        var header = new byte[Block];
        long length = stream.Length;
        string? longName = null, longLink = null, paxPath = null, paxLink = null;
        long? paxSize = null;
        while (true)
        {
            long at = stream.Position;
            int read = stream.ReadAtLeast(header, Block, throwOnEndOfStream: false);
            if (read == 0) return null; // no end-of-archive blocks: tolerated
            if (read < Block) return $"truncated header at byte {at}";
            if (header.All(b => b == 0)) return null; // end-of-archive
            if (!ChecksumMatches(header)) return $"bad header checksum at byte {at} (damaged archive); {members.Count} members before it are used";
            if (!TryOctal(header.AsSpan(124, 12), out long size) || size < 0) return $"bad member size at byte {at}";
            long data = at + Block;
            if (size > length - data) return $"member at byte {at} claims {size} bytes but the file ends {length - data} bytes later (truncated archive)";
            char type = (char)header[156];
            switch (type)
            {
                case 'L' or 'K' or 'x':
                    if (size > MaxMetadataBytes) return $"{(type == 'x' ? "pax header" : "long name")} of {size} bytes at byte {at}";
                    var bytes = new byte[size];
                    stream.ReadExactly(bytes);
                    if (type == 'L') longName = Encoding.UTF8.GetString(bytes).TrimEnd('\0');
                    else if (type == 'K') longLink = Encoding.UTF8.GetString(bytes).TrimEnd('\0');
                    else if (!TryPax(bytes, ref paxPath, ref paxLink, ref paxSize)) return $"malformed pax header at byte {at}";
                    break;
                case '0' or '\0' or '7' or '1' or '2':
                    if (paxSize is long s && type is not ('1' or '2'))
                    {
                        if (s < 0) return $"bad pax size of the member at byte {at} (not a count of bytes)"; // "-1 … runs past the end" once
                        if (s > length - data) return $"pax size {s} of the member at byte {at} runs past the end of the file (truncated archive)";
                        size = s;
                    }
                    var name = Relative(paxPath ?? longName ?? UstarName(header));
                    if (type is '1' or '2') members.Add(new TarEntry(name, 0, 0, type, paxLink ?? longLink ?? Field(header, 157, 100)));
                    else members.Add(new TarEntry(name, data, size, '0', null));
                    (longName, longLink, paxPath, paxLink, paxSize) = (null, null, null, null, null);
                    break;
                default: // directories, global pax headers, devices: not images
                    (longName, longLink, paxPath, paxLink, paxSize) = (null, null, null, null, null);
                    break;
            }
            long next = data + (size + Block - 1) / Block * Block;
            if (next > length) return null; // the last member's padding is missing: tolerated
            stream.Position = next;
        }
    }

    /// <summary>The header checksum: the sum of all bytes with the checksum field read as spaces.</summary>
    static bool ChecksumMatches(byte[] header)
    {
        if (!TryOctal(header.AsSpan(148, 8), out long stored)) return false;
        long sum = 0;
        for (int i = 0; i < Block; i++) sum += i is >= 148 and < 156 ? (byte)' ' : header[i];
        return sum == stored;
    }

    /// <summary>An octal field (NUL/space padded), or GNU's base-256 form (high bit of the first byte set).</summary>
    static bool TryOctal(ReadOnlySpan<byte> field, out long value)
    {
        value = 0;
        if (field.Length > 0 && (field[0] & 0x80) != 0)
        {
            if ((field[0] & 0x40) != 0) return false; // negative
            for (int i = 1; i < field.Length; i++)
            {
                if (value > (long.MaxValue >> 8)) return false;
                value = (value << 8) | field[i];
            }
            return true;
        }
        bool digits = false;
        foreach (var b in field)
        {
            if (b is (byte)' ' or 0) { if (digits) break; continue; }
            if (b is < (byte)'0' or > (byte)'7' || value > (long.MaxValue >> 3)) return false;
            value = (value << 3) | (long)(b - '0');
            digits = true;
        }
        return digits;
    }

    static string Field(byte[] header, int offset, int count) => Encoding.UTF8.GetString(header, offset, count).Split('\0')[0];

    static string UstarName(byte[] header)
    {
        var name = Field(header, 0, 100);
        bool ustar = Encoding.ASCII.GetString(header, 257, 5) == "ustar";
        var prefix = ustar ? Field(header, 345, 155) : "";
        return prefix.Length > 0 ? prefix + "/" + name : name;
    }

    /// <summary>A member's name without the "./" and "/" that `tar -C dir .` and absolute paths
    /// put before it, so "a.tar#train" and class folders see "train/…".</summary>
    internal static string Relative(string name)
    {
        while (true)
        {
            if (name.StartsWith("./", StringComparison.Ordinal)) name = name[2..];
            else if (name.StartsWith('/')) name = name[1..];
            else return name;
        }
    }

    /// <summary>pax records "LEN key=value\n": picks path, linkpath and size.</summary>
    static bool TryPax(byte[] bytes, ref string? path, ref string? link, ref long? size)
    {
        int at = 0;
        while (at < bytes.Length && bytes[at] != 0)
        {
            int space = Array.IndexOf(bytes, (byte)' ', at);
            // LEN counts the whole record: its digits, the space, key=value and the newline
            if (space < 0 || !int.TryParse(Encoding.ASCII.GetString(bytes, at, space - at), out int count) || count < space - at + 2
                || count > bytes.Length - at || bytes[at + count - 1] != (byte)'\n')
                return false;
            var record = Encoding.UTF8.GetString(bytes, space + 1, at + count - space - 2);
            int equals = record.IndexOf('=');
            if (equals < 0) return false;
            var (key, value) = (record[..equals], record[(equals + 1)..]);
            if (key == "path") path = value;
            else if (key == "linkpath") link = value;
            else if (key == "size") size = long.TryParse(value, out var s) ? s : -1;
            at += count;
        }
        return true;
    }

    /// <summary>The bytes of <paramref name="member"/>, read by offset (thread-safe).</summary>
    public byte[] Read(TarMember member) => ReadMember(Path, member.Offset, member.Length);

    /// <summary>The bytes of a file, or of the member "a.tar#path/in/archive" of an archive, refused
    /// beyond <paramref name="limit"/> bytes (counted as read: a device such as /dev/zero never ends).</summary>
    public static byte[] ReadFileOrMember(string path, int limit)
    {
        try
        {
            if (File.Exists(path)) return BoundedFile.ReadBytes(path, limit);
            if (Split(path) is not var (file, name)) throw new DatasetException($"'{path}' not found (a file, or archive.tar#member)");
            var archive = Open(file);
            var member = archive.Members.FirstOrDefault(m => m.Name == name) ?? throw new DatasetException($"'{name}' is not a member of {archive.Path}{(archive.Problem is null ? "" : $" ({archive.Problem})")}");
            return member.Length <= limit ? archive.Read(member) : throw new FileTooLargeException(path, limit);
        }
        catch (FileTooLargeException e) { throw new DatasetException(e.Message); }
    }

    /// <summary>"a.tar" or "a.tar#inside" as (archive, inside) when that archive exists.</summary>
    public static (string Archive, string Inside)? Split(string path) =>
        File.Exists(path) && IsArchive(path) ? (path, "")
        : SplitName(path) is var (archive, inside) && File.Exists(archive) ? (archive, inside) : null;

    /// <summary>"a.tar#inside" as (a.tar, inside), split by name alone at the first '#' whose left side
    /// names a .tar ("run#1/a.tar#train" after ".tar"; also a brace range or ~/ not yet expanded), or
    /// null; the inside without a leading "./" or "/", as <see cref="Relative"/> names members.</summary>
    public static (string Archive, string Inside)? SplitName(string path)
    {
        for (int at = path.IndexOf(ImageEntry.ArchiveSeparator); at >= 0; at = path.IndexOf(ImageEntry.ArchiveSeparator, at + 1))
            if (IsArchive(path[..at])) return (path[..at], Relative(path[(at + 1)..])); // "#./train" as the members are named
        return null;
    }

    internal static byte[] ReadMember(string archive, long offset, long length)
    {
        using var stream = RegularFile.OpenOrThrow(archive); // an archive renamed over by a FIFO mid-run is refused, not waited on
        var handle = stream.SafeFileHandle;
        var bytes = new byte[length];
        int done = 0;
        while (done < bytes.Length)
        {
            int n = RandomAccess.Read(handle, bytes.AsSpan(done), offset + done);
            if (n == 0) throw new EndOfStreamException($"{archive}: the member at byte {offset} ends early (the archive changed after it was indexed)");
            done += n;
        }
        return bytes;
    }
}
