/// `tools/reference/compare.sh` run against stand-ins for PyTorch and croc-host (CROC_PYTHON,
/// CROC_HOST): every configuration once a round, interleaved, with its arguments and environment;
/// the table's medians and ratios; a failed run or a PyTorch that does not import stopping it with
/// one line. The timings themselves need PyTorch, which CI does not install; this checks what the
/// script does with them (it once stopped at its first run, unnoticed for 11 commits).
module CrOC.Tests.CompareScriptTests

open System
open System.IO
open Expecto
open TestUtil

let private script () =
    Path.Combine(Path.GetDirectoryName(ApiTableTests.readmePath ()) |> nonNull, "tools", "reference", "compare.sh")

/// Shared by both stand-ins: `answer KEY` logs a progress line, then prints the next step time of
/// values/KEY as the last line a real run prints (bench's and step.py's JSON record); the key
/// named by STANDIN_FAIL fails with exit 3 instead.
let private prelude = """#!/usr/bin/env bash
set -euo pipefail
answer() {
    local file=$STANDIN_DIR/values/$1 step
    step=$(head -n 1 "$file"); sed -i 1d "$file"
    echo "timing $1"
    [[ $1 == "${STANDIN_FAIL:-}" ]] && { echo "out of memory" >&2; exit 3; }
    awk -v s="$step" 'BEGIN { printf "{\"step_s\": %s, \"images_per_s\": %.6f, \"peak_rss_mb\": 1000, \"phases\": {\"forward\": %.6f, \"backward\": %.6f}}\n", s, 8 / s, s / 4, 3 * s / 4 }'
}
"""

/// PyTorch: the OpenBLAS probe (`-c 'import torch'`), step.py (key pytorch-PRECISION, its
/// precision last), anything else (the table) to the real python3.
let private python = prelude + """case $1 in
-c) [[ -n ${STANDIN_NO_TORCH:-} ]] && { echo "ModuleNotFoundError: No module named 'torch'"; exit 1; }
    echo "Core: ${OPENBLAS_CORETYPE:-$STANDIN_CORE}" >&2 ;;
tools/reference/step.py) shift; key=pytorch-${*: -1}
    echo "$key $* | OPENBLAS_CORETYPE=${OPENBLAS_CORETYPE-unset} OPENBLAS_L2_SIZE=${OPENBLAS_L2_SIZE-unset}" >> "$STANDIN_DIR/calls"
    answer "$key" ;;
*) exec python3 "$@" ;;
esac
"""

/// croc-host and its copy croc-host-before: key NAME-PRECISION, with -kept under MKL's vendor check kept.
let private host = prelude + """precision=$(sed -n 's/.*--precision \([a-z0-9]*\).*/\1/p' <<< "$*")
key=$(basename "$0")-$precision${CROC_MKL_VENDOR_CHECK:+-kept}
echo "$key $*" >> "$STANDIN_DIR/calls"
answer "$key"
"""

/// Step times a round (s), by key.
let private values =
    [ "croc-host-fp32", [ 3.0; 2.0; 2.6 ]
      "pytorch-fp32", [ 4.0; 4.4; 3.6 ]
      "croc-host-bf16", [ 1.0; 1.3; 1.1 ]
      "pytorch-bf16", [ 2.0; 1.6; 2.6 ]
      "croc-host-before-fp32", [ 3.2; 3.3; 3.1 ]
      "croc-host-before-bf16", [ 1.4; 1.5; 1.2 ]
      "croc-host-fp32-kept", [ 3.9; 3.8; 4.1 ] ]

let private intel = lazy (File.ReadAllText "/proc/cpuinfo").Contains "GenuineIntel"

/// The stand-ins' folder: python, croc-host, croc-host-before, values/, an empty calls log, and
/// stand-ins/lscpu, an lscpu that is not there (exit 127).
let private standIns () =
    let dir = scratchPath "compare-sh" ""
    for sub in [ "values"; "stand-ins" ] do Directory.CreateDirectory(Path.Combine(dir, sub)) |> ignore
    for name, text in [ "python", python; "croc-host", host; "croc-host-before", host; "stand-ins/lscpu", "#!/bin/sh\nexit 127\n" ] do
        let path = Path.Combine(dir, name)
        File.WriteAllText(path, text)
        File.SetUnixFileMode(path, UnixFileMode.UserRead ||| UnixFileMode.UserWrite ||| UnixFileMode.UserExecute)
    for key, steps in values do
        File.WriteAllLines(Path.Combine(dir, "values", key), steps |> List.map (sprintf "%.1f"))
    File.WriteAllText(Path.Combine(dir, "calls"), "")
    dir

