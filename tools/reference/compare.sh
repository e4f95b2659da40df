#!/usr/bin/env bash
# Times the CrOC.NET step (fp32, bf16) against the PyTorch reference step (fp32, bf16 autocast) on
# this machine, interleaved: every round runs each configuration once, in turn, so that all see the
# same machine state; prints the medians over the rounds, their ratios, the medians of the
# per-round (paired) ratios and the CPU. A measuring tool, not a test.
#   needs: apt-get update && apt-get install --no-install-recommends python3-torch libopenblas0-openmp
#   usage: tools/reference/compare.sh [batch=8] [repeats=5] [rounds=3]
#   CROC_BEFORE=/path/to/croc-host adds that binary's fp32 and bf16 steps (an A/B of a change).
#   CROC_HOST=/path/to/croc-host times that binary instead of building this checkout's.
#   CROC_PYTHON=/path/to/python3 runs PyTorch and the table with that interpreter (default
#   /usr/bin/python3, Debian's, the one python3-torch installs for).
#   Paths are the caller's (relative ones too); a name without / is looked up in PATH.
#   CROC_PRECISIONS="fp32" times fp32 only (bf16 autocast on a CPU without bf16 instructions is
#   emulated and takes minutes per step); default "fp32 bf16".
#   On CPUs that are not Intel's, ours also runs in fp32 with CROC_MKL_VENDOR_CHECK=keep, which
#   shows what answering MKL's vendor check buys (see src/CrOC.Host/Runtime/MklVendorCheck.cs).
set -euo pipefail
# the paths given are the caller's, read before the cd below (a bare name stays a command of PATH)
from_caller() { if [[ $1 == */* && $1 != /* ]]; then echo "$PWD/$1"; else echo "$1"; fi; }
for name in CROC_HOST CROC_PYTHON CROC_BEFORE; do
    [[ -n ${!name:-} ]] && printf -v "$name" '%s' "$(from_caller "${!name}")"
done
cd "$(dirname "$0")/../.."
batch=${1:-8}
repeats=${2:-5}
rounds=${3:-3}
build_log=$(mktemp)
results=$(mktemp)
trap 'rm -f "$build_log" "$results"' EXIT
if [[ -n ${CROC_HOST:-} ]]; then
    host=$CROC_HOST
else
    dotnet build src/CrOC.Host -c Release -v q > "$build_log" || { cat "$build_log" >&2; echo "compare.sh: the build failed" >&2; exit 1; }
    host=src/CrOC.Host/bin/Release/net10.0/linux-x64/croc-host
fi
python=${CROC_PYTHON:-/usr/bin/python3}
for binary in "$host" ${CROC_BEFORE:+"$CROC_BEFORE"}; do # said now, not after the first runs
    command -v "$binary" > /dev/null || { echo "compare.sh: '$binary' is no executable croc-host" >&2; exit 1; }
done
# PyTorch's OpenBLAS, with the machine's OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE unset (they slow it down).
# It picks its kernels by CPU model, and a model newer than the library falls back to Prescott (SSE3,
# about a quarter of the AVX-512 rate): such a CPU is given the kernels of its instruction set, so
# that PyTorch fp32 is the strongest baseline this PyTorch has; the table names the kernels used.
pytorch_env=(env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE)
openblas_core() { # the kernels OpenBLAS takes under pytorch_env (it names them at load with OPENBLAS_VERBOSE=2)
    local probe
    probe=$("${pytorch_env[@]}" OPENBLAS_VERBOSE=2 "$python" -c 'import torch' 2>&1) \
        || { echo "compare.sh: PyTorch does not import (the README names the apt packages): $probe" >&2; exit 1; }
    sed -n '/^Core: /{s///p;q}' <<< "$probe"
}
core=$(openblas_core)
if [[ $core == Prescott ]]; then
    forced=
    if grep -qw avx512f /proc/cpuinfo; then
        forced=$(grep -qw avx512_bf16 /proc/cpuinfo && echo Cooperlake || echo SkylakeX)
    elif grep -qw avx2 /proc/cpuinfo; then
        forced=Haswell
    fi
    if [[ -n $forced ]]; then
        pytorch_env+=(OPENBLAS_CORETYPE="$forced")
        core=$(openblas_core)
        echo "compare.sh: OpenBLAS does not know this CPU model (it took Prescott); PyTorch runs with OPENBLAS_CORETYPE=$forced (OpenBLAS: $core)" >&2
    fi
fi
run() { # name, command...
    local name=$1; shift
    echo "  $name" >&2
    local out
    # a failed run stops the comparison at once, naming it (a command substitution hides its status from set -e)
    out=$("$@") || { echo "compare.sh: '$name' failed (exit $?)" >&2; exit 1; }
    echo "$name	$(tail -n 1 <<< "$out")" >> "$results"
}
bench() { # binary, precision: one `croc-host bench` of the official step
    "$1" bench --preset official --batch "$batch" --repeats "$repeats" --no-data --precision "$2" --json
}
for round in $(seq 1 "$rounds"); do
    echo "round $round of $rounds" >&2
    for precision in ${CROC_PRECISIONS:-fp32 bf16}; do
        run "CrOC.NET $precision" bench "$host" "$precision"
        run "PyTorch $precision" "${pytorch_env[@]}" "$python" tools/reference/step.py \
            --batch "$batch" --repeats "$repeats" --threads 2 --precision "$precision"
        if [[ $precision == fp32 ]] && ! grep -q GenuineIntel /proc/cpuinfo; then
            CROC_MKL_VENDOR_CHECK=keep run "CrOC.NET fp32, MKL vendor check kept" bench "$host" fp32
        fi
        if [[ -n "${CROC_BEFORE:-}" ]]; then
            run "before $precision" bench "$CROC_BEFORE" "$precision"
        fi
    done
done
# the CPU's name (lscpu's, else the kernel's; a pipe cut short is no failure of the measurement)
cpu=$({ lscpu 2> /dev/null || cat /proc/cpuinfo; } | sed -n '/^[Mm]odel name[[:space:]]*: */{s///p;q}') || true
"$python" - "$results" "${cpu:-an unnamed CPU}" "$rounds" "${core:-unknown}" <<'PY'
import json, statistics, sys
rows = {}
for line in open(sys.argv[1]):
    name, record = line.rstrip("\n").split("\t", 1)
    rows.setdefault(name, []).append(json.loads(record))
median = lambda name, key: statistics.median(r[key] for r in rows[name])
print(f"{sys.argv[2]}, {sys.argv[3]} interleaved rounds, medians (each round's value is itself a median of steps); PyTorch's OpenBLAS kernels: {sys.argv[4]}")
print("| run | step (s) | rounds (s) | images/s | peak RSS (MB) | / PyTorch fp32 | / PyTorch bf16 autocast | paired: / PyTorch fp32 | paired: / PyTorch bf16 |")
print("|---|---|---|---|---|---|---|---|---|")
t32 = median("PyTorch fp32", "step_s")
t16 = median("PyTorch bf16", "step_s") if "PyTorch bf16" in rows else float("nan")
def paired(name, reference):
    """The median over rounds of this run's step / the reference's step in the same round: a
    machine whose speed drifts between rounds moves both alike."""
    if reference not in rows: return float("nan")
    return statistics.median(a["step_s"] / b["step_s"] for a, b in zip(rows[name], rows[reference]))
for name in rows:
    step = median(name, "step_s")
    each = " / ".join(f"{r['step_s']:.2f}" for r in rows[name])
    print(f"| {name} | {step:.2f} | {each} | {median(name, 'images_per_s'):.2f} | {median(name, 'peak_rss_mb'):.0f} | {step / t32:.2f} | {step / t16:.2f}"
          f" | {paired(name, 'PyTorch fp32'):.2f} | {paired(name, 'PyTorch bf16'):.2f} |")
for name in rows:
    if "phases" in rows[name][0]:
        phases = ", ".join(f"{k} {statistics.median(r['phases'][k] for r in rows[name]):.3f}" for k in rows[name][0]["phases"])
        print(f"{name} phases (s, medians): {phases}")
PY
