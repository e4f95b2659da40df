namespace CrOC.Data;

/// <summary>A file that holds more than a reader's limit: a link to a device such as /dev/zero, or a
/// huge file where a small one belongs. An <see cref="IOException"/>: readers treat it as unreadable.</summary>
public sealed class FileTooLargeException(string path, int limit)
    : IOException($"'{path}' holds more than {limit} bytes (a device such as /dev/zero?)");
