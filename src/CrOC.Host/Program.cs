using CrOC.Host;
using CrOC.Host.Runtime;

MklVendorCheck.ApplyFromEnvironment(); // before anything loads libtorch
return Cli.Run(args);
