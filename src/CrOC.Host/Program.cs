using CrOC.Host;
using CrOC.Host.CommandLine;
using CrOC.Host.Runtime;

try { return Start(args); }
catch (Exception e) // outside the command's report: an assembly that did not load (out of open files) was a .NET stack trace, exit 134, once
{
    RawStandardError.WriteLine($"croc-host: could not run: {e.Message.Split('\n')[0]} (out of open files: ulimit -n? or the installation is incomplete)");
    return ExitCodes.Failure;
}

static int Start(string[] args)
{
    CrOC.Host.Distributed.LauncherTerminal.KeepPlain(); // under mpirun: no terminal sequence in the forwarded output
    TolerantConsole.Install();            // a closed or full standard output loses lines, not the command
    if (WorkingFolder.Gone() is { } gone) // before libtorch's MKL fails on it with a misleading line
    {
        Console.Error.WriteLine(gone);
        return ExitCodes.BadInput;
    }
    MklVendorCheck.ApplyFromEnvironment(); // before anything loads libtorch
    HeapSettings.ApplyFromEnvironment();   // before the large allocations
    ProcessSignals.IgnoreFileSizeLimit();  // a write past `ulimit -f` fails as an I/O error, not silently with 153
    ExitCodes.WarmUp();                    // the failure report loads what it needs now, not once file handles may have run out
    SignalStop.Handlers(_ => false).Dispose(); // the post-work handlers below load and compile now: installed in microseconds then
    ParentWatch.StartFromEnvironment();    // a real-photo suite's job: stops when its suite is gone
    int code = Cli.Run(args);
    // The work is done, reported, and the command's own handlers are gone: a stop signal in the ~0.1 s of the
    // runtime's shutdown is taken (the same one again ends it, as does one the command took already), not a finished
    // command's end with 128+N and no line.
    try { _ = SignalStop.Handlers(new SignalStop().TakeUnlessTakenBefore); }
    catch (Exception) { /* out of file handles, what they need may not load: the exit code stands */ }
    return TolerantConsole.Finish(code);
}
