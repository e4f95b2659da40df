using CrOC.Host;
using CrOC.Host.CommandLine;
using CrOC.Host.Runtime;

TolerantConsole.Install();             // a closed or full standard output loses lines, not the command
if (WorkingFolder.Gone() is { } gone)   // before libtorch's MKL fails on it with a misleading line
{
    Console.Error.WriteLine(gone);
    return ExitCodes.BadInput;
}
MklVendorCheck.ApplyFromEnvironment(); // before anything loads libtorch
HeapSettings.ApplyFromEnvironment();   // before the large allocations
ProcessSignals.IgnoreFileSizeLimit();  // a write past `ulimit -f` fails as an I/O error, not silently with 153
ExitCodes.WarmUp();                    // the failure report loads what it needs now, not once file handles may have run out
int code = Cli.Run(args);
// The work is done, reported, and the command's own handlers are gone: a stop signal in the ~0.1 s of the
// runtime's shutdown is taken (the same one again ends it), not a finished command's end with 128+N and no line.
_ = SignalStop.Handlers(new SignalStop().Take);
return TolerantConsole.Finish(code);
