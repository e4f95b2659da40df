using System.Runtime.InteropServices;

namespace CrOC.Data;

/// <summary>Paths with every symbolic link resolved, so that an output reached through a link is
/// recognised as the input (or the dataset folder) it is, and a folder reached twice as one.</summary>
public static class RealPaths
{
    [DllImport("libc", SetLastError = true)] static extern IntPtr realpath(string path, IntPtr resolved);
    [DllImport("libc")] static extern void free(IntPtr pointer);

    /// <summary>Why the kernel cannot resolve <paramref name="path"/> (realpath(3)'s errno: 2 for a link
    /// to nothing, 40 for a loop), or null when it names something. Links are followed as the
    /// kernel does, a relative target from the link's real folder (a link's own text may not say).</summary>
    public static int? ResolveError(string path)
    {
        var resolved = realpath(path, IntPtr.Zero);
        if (resolved == IntPtr.Zero) return Marshal.GetLastPInvokeError();
        free(resolved);
        return null;
    }

    /// <summary>The absolute path of <paramref name="path"/> with links resolved: realpath(3) of its
    /// longest existing prefix, the parts that do not exist yet appended as written.</summary>
    public static string Of(string path)
    {
        var head = Path.TrimEndingDirectorySeparator(Path.GetFullPath(path));
        var tail = "";
        while (true)
        {
            var resolved = realpath(head, IntPtr.Zero);
            if (resolved != IntPtr.Zero)
            {
                try { return tail.Length == 0 ? Marshal.PtrToStringUTF8(resolved)! : Path.Join(Marshal.PtrToStringUTF8(resolved), tail); }
                finally { free(resolved); }
            }
            if (Path.GetDirectoryName(head) is not { } parent) return Path.GetFullPath(path);
            tail = tail.Length == 0 ? Path.GetFileName(head) : Path.Join(Path.GetFileName(head), tail);
            head = parent;
        }
    }
}
