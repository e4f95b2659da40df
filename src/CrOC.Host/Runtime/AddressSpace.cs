namespace CrOC.Host.Runtime;

/// <summary>A process address-space limit (`ulimit -v`) below what libtorch and the .NET runtime map before any work.</summary>
public sealed class AddressSpaceException(string message) : Exception(message), CommandLine.IBadInput;

/// <summary>
/// The address-space limit (RLIMIT_AS, `ulimit -v`). Below about 4 GiB no command works (measured: a tiny
/// export fails under 5 GB, with a clean "out of memory" line only from 3.6 GB): loading libtorch failed
/// as an internal error, and TorchSharp's fallback loader then copied 478 MB of its libraries beside the
/// tool on every try.
/// </summary>
public static class AddressSpace
{
    /// <summary>The least limit a command is started under: what no command works below (its work needs more).</summary>
    public const long Needed = 4L << 30;

    /// <summary>Throws <see cref="AddressSpaceException"/> (exit 2) when <paramref name="limit"/> (bytes) is below <see cref="Needed"/>.</summary>
    public static void Check(long? limit)
    {
        if (limit is long bytes && bytes < Needed)
            throw new AddressSpaceException($"the address-space limit (ulimit -v) is {CommandLine.ByteSize.Describe(bytes)}: libtorch and the .NET runtime map about {CommandLine.ByteSize.Describe(Needed)} before any work, and the work needs more (a tiny export: 5 GB); raise it (ulimit -v unlimited)");
    }
}
