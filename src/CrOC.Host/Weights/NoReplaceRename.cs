using System.Runtime.InteropServices;

namespace CrOC.Host.Weights;

/// <summary>Moves a file to a name that must stay free, in one step: Linux's renameat2 with
/// RENAME_NOREPLACE; where the file system refuses that flag, link(2) then unlink(2) (a link never
/// replaces either). .NET's File.Move without overwrite checks the name, then renames over whatever
/// appeared there since (two exports racing for one path left a mixed set so).</summary>
public static class NoReplaceRename
{
    const int AtCurrentFolder = -100, NoReplace = 1;
    const int EEXIST = 17, EINVAL = 22, ENOSYS = 38; // Linux's errno values

    [DllImport("libc", SetLastError = true)] static extern int renameat2(int fromFolder, string from, int toFolder, string to, uint flags);
    [DllImport("libc", SetLastError = true)] static extern int link(string from, string to);

    /// <summary>Moves <paramref name="source"/> to <paramref name="target"/>; false, with both left as
    /// they were, when <paramref name="target"/> exists. Another failure (permissions, a full folder)
    /// is File.Move's own exception, as it was.</summary>
    public static bool TryMove(string source, string target)
    {
        if (!OperatingSystem.IsLinux()) return MoveChecked(source, target);
        int error;
        try { error = renameat2(AtCurrentFolder, source, AtCurrentFolder, target, NoReplace) == 0 ? 0 : Marshal.GetLastPInvokeError(); }
        catch (EntryPointNotFoundException) { error = ENOSYS; } // glibc before 2.28
        if (error == 0) return true;
        if (error == EEXIST) return false;
        if (error is EINVAL or ENOSYS) // the flag refused: a link never replaces either
        {
            if (link(source, target) == 0)
            {
                try { File.Delete(source); }
                catch (Exception e) when (e is IOException or UnauthorizedAccessException) { /* the writer's cleanup removes its temporary */ }
                return true;
            }
            if (Marshal.GetLastPInvokeError() == EEXIST) return false;
        }
        return MoveChecked(source, target); // no such move here (FAT has no links), or to raise the failure as .NET words it
    }

    static bool MoveChecked(string source, string target)
    {
        try { File.Move(source, target, overwrite: false); return true; }
        catch (IOException) when (File.Exists(target)) { return false; }
    }
}
