#!/usr/bin/env bash
# Runs the CrOC.NET step (fp32 and bf16) and the PyTorch reference step (fp32) in one session, on
# the same machine, and prints the ratios. A measuring tool, not a test.
#   needs: apt-get install --no-install-recommends python3-torch libopenblas0-openmp
#   usage: tools/reference/compare.sh [batch=8] [repeats=5]
set -euo pipefail
cd "$(dirname "$0")/../.."
batch=${1:-8}
repeats=${2:-5}
dotnet build src/CrOC.Host -c Release -v q > /dev/null
host=src/CrOC.Host/bin/Release/net10.0/linux-x64/croc-host
ours32=$("$host" bench --preset official --batch "$batch" --repeats "$repeats" --no-data --precision fp32 --json | tail -n 1)
ours16=$("$host" bench --preset official --batch "$batch" --repeats "$repeats" --no-data --precision bf16 --json | tail -n 1)
# OpenBLAS's AVX-512 kernels: the machine's OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE slow PyTorch down.
theirs=$(env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE /usr/bin/python3 tools/reference/step.py --batch "$batch" --repeats "$repeats" --threads 2 | tail -n 1)
python3 - "$ours32" "$ours16" "$theirs" <<'PY'
import json, sys
ours32, ours16, theirs = (json.loads(a) for a in sys.argv[1:])
print(f"| run | step (s, median) | images/s | MFU | peak RSS (MB) | step / PyTorch fp32 |")
print(f"|---|---|---|---|---|---|")
for name, r in [("CrOC.NET fp32", ours32), ("CrOC.NET bf16", ours16), ("PyTorch fp32 (reference)", theirs)]:
    mfu = f"{100 * r['mfu']:.0f}%" if "mfu" in r else "–"
    print(f"| {name} | {r['step_s']:.2f} | {r['images_per_s']:.2f} | {mfu} | {r['peak_rss_mb']:.0f} | {r['step_s'] / theirs['step_s']:.2f} |")
for name, r in [("fp32", ours32), ("bf16", ours16)]:
    phases = ", ".join(f"{k} {v:.2f}" for k, v in r["phases"].items())
    print(f"{name} phases (s): {phases}")
PY
