namespace CrOC.Host.CommandLine;

/// <summary>Amounts of bytes (disk space, memory) as messages write them.</summary>
public static class ByteSize
{
    /// <summary>Two amounts compared in one message (needed, free): in bytes when they would read alike ("14.0 MiB, 14.0 MiB free" once).</summary>
    public static (string First, string Second) Apart(long first, long second) =>
        Describe(first) is var a && Describe(second) is var b && (a != b || first == second) ? (a, b) : ($"{first:N0} bytes", $"{second:N0} bytes");

    /// <summary>"812 bytes", "3.5 MiB", "1.25 GiB", "2.00 TiB", "1.50 PiB".</summary>
    public static string Describe(double bytes) =>
        bytes >= 1L << 50 ? $"{bytes / (1L << 50):F2} PiB" : bytes >= 1L << 40 ? $"{bytes / (1L << 40):F2} TiB"
        : bytes >= 1 << 30 ? $"{bytes / (1 << 30):F2} GiB" : bytes >= 1 << 20 ? $"{bytes / (1 << 20):F1} MiB" : $"{bytes:F0} bytes";
}
