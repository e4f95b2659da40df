namespace CrOC.Data;

/// <summary>A path where a small record belongs that is no regular file this process can read: a FIFO (an
/// ordinary open would wait for a writer forever), a socket, or a file it may not open. An
/// <see cref="IOException"/>: readers treat it as unreadable.</summary>
public sealed class NotRegularFileException(string path)
    : IOException($"'{path}' is no regular file this process can read (a FIFO or a socket?)");
