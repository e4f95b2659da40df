using CrOC.Host.CommandLine;

namespace CrOC.Host;

/// <summary>The backbone and threads of the ViT benchmarks (`bench-vit`, `bench-block`).</summary>
public abstract record BackboneBenchmarkOptions
{
    [Option("backbone width (small = ViT-S, CrOC's)")]
    public Training.Arch Arch { get; init; } = Training.Arch.Small;
    [Option("patch size", Min = 1, Max = 1024)]
    public int Patch { get; init; } = 16;
    [Option("image side in pixels (a multiple of --patch)", Min = 1, Max = 4096)]
    public int Size { get; init; } = 224;
    [Option("torch intra-op threads (0: all cores)", Min = 0, Max = 4096)]
    public int Threads { get; init; }

    /// <summary>The torch threads to use; refuses a --size that is not a multiple of --patch.</summary>
    public int CheckedThreads()
    {
        if (Size % Patch != 0) throw new OptionException($"--size {Size} is not a multiple of --patch {Patch}");
        return Threads > 0 ? Threads : Environment.ProcessorCount;
    }
}
