#!/usr/bin/env bash
# Runs croc-host on a CUDA machine with the libtorch of an installed PyTorch (pip wheel) instead of
# TorchSharp's CUDA NuGet package: the managed build is copied without its CPU libtorch, and the
# dynamic loader finds PyTorch's (libtorch_cuda.so included) through LD_LIBRARY_PATH.
# TorchSharp 0.107 is built for libtorch 2.10; PyTorch 2.11.0+cu130 passed the checks in the README
# on an H200. An unsupported pairing: prefer TorchSharp's CUDA package where you can get it.
#   usage: tools/gpu/croc-host-pytorch-cuda.sh train --device cuda [options]
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
build=$root/src/CrOC.Host/bin/Release/net10.0/linux-x64
app=${CROC_GPU_APP:-$root/.gpu-app}
torchlib=$(python3 -c "import torch, os; print(os.path.join(os.path.dirname(torch.__file__), 'lib'))")
[ -f "$build/croc-host.dll" ] || dotnet build "$root/src/CrOC.Host" -c Release
mkdir -p "$app"
cp "$build"/*.dll "$build"/*.json "$build"/libLibTorchSharp.so "$app"/
export LD_LIBRARY_PATH="$torchlib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
exec dotnet "$app/croc-host.dll" "$@"
