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
return TolerantConsole.Finish(Cli.Run(args));
