using CrOC.Host;
using CrOC.Host.Runtime;

MklVendorCheck.ApplyFromEnvironment(); // before anything loads libtorch
HeapSettings.ApplyFromEnvironment();   // before the large allocations
return Cli.Run(args);
