namespace CrOC.Host.Distributed;

/// <summary>Under an MPI launcher each process's standard output is a pseudo-terminal whose text the
/// launcher forwards, to a terminal or to a log: .NET's console, seeing a terminal, writes the terminfo's
/// keypad mode (ESC[?1h ESC=) before the first line, which a log then holds as garbage. Without TERM the
/// console reads no terminfo and writes nothing of its own (croc-host uses no terminal capability).</summary>
public static class LauncherTerminal
{
    /// <summary>Drops TERM from this process's environment when a launcher started it; before the
    /// first write, which is when the console reads TERM.</summary>
    public static void KeepPlain()
    {
        if (Collectives.StartedByLauncher)
            Environment.SetEnvironmentVariable("TERM", null);
    }
}
