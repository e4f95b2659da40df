using System.Runtime.InteropServices;
using Microsoft.Win32.SafeHandles;

namespace CrOC.Data;

/// <summary>
/// Opens a path that should hold a regular file (an earlier output of a command, to tell whether it is
/// its own; a record; a data archive) without hanging on what is no file: the path is opened without
/// blocking (a FIFO with no writer would block an ordinary open forever) and only a seekable file is
/// read, and only its first bytes where a record is read (a device such as /dev/full never ends).
/// </summary>
public static class RegularFile
{
    const int ReadOnly = 0, NonBlocking = 0x800, CloseOnExec = 0x80000; // Linux's O_RDONLY, O_NONBLOCK, O_CLOEXEC

    /// <summary>What an unseekable path is called in <see cref="Open(string, out string)"/>'s reason.</summary>
    public const string NotRegular = "not a regular file (a FIFO, a socket or a terminal?)";

    /// <summary>A read stream over <paramref name="path"/> when it opens and is seekable (a regular
    /// file, or a device that behaves as one); null for a pipe, FIFO, socket or terminal, a folder, or a path
    /// that cannot be opened.</summary>
    public static FileStream? Open(string path) => Open(path, out int _);

    /// <summary>As <see cref="Open(string)"/>; where it gives null, <paramref name="whyNot"/> says why: the
    /// system's reason when the path does not open ("No such file or directory" for a missing file or a
    /// dangling link, "Permission denied", "Is a directory"), else <see cref="NotRegular"/>.</summary>
    public static FileStream? Open(string path, out string whyNot)
    {
        var stream = Open(path, out int error);
        whyNot = error == 0 ? NotRegular : Marshal.GetPInvokeErrorMessage(error);
        return stream;
    }

    /// <summary>As <see cref="Open(string)"/>, a failure raised as an ordinary open raises it
    /// (<see cref="FileNotFoundException"/> for a missing file or a dangling link,
    /// <see cref="DirectoryNotFoundException"/> for a path through a file, <see cref="PathTooLongException"/>,
    /// <see cref="UnauthorizedAccessException"/>, else an <see cref="IOException"/> whose HResult is the
    /// errno: EISDIR for a folder), and an unseekable path as <see cref="NotRegularFileException"/>: where an ordinary open would
    /// wait for a FIFO's writer forever (a data file renamed over by a FIFO mid-run hung the run once).</summary>
    public static FileStream OpenOrThrow(string path)
    {
        var stream = Open(path, out int error);
        if (stream is not null) return stream;
        var reason = error == 0 ? "" : Marshal.GetPInvokeErrorMessage(error);
        throw error switch
        {
            0 => new NotRegularFileException(path),
            NoSuchFile => new FileNotFoundException($"'{path}': {reason}", path),
            NotADirectory => new DirectoryNotFoundException($"'{path}': {reason}"),
            NameTooLong => new PathTooLongException($"'{path}': {reason}"),
            PermissionDenied => new UnauthorizedAccessException($"'{path}': {reason}"),
            _ => new IOException($"'{path}': {reason}", error),
        };
    }

    const int NoSuchFile = 2, NoSuchDevice = 6, PermissionDenied = 13, NoDeviceDriver = 19, NotADirectory = 20, IsADirectory = 21, NameTooLong = 36; // Linux's ENOENT, ENXIO, EACCES, ENODEV, ENOTDIR, EISDIR, ENAMETOOLONG

    /// <summary>The stream, or null with <paramref name="error"/> the open's errno (0: no regular file: it opened
    /// unseekable, or it is a socket or a device without its driver, whose open fails with ENXIO or ENODEV).</summary>
    static FileStream? Open(string path, out int error)
    {
        error = 0;
        int descriptor = Native.open(path, ReadOnly | NonBlocking | CloseOnExec);
        if (descriptor < 0)
        {
            error = Marshal.GetLastPInvokeError();
            if (error is NoSuchDevice or NoDeviceDriver) error = 0; // a socket in a dataset was retried as the storage's failure once
            return null;
        }
        var handle = new SafeFileHandle(descriptor, ownsHandle: true);
        try
        {
            if (File.GetAttributes(handle).HasFlag(FileAttributes.Directory)) // opens read-only, and seeks: its reads fail
            {
                handle.Dispose();
                error = IsADirectory;
                return null;
            }
            var stream = new FileStream(handle, FileAccess.Read, bufferSize: 1);
            if (stream.CanSeek) return stream;
            stream.Dispose();
            return null;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or ArgumentException)
        {
            handle.Dispose();
            return null;
        }
    }

    /// <summary>Whether <paramref name="path"/> opens as a seekable file: false for a dangling link, a
    /// pipe, FIFO, socket or terminal, a folder, or a file this process may not read.</summary>
    public static bool IsReadable(string path)
    {
        using var stream = Open(path);
        return stream is not null;
    }

    /// <summary>The first bytes of <paramref name="path"/> when it is a seekable file of at most
    /// <paramref name="limit"/> bytes (counted as read, not as its length claims), else null.</summary>
    public static byte[]? ReadAtMost(string path, int limit)
    {
        using var stream = Open(path);
        if (stream is null) return null;
        try { return BoundedFile.ReadAtMost(stream, limit); }
        catch (IOException) { return null; }
    }

    /// <summary>The text (<see cref="BoundedFile.Text"/>) of a record croc-host wrote (a run's config.json, run.json,
    /// run.owner): <see cref="NotRegularFileException"/> where no seekable file
    /// opens, <see cref="FileTooLargeException"/> beyond <paramref name="limit"/> bytes. Unlike
    /// <see cref="BoundedFile.ReadText"/> (a config given as `&lt;(…)` is a pipe), a FIFO is never waited for.</summary>
    public static string ReadText(string path, int limit)
    {
        using var stream = Open(path) ?? throw new NotRegularFileException(path);
        return BoundedFile.Text(BoundedFile.ReadAtMost(stream, limit) ?? throw new FileTooLargeException(path, limit));
    }

    static class Native
    {
        [DllImport("libc", SetLastError = true)] public static extern int open(string path, int flags);
    }
}
