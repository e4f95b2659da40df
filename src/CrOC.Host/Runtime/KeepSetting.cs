namespace CrOC.Host.Runtime;

/// <summary>The opt-out of the start-up runtime adjustments (<see cref="MklVendorCheck"/>,
/// <see cref="HeapSettings"/>): their variable set to "keep" (any case, spaces ignored) leaves the
/// library as it is.</summary>
public static class KeepSetting
{
    public static bool Asked(string? value) => string.Equals(value?.Trim(), "keep", StringComparison.OrdinalIgnoreCase);
}
