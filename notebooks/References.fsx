// The built libraries (run `dotnet build src/CrOC.Host -c Release` first). Paths are relative to
// this notebooks/ folder, the working directory of the notebooks.
#r "../src/CrOC.Host/bin/Release/net10.0/linux-x64/TorchSharp.dll"
#r "../src/CrOC.Host/bin/Release/net10.0/linux-x64/CrOC.Math.dll"
#r "../src/CrOC.Host/bin/Release/net10.0/linux-x64/CrOC.Data.dll"
#r "../src/CrOC.Host/bin/Release/net10.0/linux-x64/SixLabors.ImageSharp.dll"
#r "../src/CrOC.Host/bin/Release/net10.0/linux-x64/croc-host.dll"