/// compare.sh ARGS, started in the stand-ins' folder with `env STAND-INS' FOLDER` over the defaults
/// below (a value of null removes the variable): exit code, standard output, standard error, the stand-ins' calls.
let private compare (args: string list) (env: string -> (string * string | null) list) =
    let dir = standIns ()
    let defaults: (string * string | null) list =
        [ // the stand-ins by paths relative to the caller's folder, which the script leaves for the repository's
          "CROC_HOST", "./croc-host"; "CROC_PYTHON", "stand-ins/../python"
          "STANDIN_DIR", dir; "STANDIN_CORE", "Haswell"
          // a decimal comma would reach the stand-ins' numbers; a vendor check kept would reach every run
          "LC_ALL", "C"; "CROC_MKL_VENDOR_CHECK", null ]
    let code, out, err = runProcessIn dir "bash" (script () :: args) (defaults @ env dir) 60
    code, out, err, File.ReadAllLines(Path.Combine(dir, "calls")) |> List.ofArray

let private keys (calls: string list) = calls |> List.map (fun c -> c.Split(' ').[0])

let tests =
    testList "compare.sh" [
        testCase "runs every configuration once a round, interleaved (CROC_BEFORE's after ours), and tables their medians and ratios" <| fun () ->
            let code, out, err, calls =
                compare [ "8"; "2"; "3" ] (fun dir ->
                    [ "CROC_HOST", Path.Combine(dir, "croc-host"); "CROC_BEFORE", "./croc-host-before"; "CROC_PRECISIONS", null
                      "OPENBLAS_CORETYPE", "Zen"; "OPENBLAS_L2_SIZE", "123" ])
            Expect.equal code 0 $"exit code; stderr: {err}"
            let round =
                [ "croc-host-fp32"; "pytorch-fp32" ] @ (if intel.Value then [] else [ "croc-host-fp32-kept" ])
                @ [ "croc-host-before-fp32"; "croc-host-bf16"; "pytorch-bf16"; "croc-host-before-bf16" ]
            Expect.equal (keys calls) (List.replicate 3 round |> List.concat) "the runs, in order"
            Expect.contains calls "croc-host-fp32 bench --preset official --batch 8 --repeats 2 --no-data --precision fp32 --json" "bench's arguments"
            // PyTorch runs without the machine's OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE, which slow it down
            Expect.contains calls "pytorch-bf16 --batch 8 --repeats 2 --threads 2 --precision bf16 | OPENBLAS_CORETYPE=unset OPENBLAS_L2_SIZE=unset" "step.py's arguments and environment"
            for r in 1 .. 3 do Expect.stringContains err $"round {r} of 3" "progress"
            let lines = out.Split('\n', StringSplitOptions.RemoveEmptyEntries)
            Expect.stringContains lines.[0] "3 interleaved rounds, medians" "the header"
            Expect.stringEnds lines.[0] "PyTorch's OpenBLAS kernels: Haswell" "the kernels PyTorch ran with"
            // medians over rounds, / each reference's median, and the medians of the per-round ratios
            for row in [ "| CrOC.NET fp32 | 2.60 | 3.00 / 2.00 / 2.60 | 3.08 | 1000 | 0.65 | 1.30 | 0.72 | 1.25 |"
                         "| PyTorch fp32 | 4.00 | 4.00 / 4.40 / 3.60 | 2.00 | 1000 | 1.00 | 2.00 | 1.00 | 2.00 |"
                         "| CrOC.NET bf16 | 1.10 | 1.00 / 1.30 / 1.10 | 7.27 | 1000 | 0.28 | 0.55 | 0.30 | 0.50 |"
                         "| PyTorch bf16 | 2.00 | 2.00 / 1.60 / 2.60 | 4.00 | 1000 | 0.50 | 1.00 | 0.50 | 1.00 |"
                         "| before fp32 | 3.20 | 3.20 / 3.30 / 3.10 | 2.50 | 1000 | 0.80 | 1.60 | 0.80 | 1.60 |"
                         "CrOC.NET fp32 phases (s, medians): forward 0.650, backward 1.950" ] do
                Expect.contains lines row "a row of the table"
            Expect.equal (lines |> Array.filter (fun l -> l.StartsWith "| CrOC.NET fp32, MKL vendor check kept |") |> Array.length)
                (if intel.Value then 0 else 1) "MKL's vendor check kept: a row on CPUs that are not Intel's only"

        testCase "a CPU OpenBLAS does not know gets the kernels of its instruction set for PyTorch; a missing lscpu loses no table" <| fun () ->
            let flags =
                File.ReadLines "/proc/cpuinfo" |> Seq.find (fun l -> l.StartsWith "flags") |> fun l -> l.Split(' ') |> Set.ofArray
            let expected =
                if flags.Contains "avx512f" then (if flags.Contains "avx512_bf16" then "Cooperlake" else "SkylakeX")
                elif flags.Contains "avx2" then "Haswell" else "Prescott"
            let code, out, err, calls =
                compare [ "8"; "1"; "1" ] (fun dir ->
                    [ "STANDIN_CORE", "Prescott"; "CROC_PRECISIONS", "fp32"; "CROC_BEFORE", null
                      "PATH", Path.Combine(dir, "stand-ins") + ":" + Environment.GetEnvironmentVariable "PATH" ])
            Expect.equal code 0 $"exit code (without lscpu too: the CPU's name from /proc/cpuinfo); stderr: {err}"
            Expect.stringEnds (out.Split('\n', StringSplitOptions.RemoveEmptyEntries).[0]) $"PyTorch's OpenBLAS kernels: {expected}" "the table names the kernels"
            if expected <> "Prescott" then
                Expect.stringContains err $"PyTorch runs with OPENBLAS_CORETYPE={expected} (OpenBLAS: {expected})" "the forced kernels, said"
            let given = if expected = "Prescott" then "unset" else expected // a CPU without AVX2 keeps OpenBLAS's choice
            Expect.contains calls $"pytorch-fp32 --batch 8 --repeats 1 --threads 2 --precision fp32 | OPENBLAS_CORETYPE={given} OPENBLAS_L2_SIZE=unset" "step.py ran with them"
            Expect.isFalse (calls |> List.exists (fun c -> c.Contains "bf16")) "CROC_PRECISIONS=fp32: no bf16 run"
            Expect.isFalse (calls |> List.exists (fun c -> c.StartsWith "croc-host-before")) "no CROC_BEFORE: no run of another binary"

        testCase "a failed run stops the comparison at once with one line naming it" <| fun () ->
            let code, out, err, calls = compare [ "8"; "1"; "3" ] (fun _ -> [ "STANDIN_FAIL", "croc-host-bf16"; "CROC_PRECISIONS", null; "CROC_BEFORE", null ])
            Expect.equal code 1 "exit code"
            Expect.equal (err.TrimEnd().Split('\n') |> Array.last) "compare.sh: 'CrOC.NET bf16' failed (exit 3)" "the last line"
            Expect.equal out "" "no table"
            Expect.equal (keys calls |> List.last) "croc-host-bf16" "nothing ran after the failed run"

        testCase "a croc-host that is not there is said before any run" <| fun () ->
            for variable in [ "CROC_HOST"; "CROC_BEFORE" ] do
                let code, out, err, calls = compare [] (fun _ -> [ variable, "./absent/croc-host" ])
                Expect.equal code 1 $"{variable}: exit code"
                Expect.stringEnds (err.TrimEnd()) "/absent/croc-host' is no executable croc-host" $"{variable}: the line"
                Expect.equal out "" $"{variable}: no table"
                Expect.isEmpty calls $"{variable}: no run"

        testCase "a PyTorch that does not import is said before any run" <| fun () ->
            let code, out, err, calls = compare [] (fun _ -> [ "STANDIN_NO_TORCH", "1" ])
            Expect.equal code 1 "exit code"
            Expect.equal (err.TrimEnd()) "compare.sh: PyTorch does not import (the README names the apt packages): ModuleNotFoundError: No module named 'torch'" "the line"
            Expect.equal out "" "no table"
            Expect.isEmpty calls "no run"
    ]
