/// Run folders that never lose data, one error contract (exit codes and one-line messages), and
/// hostile weight files: each test reproduces a problem found by trying the tool as a user would.
module CrOC.Tests.HardeningTests

open System
open System.Diagnostics
open System.IO
open System.IO.Compression
open System.Text
open Expecto
open TorchSharp
open CrOC.Math
open CrOC.Host
open CrOC.Host.CommandLine
open CrOC.Host.Training
open CrOC.Host.Weights
open CrOC.Host.Runtime
open CrOC.Tests.TestUtil

let private hostDll = Path.Combine(AppContext.BaseDirectory, "croc-host.dll")

/// `dotnet croc-host.dll args` in its own process (a native crash would show as exit 134):
/// exit code, stdout, stderr; killed after `seconds`.
let croc (seconds: int) (args: string list) = dotnetProcess hostDll seconds args

/// `croc-host args` from bash after the shell command `before` (e.g. `ulimit -f 64`), with the
/// redirections `redirect` (e.g. `>/dev/full`) and the environment variables `env` added: exit code,
/// stderr; killed (and failed) after 300 s. W^X off: .NET's own executable-memory file must not meet
/// a small file-size limit.
let private crocInShell (before: string) (redirect: string) (env: (string * string) list) (args: string list) =
    let info = ProcessStartInfo("bash", RedirectStandardOutput = true, RedirectStandardError = true)
    for a in [ "-c"; sprintf "%s; exec dotnet \"$@\" %s" before redirect; "croc"; hostDll ] @ args do info.ArgumentList.Add a
    info.Environment.["DOTNET_EnableWriteXorExecute"] <- "0"
    for name, value in env do info.Environment.[name] <- value
    use p = present (Process.Start info)
    let out, err = p.StandardOutput.ReadToEndAsync(), p.StandardError.ReadToEndAsync()
    if not (p.WaitForExit 300_000) then
        p.Kill true
        failtestf "croc-host %s (%s %s) did not end within 300 s" (List.head args) before redirect
    p.WaitForExit()
    out.Result |> ignore
    p.ExitCode, err.Result

/// `croc-host args` under `ulimit -f limitKb` (see crocInShell).
let private crocWithFileLimit (limitKb: int64) (env: (string * string) list) (args: string list) =
    crocInShell (sprintf "ulimit -f %d" limitKb) "" env args

/// `croc-host train` arguments of the tests' tiny configuration plus `extra`.
let private trainArgs (output: string) (extra: string list) =
    "train" :: TrainingTests.tinyArgs output extra

let private lines (output: string) (file: string) =
    let path = Path.Combine(output, file)
    if File.Exists path then File.ReadAllLines path else [||]

/// A random one-block ViT-Ti/8 (32 px) backbone as an export's .safetensors at `path`.
let private writeTinyBackbone (path: string) =
    BackboneExport.Write(path, NamedTensors(Seq.map id <| Vit.named (Vit.init (Vit.VitConfig.Tiny(8, 32) |> fun c -> { c with Depth = 1 }) (new torch.Generator(0UL)))).WithPrefix("backbone."))

/// A temporary folder holding a synthetic VOC root `voc` (train / val images, seed) and a tiny backbone `w.safetensors`.
let private vocWithBackbone (name: string) (train: int) (validation: int) (seed: int64) =
    let dir = DataTests.tempDir name
    let voc = Path.Combine(dir, "voc")
    CrOC.Data.SyntheticScenes.WriteVoc(voc, train, validation, seed)
    let weights = Path.Combine(dir, "w.safetensors")
    writeTinyBackbone weights
    dir, voc, weights

/// The exception of type 'e that `f` throws (fails when it throws nothing or something else).
let thrown<'e when 'e :> exn> (f: unit -> unit) (what: string) : 'e =
    let outcome = try f (); None with :? 'e as e -> Some e
    match outcome with
    | Some e -> e
    | None -> failtestf "%s: nothing was thrown" what

let private checkpointNames (output: string) = [ for c in Checkpoints.List output -> Path.GetFileName c ]

let tests =
    testSequenced <| testList "Hardening" [
        test "training again into a run's folder with --resume false, another identity or only refused checkpoints is refused; nothing is lost" {
            let output = DataTests.tempDir "owned"
            let code, text = TrainingTests.cli (List.toArray (trainArgs output [ "--max-steps"; "6" ]))
            Expect.equal code 0 text
            let metrics, checkpoints = lines output "metrics.jsonl", checkpointNames output
            Expect.equal metrics.Length 6 "six steps"
            let refused (args: string list) (why: string) =
                let logBefore = String.Join("\n", lines output "train.log")
                let code, message = TrainingTests.cli (List.toArray (trainArgs output args))
                Expect.stringStarts (String.Join("\n", lines output "train.log")) logBefore "train.log only appended to"
                Expect.equal code 2 (sprintf "%A is refused: %s" args message)
                Expect.stringContains message why "says why"
                Expect.stringContains message "--move-aside" "and how to start anew"
                Expect.sequenceEqual (lines output "metrics.jsonl") metrics "metrics.jsonl untouched"
                Expect.sequenceEqual (checkpointNames output) checkpoints "checkpoints untouched"
            refused [ "--resume"; "false"; "--max-steps"; "4"; "--checkpoint-every"; "1" ] "--resume false would start over"
            refused [ "--batch"; "4"; "--max-steps"; "4" ] "made with batch = 8, this run has 4"
            refused [ "--alpha"; "0"; "--max-steps"; "8" ] "made with alpha = 1, this run has 0"
            let fewer = DataTests.sceneFolder 16 64 48
            refused [ "--data"; fewer; "--max-steps"; "8" ] "a run over 48 images, this run finds 16"
            // as many images, one of them renamed: another dataset too; the same files elsewhere: the same one
            let copyOfScenes () =
                let copy = DataTests.tempDir "scenes-copy"
                for f in Directory.GetFiles TrainingTests.scenes.Value do File.Copy(f, Path.Combine(copy, present (Path.GetFileName f)))
                copy
            let renamed = copyOfScenes ()
            let last = Directory.GetFiles renamed |> Array.sort |> Array.last
            File.Move(last, Path.Combine(renamed, "zz-" + Path.GetFileName last))
            refused [ "--data"; renamed; "--max-steps"; "8" ] "a run over 48 images of other names"
            // Every checkpoint corrupt: refused with the reasons, not a silent fresh start.
            let saved = [ for c in Checkpoints.List output -> c, File.ReadAllBytes c ]
            for c, bytes in saved do File.WriteAllBytes(c, bytes.[.. bytes.Length / 2])
            refused [ "--max-steps"; "8" ] "every checkpoint"
            for c, bytes in saved do File.WriteAllBytes(c, bytes)
            // --move-aside keeps the old run whole and starts a new one.
            let code, text = TrainingTests.cli (List.toArray (trainArgs output [ "--resume"; "false"; "--max-steps"; "4"; "--move-aside" ]))
            Expect.equal code 0 text
            let aside = Directory.GetDirectories(present (Path.GetDirectoryName output), DirectoryInfo(output).Name + ".old-*") |> Array.exactlyOne
            Expect.sequenceEqual (lines aside "metrics.jsonl") metrics "the old run's metrics, moved"
            Expect.sequenceEqual (checkpointNames aside) checkpoints "the old run's checkpoints, moved"
            Expect.equal (lines output "metrics.jsonl").Length 4 "the new run"
            // --move-aside moves a resumable run too (as its help says), at once, beside the first
            let code, text = TrainingTests.cli (List.toArray (trainArgs output [ "--max-steps"; "6"; "--move-aside" ]))
            Expect.equal code 0 text
            let asides = Directory.GetDirectories(present (Path.GetDirectoryName output), DirectoryInfo(output).Name + ".old-*")
            Expect.equal asides.Length 2 "a second folder aside, whatever the second"
            Expect.equal (lines output "metrics.jsonl").Length 6 "started anew"
            // a run still running in a folder below is not moved from under its process (it failed, its unsaved steps lost, once)
            let inner = Directory.CreateDirectory(Path.Combine(output, "inner")).FullName
            do
                use running = new FileStream(Path.Combine(inner, RunFolder.LockName), FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None)
                File.WriteAllText(Path.Combine(inner, RunFolder.OwnerName), "4242 elsewhere 2026-12-06T00:00:00Z\n")
                let code, text = TrainingTests.cli (List.toArray (trainArgs output [ "--max-steps"; "6"; "--move-aside" ]))
                Expect.equal code 2 text
                Expect.stringContains text "holds the run folder '" "refused"
                Expect.stringContains text "in use by process 4242 on elsewhere" "naming who runs there"
            Directory.Delete(inner, true)
            let moved = copyOfScenes ()
            let code, text = TrainingTests.cli (List.toArray (trainArgs output [ "--data"; moved; "--max-steps"; "7" ]))
            Expect.equal code 0 (sprintf "the same images under another root resume: %s" text)
            Expect.equal (lines output "metrics.jsonl").Length 7 "resumed, not started anew"
            for d in [ output; fewer; renamed; moved ] do Directory.Delete(d, true)
            for a in asides do Directory.Delete(a, true)
        }

        test "a refused newest checkpoint is set aside; the resumed run keeps its own new checkpoints and ends well" {
            let output = DataTests.tempDir "set-aside"
            Expect.equal (fst (TrainingTests.cli (List.toArray (trainArgs output [ "--max-steps"; "6" ])))) 0 "first run"
            let newest = Checkpoints.List output |> Seq.last
            let bytes = File.ReadAllBytes newest
            File.WriteAllBytes(newest, bytes.[.. bytes.Length - 10])
            File.WriteAllBytes(Path.Combine(Checkpoints.Folder output, sprintf "step-00000005.safetensors.2147483000.%s.tmp" (Guid.NewGuid().ToString("N"))), [||])
            let code, text = TrainingTests.cli (List.toArray (trainArgs output [ "--max-steps"; "10"; "--keep-checkpoints"; "2" ]))
            Expect.equal code 0 text
            Expect.equal (checkpointNames output) [ "step-00000008.safetensors"; "step-00000010.safetensors" ] "the newest two of this run are kept (not pruned by the stale step 6)"
            Expect.isTrue (File.Exists(newest + ".refused")) "the refused file is kept aside"
            Expect.isEmpty (Directory.GetFiles(Checkpoints.Folder output, "*.tmp")) "a killed writer's temporary file is removed at start"
            Expect.sequenceEqual [ for l in lines output "metrics.jsonl" -> Text.Json.JsonDocument.Parse(l).RootElement.GetProperty("step").GetInt32() ] [ 1 .. 10 ] "one line per step"
            Directory.Delete(output, true)
        }

        test "checkpoints kept by --keep-every stay kept when a resume leaves the option out; the resume's own are pruned" {
            let output = DataTests.tempDir "keep-every"
            let code, text = TrainingTests.cli (List.toArray (trainArgs output [ "--max-steps"; "6"; "--checkpoint-every"; "1"; "--keep-checkpoints"; "1"; "--keep-every"; "2" ]))
            Expect.equal code 0 text
            Expect.equal (checkpointNames output) [ "step-00000002.safetensors"; "step-00000004.safetensors"; "step-00000006.safetensors" ] "every second step kept"
            let code, text = TrainingTests.cli (List.toArray (trainArgs output [ "--max-steps"; "9"; "--checkpoint-every"; "1"; "--keep-checkpoints"; "1" ]))
            Expect.equal code 0 text
            Expect.equal (checkpointNames output) [ "step-00000002.safetensors"; "step-00000004.safetensors"; "step-00000006.safetensors"; "step-00000009.safetensors" ]
                "the earlier start's kept checkpoints stay (steps 2 and 4 were deleted once); steps 7 and 8 of this start are pruned"
            Directory.Delete(output, true)
        }

        test "bench-data reports a skipped file once, not once per run and worker count" {
            let dir = DataTests.sceneFolder 8 64 48
            File.WriteAllText(Path.Combine(dir, "broken.jpg"), "not an image")
            let more = DataTests.sceneFolder 2 64 48
            let code, out, err = croc 120 [ "bench-data"; "--data"; dir + "," + more; "--size"; "32"; "--patch"; "8"; "--batch"; "4"; "--batches"; "2"; "--workers"; "0,1" ]
            Expect.equal code 0 (out + err)
            Expect.stringContains out "11 images from" "two roots, comma-separated as train's --data ('does not exist' once)"
            let skips = err.Split('\n') |> Array.filter (fun l -> l.Contains "skipped" && l.Contains "broken.jpg")
            Expect.equal skips.Length 1 (sprintf "one line (8 once: 4 runs × 2 worker counts): %s" err)
            for d in [ dir; more ] do Directory.Delete(d, true)
            // its own scenes go to a temporary folder, removed also when they cannot be written
            let temp = DataTests.tempDir "bench-data-temp"
            let code, err = crocWithFileLimit 8L [ "TMPDIR", temp ] [ "bench-data"; "--size"; "32"; "--patch"; "8"; "--batch"; "4"; "--batches"; "1"; "--workers"; "0" ]
            Expect.equal code 1 err
            Expect.stringContains err "a file grew past the largest this process may write" "the limit named"
            Expect.isEmpty (Directory.GetFileSystemEntries temp) "no half-written scenes left in TMPDIR" // left behind once
            Directory.Delete(temp, true)
        }

        test "the synthetic experiment: a run that fails ends its own train.log with the failure line, as train's does" {
            let experiment = DataTests.tempDir "experiment-fails"
            let trainArgsText = String.Join(" ", [ for name, value in TrainingTests.tinyPairs "x" do if not (List.contains name [ "output"; "data"; "epochs" ]) then yield sprintf "--%s %s" name value ]) + " --max-steps 2"
            let code, err = crocWithFileLimit 256L [] [ "experiment"; "--seeds"; "0"; "--output"; experiment; "--train-args=" + trainArgsText ] // the first checkpoint fails
            Expect.equal code 1 err
            let runLog = File.ReadAllLines(Path.Combine(experiment, "croc-seed0", "train.log"))
            Expect.stringContains (Array.last runLog) "croc-host experiment: a file grew past the largest this process may write" "the last line says why (on stderr alone once)"
            Directory.Delete(experiment, true)
        }

        test "an export that fails after its first file leaves none of its files (the rerun was refused by the half export once)" {
            let dir = DataTests.tempDir "export-half"
            let weights = Path.Combine(dir, "w.safetensors")
            BackboneExport.Write(weights, NamedTensors(Seq.map id <| Vit.named (Vit.init (Vit.VitConfig.Tiny(8, 32)) (new torch.Generator(0UL)))).WithPrefix("backbone."))
            let whole = Path.Combine(dir, "whole")
            Expect.equal (fst (TrainingTests.cli [| "export"; "--weights"; weights; "--output"; whole |])) 0 "a whole export, for its sizes"
            // a file-size limit between the .safetensors' size and the larger .pth's: the second write fails
            let sizeOf ending = FileInfo(whole + ending).Length
            Expect.isGreaterThan (sizeOf ".pth" - sizeOf ".safetensors") 4096L "the .pth is larger by a few KiB (zip headers)"
            let half = Path.Combine(dir, "half")
            let code, err = crocWithFileLimit ((sizeOf ".safetensors" + sizeOf ".pth") / 2048L) [] [ "export"; "--weights"; weights; "--output"; half ]
            Expect.equal code 1 err
            Expect.stringContains err "a file grew past the largest this process may write" "the failure said"
            Expect.isEmpty (Directory.GetFiles(dir, "half*")) "no .safetensors without its .pth and card"
            Expect.equal (fst (TrainingTests.cli [| "export"; "--weights"; weights; "--output"; half |])) 0 "the rerun works"
            // with --overwrite, the earlier export stays whole (a new .safetensors beside the old .pth and card once)
            let stamps () = [ for ending in [ ".safetensors"; ".pth"; ".json" ] -> File.GetLastWriteTimeUtc(whole + ending) ]
            let before = stamps ()
            let code, err = crocWithFileLimit ((sizeOf ".safetensors" + sizeOf ".pth") / 2048L) [] [ "export"; "--weights"; weights; "--output"; whole; "--overwrite" ]
            Expect.equal code 1 err
            Expect.sequenceEqual (stamps ()) before "none of the earlier files replaced"
            Expect.isEmpty (Directory.GetFiles(dir, "*.tmp")) "no temporary file left"
            Directory.Delete(dir, true)
        }

        test "a newest checkpoint that is no readable file (a dangling link, a FIFO) is refused and set aside; the run resumes from the previous one" {
            let output = DataTests.tempDir "dangling"
            Expect.equal (fst (TrainingTests.cli (List.toArray (trainArgs output [ "--max-steps"; "2" ])))) 0 "first run"
            let dangling = Path.Combine(Checkpoints.Folder output, "step-00000003.safetensors")
            let fifo = Path.Combine(Checkpoints.Folder output, "step-00000004.safetensors")
            File.CreateSymbolicLink(dangling, Path.Combine(output, "gone", "step-00000003.safetensors")) |> ignore
            use mkfifo = Diagnostics.Process.Start("mkfifo", [ fifo ])
            mkfifo.WaitForExit()
            let code, text = TrainingTests.cli (List.toArray (trainArgs output [ "--max-steps"; "4" ])) // was exit 1 ("Could not find file") or a hang
            Expect.equal code 0 text
            Expect.sequenceEqual [ for l in lines output "metrics.jsonl" -> Text.Json.JsonDocument.Parse(l).RootElement.GetProperty("step").GetInt32() ] [ 1 .. 4 ] "resumed from step 2"
            Expect.stringContains (File.ReadAllText(Path.Combine(output, "train.log"))) "not a readable file" "the reason is logged"
            for aside in [ dangling; fifo ] do
                let kept = FileInfo(aside + ".refused")
                Expect.isTrue (kept.Exists || kept.LinkTarget <> null) (sprintf "%s set aside, not deleted" aside)
            Directory.Delete(output, true)
        }

        test "a metrics.jsonl whose last line lost its newline (a write cut short) gets the next record on a line of its own" {
            let output = DataTests.tempDir "metrics-newline"
            Expect.equal (fst (TrainingTests.cli (List.toArray (trainArgs output [ "--max-steps"; "2" ])))) 0 "first run"
            let metrics = Path.Combine(output, "metrics.jsonl")
            let bytes = File.ReadAllBytes metrics
            File.WriteAllBytes(metrics, bytes.[.. bytes.Length - 2]) // without the final "\n"
            for steps in [ "4"; "6" ] do
                let code, text = TrainingTests.cli (List.toArray (trainArgs output [ "--max-steps"; steps ]))
                Expect.equal code 0 text
            // glued once: step 3's record on step 2's line, which the next resume dropped as torn
            Expect.sequenceEqual [ for l in lines output "metrics.jsonl" -> Text.Json.JsonDocument.Parse(l).RootElement.GetProperty("step").GetInt32() ] [ 1 .. 6 ] "one record per line, none lost"
            let code, out, err = croc 120 (trainArgs output [ "--max-steps"; "3" ])
            Expect.equal code 0 err
            Expect.stringContains out "is at step 6, beyond --max-steps 3: nothing to do" "a run past --max-steps says so ('has already finished its 3 steps' once)"
            Directory.Delete(output, true)
        }

        test "claiming a folder deletes no file but a dead atomic writer's, and only once the folder is known to be the run's; a torn metrics line and a corrupt progress record do not stop a resume" {
            let output = DataTests.tempDir "claim"
            let abandoned (folder: string) = Path.Combine(folder, sprintf "config.json.2147483000.%s.tmp" (Guid.NewGuid().ToString("N")))
            let draft = Path.Combine(output, "draft.tmp")
            File.WriteAllText(draft, "a user's file")
            let dead = abandoned output
            File.WriteAllText(dead, "")
            let code, text = TrainingTests.cli (List.toArray (trainArgs output [ "--max-steps"; "4" ]))
            Expect.equal code 0 text
            Expect.isTrue (File.Exists draft) "a *.tmp file that is not an atomic writer's is kept"
            Expect.isFalse (File.Exists dead) "a dead writer's temporary file is removed"
            let deadAgain = abandoned (Checkpoints.Folder output)
            File.WriteAllText(deadAgain, "")
            let deadMarker = abandoned (MetricsLog.EventsFolder output) // a restart marker's writer killed (kept at every start once)
            File.WriteAllText(deadMarker, "")
            let code, _ = TrainingTests.cli (List.toArray (trainArgs output [ "--batch"; "4"; "--max-steps"; "6" ]))
            Expect.equal code 2 "another identity is refused"
            Expect.isTrue (File.Exists deadAgain) "a refused claim deletes nothing"
            // A crash (or a full disk) tore the last metrics line; a bit flip renamed the newest checkpoint's "step" field.
            File.AppendAllText(Path.Combine(output, "metrics.jsonl"), "{\"step\": 5, \"lo")
            let newest = Checkpoints.List output |> Seq.last
            let bytes = File.ReadAllBytes newest
            let at = Encoding.ASCII.GetString(bytes, 0, min bytes.Length 65536).IndexOf "\\u0022step\\u0022:" // the header's JSON escapes quotes
            Expect.isTrue (at > 0) "the progress record's step field"
            let renamed = Encoding.ASCII.GetBytes "\\u0022stfp\\u0022:"
            Array.blit renamed 0 bytes at renamed.Length
            File.WriteAllBytes(newest, bytes)
            let code, text = TrainingTests.cli (List.toArray (trainArgs output [ "--max-steps"; "6" ]))
            Expect.equal code 0 text
            Expect.stringContains (File.ReadAllText(Path.Combine(output, "train.log"))) "has no Int64 'step'" "the corrupt record is refused with its reason"
            Expect.stringContains (File.ReadAllText(Path.Combine(output, "train.log"))) "settings changed since the run's last start: max-steps 4 → 6" "a changed setting is said on resume"
            let starts = Text.Json.JsonDocument.Parse(File.ReadAllText(Path.Combine(output, "run.json"))).RootElement.GetProperty("starts")
            let last = starts.[starts.GetArrayLength() - 1]
            Expect.equal (last.GetProperty("changed").GetProperty("max-steps").GetRawText()) """{"was":4,"now":6}""" "and recorded with its start in run.json"
            Expect.isFalse (starts.[0].TryGetProperty("changed") |> fst) "the first start changed nothing"
            Expect.isTrue (File.Exists(newest + ".refused")) "and set aside"
            Expect.sequenceEqual [ for l in lines output "metrics.jsonl" -> Text.Json.JsonDocument.Parse(l).RootElement.GetProperty("step").GetInt32() ] [ 1 .. 6 ] "resumed from step 2: one line per step, the torn one gone"
            Expect.isFalse (File.Exists deadAgain) "the accepted claim removes the dead writer's file"
            Expect.isFalse (File.Exists deadMarker) "in tensorboard/ too"
            Directory.Delete(output, true)
        }

        test "a checkpoint refused again is set aside beside the earlier refused copy of its step, not over it" {
            let output = DataTests.tempDir "refused-twice"
            let folder = Directory.CreateDirectory(Checkpoints.Folder output).FullName
            let file = Path.Combine(folder, "step-00000004.safetensors")
            File.WriteAllText(file + ".refused", "the first refused copy")
            File.WriteAllText(file, "the second")
            let moved = Checkpoints.SetAsideAfter(output, 2L)
            Expect.equal (List.ofSeq moved) [ file + ".refused-2" ] "a new name"
            Expect.equal (File.ReadAllText(file + ".refused")) "the first refused copy" "the earlier copy is kept"
            Expect.equal (File.ReadAllText(file + ".refused-2")) "the second" "and the new one"
            Directory.Delete(output, true)
        }

        test "a stop signal whose announcement fails (the log's disk is full) still stops the run after its step, with a checkpoint; one during the step's checkpoint stops there, not a step later" {
            let output = DataTests.tempDir "signal"
            let config = TrainingTests.tinyConfig output [ "max-steps", "50"; "log-every", "1"; "checkpoint-every", "1" ]
            let trainer: Trainer ref = ref Unchecked.defaultof<_>
            // the signal comes as step 1 is logged, before its checkpoint is written
            trainer.Value <- Trainer(config, fun line ->
                if line.StartsWith "step 1/" then trainer.Value.OnStopSignal "SIGTERM" |> ignore
                if line.StartsWith "SIGTERM" then raise (IOException("No space left on device", 28)))
            let summary = trainer.Value.Run(CrOC.Data.ImageSources.Find(config.Data))
            Expect.equal summary.Steps 1L "stopped after its first step"
            Expect.equal (checkpointNames output) [ "step-00000001.safetensors" ] "with a checkpoint"
            Expect.isNull (TrainCommand.PictureCheckpoint(summary, false)) "and no cluster picture after it: the sender wants the process gone"
            let finished = TrainSummary(summary.Steps, summary.StepsRun, summary.FirstLoss, summary.LastLoss, summary.Seconds, summary.ImagesPerSecond, summary.LastCheckpoint, false)
            Expect.equal (TrainCommand.PictureCheckpoint(finished, false)) summary.LastCheckpoint "a finished run draws it"
            Expect.isNull (TrainCommand.PictureCheckpoint(finished, true)) "unless a signal came after its last step"
            // A signal before the first step (while the data was searched): no step, nothing written, said so.
            let lines = ResizeArray<string>()
            let early = Trainer(config, Action<string>(lines.Add))
            Expect.isTrue (early.OnStopSignal "SIGTERM") "the first SIGTERM is handled"
            Expect.isFalse (early.OnStopSignal "SIGTERM") "the second is left to its default action: the process ends at once"
            Expect.isTrue (early.OnStopSignal "interrupt") "another signal's first is handled"
            let none = early.Run(CrOC.Data.ImageSources.Find(config.Data))
            Expect.equal (none.Steps, none.StepsRun) (1L, 0L) "resumed at step 1, no step run"
            Expect.equal (checkpointNames output) [ "step-00000001.safetensors" ] "no new checkpoint"
            Expect.contains lines "SIGTERM: stopping (no step is running)" "the signal said what it does"
            Directory.Delete(output, true)
        }

        test "a synthetic set whose generation was stopped leaves no lasting half-built copy; a live builder's is kept" {
            let home = DataTests.tempDir "synthetic-home"
            let root = Path.Combine(home, "synthetic-v1-seed0-8-2")
            let partial (pid: int) = Directory.CreateDirectory(sprintf "%s.%s-%d-%s.partial" root Environment.MachineName pid (Guid.NewGuid().ToString("N"))).FullName
            let dead, live = partial 2147483000, partial Environment.ProcessId
            Expect.equal (SyntheticDataset.Ensure(8, 2, 0L, home)) root "generated"
            Expect.isFalse (Directory.Exists dead) "the stopped builder's copy is removed"
            Expect.isTrue (Directory.Exists live) "a running builder's copy is left alone"
            // A generation that fails (a full disk; here ulimit -f) removes its half-built copy at once (it held the space until the next start once).
            let failing = DataTests.tempDir "synthetic-failing"
            let code, err = crocWithFileLimit 6L [ "CROC_DATA_HOME", Path.Combine(failing, "home") ] [ "train"; "--output"; Path.Combine(failing, "run"); "--max-steps"; "1"; "--synthetic-train"; "64"; "--synthetic-val"; "4" ]
            Expect.equal code 1 err
            Expect.isEmpty (Directory.GetFileSystemEntries(Path.Combine(failing, "home"))) "no .partial copy left"
            for d in [ home; failing ] do Directory.Delete(d, true)
        }

        test "a run and its data are kept apart: an --output inside the data (the synthetic set's folder too) is refused, and so is a foreign folder where the synthetic set goes" {
            let home = DataTests.tempDir "apart-home"
            let synthetic = [ "--max-steps"; "1"; "--synthetic-train"; "8"; "--synthetic-val"; "2"; "--depth"; "1"; "--batch"; "4"; "--image-size"; "32" ]
            let root = Path.Combine(home, "synthetic-v1-seed0-8-2")
            let train output = crocInShell "true" "" [ "CROC_DATA_HOME", home ] ([ "train"; "--output"; output ] @ synthetic)
            // the run took the set's folder, then --move-aside moved the set away and every later run failed after generating it anew, once
            for output in [ root; Path.Combine(root, "run") ] do
                let code, err = train output
                Expect.equal code 2 err
                Expect.stringContains err ("lies inside the training data '" + root + "'") output
            Expect.isFalse (Directory.Exists root) "nothing made there"
            // a folder of something else where the set goes: refused before generating (regenerated and failed at the rename on every run once)
            Directory.CreateDirectory root |> ignore
            File.WriteAllText(Path.Combine(root, "notes.txt"), "not scenes")
            let code, err = train (Path.Combine(home, "run-a"))
            Expect.equal code 2 err
            Expect.stringContains err "is where the synthetic scenes go, but it holds something else" "said"
            Expect.sequenceEqual (Directory.GetFileSystemEntries home |> Array.map Path.GetFileName |> Array.sort) [| "run-a"; "synthetic-v1-seed0-8-2" |] "no half-built copy left"
            Expect.sequenceEqual (Directory.GetFileSystemEntries root |> Array.map Path.GetFileName) [| "notes.txt" |] "the folder as it was"
            // an empty folder there holds nothing: the set is generated in its place
            File.Delete(Path.Combine(root, "notes.txt"))
            let code, err = train (Path.Combine(home, "run-b"))
            Expect.equal code 0 err
            Expect.isTrue (File.Exists(Path.Combine(root, "train-files.txt"))) "generated"
            // a --data folder holding the run: its clusters.png would be a training image of the next run
            let code, message = TrainingTests.cli (List.toArray (trainArgs (Path.Combine(TrainingTests.scenes.Force(), "runs", "inside")) []))
            Expect.equal code 2 message
            Expect.stringContains message "lies inside the training data" "refused"
            Expect.isFalse (Directory.Exists(Path.Combine(TrainingTests.scenes.Force(), "runs"))) "nothing made in the data"
            // what the search cannot reach is no part of the data: a hidden folder, a pattern's subfolders (refused too once, by review)
            let data = Path.Combine(home, "photos")
            Directory.CreateDirectory data |> ignore
            for file in Directory.GetFiles(TrainingTests.scenes.Force()) |> Array.sort |> Array.truncate 16 do File.Copy(file, Path.Combine(data, nonNull (Path.GetFileName file)))
            for output, root in [ Path.Combine(data, ".runs", "a"), data; Path.Combine(data, "runs", "b"), Path.Combine(data, "*.jpg") ] do
                let code, message = TrainingTests.cli (List.toArray (trainArgs output [ "--data"; root; "--max-steps"; "1" ]))
                Expect.equal code 0 (sprintf "--data %s --output %s: %s" root output message)
            Directory.Delete(home, true)
        }

        test "CROC_DATA_HOME: a leading ~/ is the home folder and an empty value counts as unset; a deleted working folder is said before libtorch loads" {
            // '~/zz' generated into a folder named '~' and then looked for the set in the home folder (exit 2 on every run) once; '' generated into the working folder
            let home = DataTests.tempDir "data-home"
            let synthetic = [ "--max-steps"; "1"; "--synthetic-train"; "8"; "--synthetic-val"; "2"; "--depth"; "1"; "--batch"; "4"; "--image-size"; "32" ]
            for value, expected in [ "~/zz", Path.Combine(home, "zz"); "", Path.Combine(home, ".local", "share", "crocnet") ] do
                let run = Path.Combine(home, sprintf "run-%d" value.Length)
                let code, err = crocInShell (sprintf "cd '%s'" home) "" [ "CROC_DATA_HOME", value; "HOME", home; "XDG_DATA_HOME", "" ] ([ "train"; "--output"; run ] @ synthetic)
                Expect.equal code 0 err
                Expect.isTrue (Directory.Exists(Path.Combine(expected, "synthetic-v1-seed0-8-2"))) (sprintf "CROC_DATA_HOME='%s': the set in %s" value expected)
            Expect.isFalse (Directory.Exists(Path.Combine(home, "~"))) "no folder named '~'"
            // a finished synthetic run without its picture (stopped between its last checkpoint and the picture) draws it when run again
            let run = Path.Combine(home, "run-4") // CROC_DATA_HOME='~/zz'
            File.Delete(Path.Combine(run, "clusters.png"))
            let code, err = crocInShell (sprintf "cd '%s'" home) "" [ "CROC_DATA_HOME", "~/zz"; "HOME", home ] ([ "train"; "--output"; run ] @ synthetic)
            Expect.equal code 0 err
            Expect.isTrue (File.Exists(Path.Combine(run, "clusters.png"))) "drawn on the rerun ('already finished' without it on every rerun once)"
            // "Intel oneMKL FATAL ERROR: Cannot load libtorch_cpu.so" (exit 2) and nothing else once
            let gone = Path.Combine(home, "gone")
            let code, err = crocInShell (sprintf "mkdir '%s' && cd '%s' && rmdir '%s'" gone gone gone) "" [] [ "bench-vit"; "--help" ]
            Expect.equal code 2 err
            Expect.stringContains err "the working folder no longer exists" "said"
            Directory.Delete(home, true)
        }

        test "small files are read up to a limit: /dev/zero as --config, a run's config.json or run.json, labels.txt or a VOC split list is refused in one line, with little memory" {
            let allocatedBy (f: unit -> unit) =
                let before = GC.GetAllocatedBytesForCurrentThread()
                f ()
                GC.GetAllocatedBytesForCurrentThread() - before
            let withinLimit what (bytes: int64) = Expect.isLessThan bytes (600L <<< 20) (what + ": bytes allocated (the largest limit, a list's, is 256 MB)")
            let output = DataTests.tempDir "zero-config"
            let mutable answer = (0, "")
            withinLimit "--config" (allocatedBy (fun () -> answer <- TrainingTests.cli (List.toArray (trainArgs output [ "--config"; "/dev/zero" ]))))
            Expect.equal (fst answer) 2 (snd answer)
            Expect.stringContains (snd answer) "--config '/dev/zero' cannot be read: '/dev/zero' holds more than" "says why"
            for file in [ "config.json"; "run.json" ] do
                let record = Path.Combine(output, file)
                File.CreateSymbolicLink(record, "/dev/zero") |> ignore
                withinLimit file (allocatedBy (fun () -> answer <- TrainingTests.cli (List.toArray (trainArgs output [ "--max-steps"; "1" ]))))
                Expect.equal (fst answer) 2 (snd answer)
                Expect.stringContains (snd answer) (sprintf "holds a %s that is not a croc-host run's ('%s' holds more than" file record) "says why"
                File.Delete record
            let voc = Path.Combine(output, "voc")
            CrOC.Data.SyntheticScenes.WriteVoc(voc, 2, 1, 3L, CrOC.Data.SyntheticScenes.SceneOptions(32, 32))
            for file, read in [ "labels.txt", (fun () -> CrOC.Host.Evaluation.EvalSegCommand.ClassNames(voc, Nullable()) |> ignore)
                                Path.Combine("ImageSets", "Segmentation", "train.txt"), (fun () -> CrOC.Data.VocSegmentation(voc, "train") |> ignore) ] do
                let path = Path.Combine(voc, file)
                File.Delete path
                File.CreateSymbolicLink(path, "/dev/zero") |> ignore
                withinLimit file (allocatedBy (fun () ->
                    let refusal = Expect.throwsC read id
                    Expect.isTrue (refusal :? CrOC.Data.DatasetException && refusal.Message.Contains "holds more than") (sprintf "%s: %s" file refusal.Message)))
            Directory.Delete(output, true)
        }

        test "an output on a full disk is refused before the work, exit 1 (an empty probe file was made there, and eval-knn's result lost after the work); needs a tmpfs mount" {
            let point = DataTests.tempDir "full-disk"
            let run (command: string) = let p = Process.Start("bash", [| "-c"; command |]) in p.WaitForExit(); p.ExitCode
            if run (sprintf "mount -t tmpfs -o size=64k tmpfs '%s' 2>/dev/null" point) <> 0 then
                Directory.Delete point
                skiptest "mounting a tmpfs is not permitted here"
            try
                run (sprintf "dd if=/dev/zero of='%s/filler' bs=4k 2>/dev/null" point) |> ignore // until the disk is full
                for option, check in [ "--json", (fun () -> OutputPaths.File(Path.Combine(point, "result.json"), "--json") |> ignore)
                                       "--output", (fun () -> OutputPaths.Folder(Path.Combine(point, "run"), "--output") |> ignore) ] do
                    let refusal = thrown<IOException> check option
                    Expect.isTrue (DiskSpace.IsDiskFull refusal) (option + ": a full disk (exit 1, as a full disk mid-run: a requeue may retry)")
                    Expect.stringContains refusal.Message "not one byte fits on its disk" option
                Expect.isEmpty (Directory.GetFiles point |> Array.filter (fun f -> Path.GetFileName f <> "filler")) "no probe file left (the empty folder it made goes at the command's end)"
            finally
                run (sprintf "umount '%s'" point) |> ignore
                Directory.Delete point
        }

        test "a start whose owner record cannot be written (a full disk: run.owner a link to /dev/full) fails in one line and leaves no run.lock" {
            let output = DataTests.tempDir "full-owner"
            let owner = Path.Combine(output, RunFolder.OwnerName)
            File.CreateSymbolicLink(owner, "/dev/full") |> ignore
            let code, message = TrainingTests.cli (List.toArray (trainArgs output [ "--max-steps"; "1" ]))
            Expect.equal code 1 message
            Expect.stringContains message "the disk is full" "says why (not 'in use by another run')"
            Expect.isFalse (File.Exists(Path.Combine(output, RunFolder.LockName))) "no run.lock left (a full disk left it, and the folder, once)"
            Expect.equal (FileInfo(owner).LinkTarget) "/dev/full" "the link, which was there before, stays"
            Directory.Delete(output, true)
        }

        test "a folder whose config.json or run.json is not a run's (a model folder) is refused; its files stay as they were" {
            for file, text in [ "config.json", "{\"model_type\": \"vit\", \"hidden_size\": 384}"; "config.json", "{\"arch\": \"tiny\","; "run.json", "[1, 2]" ] do
                let output = DataTests.tempDir "foreign"
                let path = Path.Combine(output, file)
                File.WriteAllText(path, text)
                let code, message = TrainingTests.cli (List.toArray (trainArgs output [ "--max-steps"; "1" ]))
                Expect.equal code 2 message
                Expect.stringContains message (sprintf "holds a %s that is not a croc-host run's" file) "says why"
                Expect.isFalse (message.Contains "CrOC.Host") (sprintf "no .NET type names (TrainConfig's once): %s" message)
                Expect.equal (File.ReadAllText path) text "left as it was"
                Expect.sequenceEqual (Directory.GetFiles output |> Array.map Path.GetFileName) [| file |] "nothing added (no run.lock)"
                Directory.Delete(output, true)
        }

        test "a start that fails before its first step (bad data) does not claim the folder: the corrected run is not refused" {
            let output = DataTests.tempDir "failed-start"
            let data = output + "-data"
            let list = Path.Combine(data, "list.txt")
            Directory.CreateDirectory data |> ignore
            File.WriteAllLines(list, [ "/nonexistent/a.jpg"; "/nonexistent/b.jpg" ])
            let code, message = TrainingTests.cli (List.toArray (trainArgs output [ "--data"; list; "--batch"; "1"; "--max-steps"; "2" ]))
            Expect.equal code 2 message
            let code, text = TrainingTests.cli (List.toArray (trainArgs output [ "--max-steps"; "2" ]))
            Expect.equal code 0 (sprintf "the corrected run:\n%s" text)
            Directory.Delete(output, true)
            Directory.Delete(data, true)
        }

        test "a command that fails removes the output folders it made and left empty, not one that holds a file or that was there before" {
            let root = DataTests.tempDir "made-folders"
            let kept = Path.Combine(root, "kept.txt")
            File.WriteAllText(kept, "there before")
            let code, message =
                TrainingTests.cli [| "eval-seg"; "--weights"; Path.Combine(root, "absent.safetensors"); "--data"; root
                                     "--json"; Path.Combine(root, "new", "run", "r.json"); "--save-predictions"; Path.Combine(root, "p", "q") |]
            Expect.equal code 2 message
            Expect.stringContains message "absent.safetensors" "refused for its weights, after its outputs were checked"
            for made in [ "new"; "p" ] do Expect.isFalse (Directory.Exists(Path.Combine(root, made))) (made + ": the folders it made for its outputs are gone")
            Expect.isTrue (File.Exists kept) "the folder that was there keeps its file"
            // train writes its log into the run folder before it can fail: that folder is kept.
            let list = Path.Combine(root, "list.txt")
            File.WriteAllLines(list, [ "/nonexistent/a.jpg" ])
            let code, message = TrainingTests.cli (List.toArray (trainArgs (Path.Combine(root, "run")) [ "--data"; list; "--batch"; "1" ]))
            Expect.equal code 2 message
            Expect.stringContains (File.ReadAllText(Path.Combine(root, "run", "train.log"))) "could not be decoded" "the failed run's log kept"
            // The rule itself: only folders this command made, only while they hold no file.
            MadeFolders.Begin()
            MadeFolders.Make(Path.Combine(root, "kept", "empty"))
            MadeFolders.Make(Path.Combine(root, "gone", "a", "b"))
            File.WriteAllText(Path.Combine(root, "kept", "file.txt"), "written meanwhile")
            Directory.CreateDirectory(Path.Combine(root, "gone", "a", "another's")) |> ignore // made meanwhile by another process
            Expect.equal (set (MadeFolders.RemoveEmpty())) (set [ Path.Combine(root, "kept", "empty"); Path.Combine(root, "gone", "a", "b") ]) "only the empty folders this command made"
            Expect.isTrue (Directory.Exists(Path.Combine(root, "gone", "a", "another's"))) "another's new folder stays, with its parents"
            Expect.isTrue (File.Exists(Path.Combine(root, "kept", "file.txt"))) "a folder holding a file stays, with the file"
            Expect.isTrue (Directory.Exists root) "the folder that was there stays"
            Directory.Delete(root, true)
        }

        test "a --data root whose name holds a comma is taken whole when it exists; otherwise commas separate roots" {
            let root = DataTests.tempDir "comma-root"
            let comma = Directory.CreateDirectory(Path.Combine(root, "photos,2024")).FullName
            let data value = (TrainingTests.configOf [ "data", value ]).Data |> List.ofArray
            Expect.equal (data comma) [ comma ] "an existing folder named with a comma is one root"
            let shard = TarTests.writeTar Formats.Tar.TarEntryFormat.Pax (Path.Combine(root, "shard,1.tar")) [ "train/a.jpg", [| 1uy |] ]
            Expect.equal (data (shard + "#train")) [ shard + "#train" ] "an archive named with a comma, with its folder"
            Expect.equal (data (Path.Combine(root, "a") + "," + Path.Combine(root, "b"))) [ Path.Combine(root, "a"); Path.Combine(root, "b") ] "a list of roots"
            Directory.Delete(root, true)
        }

        test "signals: SIGHUP stops a run cleanly (unless ignored, as under nohup); the synthetic experiment's runs stop with a checkpoint too" {
            let output = DataTests.tempDir "hangup"
            let started (shell: string) (args: string list) =
                let info = ProcessStartInfo("bash", RedirectStandardOutput = true, RedirectStandardError = true)
                for a in [ "-c"; shell + " exec dotnet \"$@\""; "croc"; hostDll ] @ args do info.ArgumentList.Add a
                let p = present (Process.Start info)
                let out, err = p.StandardOutput.ReadToEndAsync(), p.StandardError.ReadToEndAsync()
                p, (fun () -> (if p.WaitForExit 120000 then () else p.Kill true; failwith "did not end"); p.ExitCode, out.Result + err.Result)
            let signalAfterFirstStep (run: string) (signal: string) (p: Process) =
                let metrics = Path.Combine(run, "metrics.jsonl")
                let watch = Stopwatch.StartNew()
                while not (File.Exists metrics && FileInfo(metrics).Length > 0L) do
                    if watch.Elapsed.TotalSeconds > 120.0 || p.HasExited then failwith "no step was run"
                    Threading.Thread.Sleep 100
                (present (Process.Start("kill", [| "-" + signal; string p.Id |]))).WaitForExit()
            let p, ended = started "" (trainArgs output [ "--epochs"; "1000" ])
            signalAfterFirstStep output "HUP" p
            let code, text = ended ()
            Expect.equal code 0 text
            Expect.stringContains text "SIGHUP: finishing the current step, then writing a checkpoint" "heard"
            Expect.isNonEmpty (Checkpoints.List output) "checkpointed"
            // Ignored at start (nohup): the run goes on; SIGTERM then stops it.
            let ignoring = output + "-nohup"
            let p, ended = started "trap '' HUP;" (trainArgs ignoring [ "--epochs"; "1000" ])
            signalAfterFirstStep ignoring "HUP" p
            Threading.Thread.Sleep 1500
            Expect.isFalse p.HasExited "SIGHUP ignored, as nohup asked"
            (present (Process.Start("kill", [| "-TERM"; string p.Id |]))).WaitForExit()
            let code, text = ended ()
            Expect.equal code 0 text
            Expect.isFalse (text.Contains "SIGHUP") "not heard"
            // The synthetic experiment: its in-process runs stop as train's do.
            let experiment = output + "-experiment"
            let trainArgsText = String.Join(" ", [ for name, value in TrainingTests.tinyPairs "x" do if not (List.contains name [ "output"; "data"; "epochs" ]) then yield sprintf "--%s %s" name value ]) + " --epochs 1000"
            let p, ended = started "" [ "experiment"; "--seeds"; "0"; "--output"; experiment; "--train-args=" + trainArgsText ]
            signalAfterFirstStep (Path.Combine(experiment, "croc-seed0")) "TERM" p
            let code, text = ended ()
            Expect.equal code 0 text
            Expect.stringContains text "rerun the same command to resume" "said how to go on"
            Expect.isNonEmpty (Checkpoints.List(Path.Combine(experiment, "croc-seed0"))) "checkpointed"
            let runLog = File.ReadAllText(Path.Combine(experiment, "croc-seed0", "train.log")) // none once: the README promises one per run
            Expect.stringContains runLog "optimiser steps per epoch" "its train.log has the run's lines"
            Expect.stringContains runLog "SIGTERM: finishing the current step" "and the stop"
            for folder in [ output; ignoring; experiment ] do Directory.Delete(folder, true)
        }

        test "a stop signal while the synthetic scenes are being generated ends the generation: exit 0 at once, the half-built copy removed" {
            // "interrupt: stopping (no step is running)", then the generation went on (for hours at the largest --synthetic-train) once
            let home = DataTests.tempDir "stop-generating"
            let data = Path.Combine(home, "data")
            let info = ProcessStartInfo("dotnet", RedirectStandardOutput = true, RedirectStandardError = true)
            for a in [ hostDll; "train"; "--output"; Path.Combine(home, "run"); "--synthetic-train"; "100000"; "--synthetic-val"; "1"; "--max-steps"; "1" ] do info.ArgumentList.Add a
            info.Environment.["CROC_DATA_HOME"] <- data
            use p = present (Process.Start info)
            let out, err = p.StandardOutput.ReadToEndAsync(), p.StandardError.ReadToEndAsync()
            let watch = Stopwatch.StartNew()
            while not (Directory.Exists data && Directory.GetDirectories(data, "*.partial").Length > 0) do
                if watch.Elapsed.TotalSeconds > 120.0 || p.HasExited then failwithf "the generation did not start: %s" err.Result
                Threading.Thread.Sleep 50
            Threading.Thread.Sleep 500
            (present (Process.Start("kill", [| "-INT"; string p.Id |]))).WaitForExit()
            let stopped = Stopwatch.StartNew()
            if not (p.WaitForExit 30_000) then
                p.Kill true
                failtest "still generating 30 s after the signal"
            Expect.equal p.ExitCode 0 (out.Result + err.Result)
            Expect.isLessThan stopped.Elapsed.TotalSeconds 15.0 "at once, not after the 100,000 scenes"
            Expect.stringContains out.Result "stopped while generating the synthetic scenes" "said"
            Expect.isEmpty (Directory.GetFileSystemEntries data) "the half-built copy removed"
            Directory.Delete(home, true)
        }

        test "the real-photo suite refuses bad data before pre-training: a split's missing mask, a damaged archive, a result file that is a folder; a job's bad input is the suite's exit 2" {
            // each was found by its evaluation after the whole pre-training (exit 1) once
            let root = DataTests.tempDir "real-root"
            let camVid, horses = Path.Combine(root, "camvid"), Path.Combine(root, "weizmann-horses")
            CrOC.Data.SyntheticScenes.WriteVoc(camVid, 6, 2, 1L)
            let splits = Path.Combine(camVid, "ImageSets", "Segmentation")
            for name in [ "trainval"; "test" ] do File.Copy(Path.Combine(splits, "train.txt"), Path.Combine(splits, name + ".txt"))
            CrOC.Data.SyntheticScenes.WriteVoc(horses, 4, 2, 2L)
            let tar = Path.Combine(root, "tiny-imagenet-subset.tar")
            Formats.Tar.TarFile.CreateFromDirectory(Path.Combine(horses, "JPEGImages"), tar, false)
            let suite output = croc 120 [ "experiment"; "--suite"; "real"; "--quick"; "--data-root"; root; "--output"; Path.Combine(root, output) ]
            let horseVal = File.ReadAllLines(Path.Combine(horses, "ImageSets", "Segmentation", "val.txt")).[0]
            let mask = Path.Combine(horses, "SegmentationClass", horseVal + ".png")
            File.Move(mask, mask + ".away")
            let code, out, err = suite "out-mask"
            Expect.equal code 2 err
            Expect.stringContains err (horseVal + ".png: file not found") "the missing mask named"
            Expect.isFalse (out.Contains "== pre-training") "before pre-training"
            File.Move(mask + ".away", mask)
            let whole = File.ReadAllBytes tar
            File.WriteAllBytes(tar, whole.[.. whole.Length / 2 + 100])
            let code, _, err = suite "out-tar"
            Expect.equal code 2 err
            Expect.stringContains err "is damaged" "a truncated archive (a k-NN on the members before the damage, counted as done, once)"
            File.WriteAllBytes(tar, whole)
            Directory.CreateDirectory(Path.Combine(root, "out-results", "results.json")) |> ignore
            let code, _, err = suite "out-results"
            Expect.equal code 2 err
            Expect.stringContains err "is a folder, not a file" "results.json as a folder (every phase ran, then 'Is a directory' once)"
            let refusing = Evaluation.RealPhotos.HostJob("refusing", [| "train"; "--lr"; "-1" |], Path.Combine(root, "refusing.log"))
            let e = thrown<exn> (fun () -> Evaluation.RealPhotos.HostJobs.Run([| refusing |], 1, Action<string>(ignore))) "the job refuses"
            Expect.equal (ExitCodes.For e) 2 "a job's bad input is the suite's exit 2 (1 once)"
            Directory.Delete(root, true)
        }

        test "an evaluation stopped by a signal (Ctrl-C, SIGTERM, the suite's SIGUSR1) leaves no empty output folder behind, as a failed one does" {
            let dir, voc, weights = vocWithBackbone "stopped-eval" 64 2 5L
            for signal, expected in [ "INT", 130; "TERM", 143; "USR1", 138 ] do // USR1: the real-photo suite's stop
                let made = Path.Combine(dir, "out-" + signal)
                let info = ProcessStartInfo("dotnet", RedirectStandardOutput = true, RedirectStandardError = true)
                for a in [ hostDll; "eval-knn"; "--weights"; weights; "--bank"; voc; "--queries"; voc; "--size"; "512"; "--batch"; "2"; "--json"; Path.Combine(made, "sub", "knn.json") ] do info.ArgumentList.Add a
                use p = present (Process.Start info)
                let out, err = p.StandardOutput.ReadToEndAsync(), p.StandardError.ReadToEndAsync()
                let watch = Stopwatch.StartNew()
                while not (Directory.Exists(Path.Combine(made, "sub"))) do
                    if watch.Elapsed.TotalSeconds > 120.0 || p.HasExited then failwithf "the folder was not made: %s" err.Result
                    Threading.Thread.Sleep 20
                Threading.Thread.Sleep 1000 // the folder is made before any work, which takes tens of seconds at 512 px
                (present (Process.Start("kill", [| "-" + signal; string p.Id |]))).WaitForExit()
                if not (p.WaitForExit 120000) then p.Kill true; failwith "did not end"
                Expect.equal p.ExitCode expected (sprintf "SIG%s ends it as the signal does:\n%s%s" signal out.Result err.Result)
                Expect.isFalse (Directory.Exists made) (sprintf "SIG%s: the folders it made and left empty are gone (were left once)" signal)
                Expect.stringContains err.Result (sprintf "croc-host eval-knn: stopped by SIG%s before it finished (exit %d)" signal expected) "said in one line (nothing was said once)"
            Directory.Delete(dir, true)
        }

        test "a stop signal abandons the writes in progress: their temporary files go, a later step of theirs ends quietly with the signal's code, their targets stay as they were" {
            let dir = DataTests.tempDir "live-temporaries"
            let target, other = Path.Combine(dir, "a.safetensors"), Path.Combine(dir, "a.pth")
            File.WriteAllText(target, "the earlier export")
            use writing = new Threading.ManualResetEventSlim()
            use release = new Threading.ManualResetEventSlim()
            let writer =
                Threading.Tasks.Task.Run(fun () ->
                    AtomicFile.WriteTogether(
                        [ AtomicFile.Content(target, fun s -> s.Write([| 1uy |]))
                          AtomicFile.Content(other, fun s -> writing.Set(); release.Wait(); s.Write([| 2uy |])) ]))
            writing.Wait()
            Expect.equal (Directory.GetFiles(dir, "*.tmp").Length) 2 "both written under temporary names"
            try
                Expect.equal (AtomicFile.Abandon 143) 2 "the signal's cleanup removes both" // an export stopped between its files left them once
                Expect.isEmpty (Directory.GetFiles(dir, "*.tmp")) "none left"
                release.Set()
                let failure = Expect.throwsC (fun () -> writer.Wait()) id
                match failure.InnerException with
                | :? StoppedBySignalException as stopped ->
                    Expect.equal stopped.ExitCode 143 "the signal's code"
                    Expect.equal (ExitCodes.Report("export", stopped)) 143 "reported without a second line (a FileNotFoundException's line followed the signal's once)"
                | e -> failtestf "not a stop: %O" e
                Expect.throwsT<StoppedBySignalException> (fun () -> AtomicFile.Write(Path.Combine(dir, "later.json"), fun s -> s.Write([| 3uy |]))) "a write begun after the cleanup leaves no temporary file either"
                Expect.equal (File.ReadAllText target) "the earlier export" "the target as it was"
                Expect.isFalse (File.Exists other) "nothing new at the other target"
                Expect.sequenceEqual (Directory.GetFiles dir |> Array.map Path.GetFileName) [| "a.safetensors" |] "nothing else"
            finally
                AtomicFile.ResumeAfterAbandon()
            Directory.Delete(dir, true)
        }

        test "file limits: a write past ulimit -f is one line (exit 1) and leaves no temporary file; a checkpoint folder that cannot be written is refused before the first step; a 20-digit stray is no checkpoint" {
            let output = DataTests.tempDir "file-limits"
            let code, text = TrainingTests.cli (List.toArray (trainArgs output [ "--max-steps"; "2" ]))
            Expect.equal code 0 text
            let first = Checkpoints.List(output) |> Seq.last
            let code, err = crocWithFileLimit (FileInfo(first).Length / 2048L) [] (trainArgs output [ "--max-steps"; "3" ]) // half a checkpoint
            Expect.equal code 1 err
            Expect.stringContains err "a file grew past the largest this process may write (ulimit -f" "named"
            Expect.isFalse (err.Contains "   at ") "no stack trace"
            Expect.isEmpty (Directory.GetFiles(Checkpoints.Folder output, "*.tmp")) "its temporary file removed"
            Expect.equal (Checkpoints.List output |> List.ofSeq) [ first ] "the earlier checkpoint kept"
            Safetensors.Read first |> ignore
            File.WriteAllBytes(Path.Combine(Checkpoints.Folder output, "step-99999999999999999999.safetensors"), [||])
            Expect.equal (Checkpoints.List output |> List.ofSeq) [ first ] "a step beyond long's range is a stray, not an overflow"
            let blocked = output + "-blocked"
            Directory.CreateDirectory blocked |> ignore
            File.WriteAllText(Path.Combine(blocked, "checkpoints"), "a file where the folder goes")
            let code, text = TrainingTests.cli (List.toArray (trainArgs blocked [ "--max-steps"; "4"; "--checkpoint-every"; "4" ]))
            Expect.equal code 2 text
            Expect.stringContains text "checkpoint folder" "named at start"
            Expect.isFalse (File.Exists(Path.Combine(blocked, "metrics.jsonl")) && FileInfo(Path.Combine(blocked, "metrics.jsonl")).Length > 0L) "before any step"
            Expect.sequenceEqual (Directory.GetFileSystemEntries blocked |> Array.map Path.GetFileName) [| "checkpoints" |] "no lock files left in a folder that is no run" // run.lock and run.owner once
            for folder in [ output; blocked ] do Directory.Delete(folder, true)
        }

        test "stopping the job runner (the real suite's Ctrl-C, or a SIGTERM to its whole process group) passes the stop to a running training job, which checkpoints and ends; the runner reports a clean stop" {
            let output = DataTests.tempDir "jobs-stop"
            let log = output + ".log"
            let job = Evaluation.RealPhotos.HostJob("train", List.toArray (trainArgs output [ "--max-steps"; "100000" ]), log)
            let lines = Collections.Concurrent.ConcurrentQueue<string>()
            let runner = Threading.Tasks.Task.Run(fun () -> Evaluation.RealPhotos.HostJobs.Run([| job |], 1, Action<string>(lines.Enqueue)))
            let watch = Stopwatch.StartNew()
            while Checkpoints.List(output).Count = 0 do
                if watch.Elapsed.TotalSeconds > 120.0 || runner.IsCompleted then failwith "the job wrote no checkpoint"
                Threading.Thread.Sleep 200
            // timeout, Slurm and systemd signal the whole group: the job hears the runner's stop and SIGTERM itself
            let child = Diagnostics.Process.GetProcesses() |> Array.filter (fun p -> try File.ReadAllText($"/proc/{p.Id}/cmdline").Contains output with _ -> false) |> Array.exactlyOne
            Evaluation.RealPhotos.HostJobs.StopAll()
            use term = Diagnostics.Process.Start("kill", [ "-TERM"; string child.Id ])
            term.WaitForExit()
            let outcome = try (if runner.Wait(TimeSpan.FromSeconds 120.0) then "ended without a stop" else "still running") with :? AggregateException as e -> (nonNull e.InnerException).GetType().Name
            Expect.equal outcome "JobsStoppedException" "a clean stop, reported as such"
            Expect.stringContains (File.ReadAllText log) "SIGUSR1: finishing the current step" "the job heard the runner's stop as well"
            Expect.stringContains (File.ReadAllText log) "stopped at step" "and ended after its checkpoint" // a second SIGTERM would have ended it at once: exit 143
            Expect.contains lines "[train] stopped (exit code 0)" "a clean exit"
            Directory.Delete(output, true)
            File.Delete log
        }

        test "the data failing mid-run (every image gone) ends the run with a checkpoint of the steps it ran, named in its log, not with the last periodic one" {
            let data = DataTests.sceneFolder 48 64 64
            let output = DataTests.tempDir "data-gone"
            let config = TrainingTests.tinyConfig output [ "data", data; "epochs", "400"; "checkpoint-every", "1000" ]
            let logged = Collections.Concurrent.ConcurrentQueue<string>()
            let run = Threading.Tasks.Task.Run(fun () -> Trainer(config, Action<string>(logged.Enqueue)).Run(CrOC.Data.ImageSources.Find(config.Data)) |> ignore)
            let watch = Stopwatch.StartNew()
            while (lines output "metrics.jsonl").Length < 3 do
                if watch.Elapsed.TotalSeconds > 120.0 || run.IsCompleted then failwith "the run logged no 3 steps"
                Threading.Thread.Sleep 50
            for file in Directory.GetFiles data do File.Delete file
            let outcome = try (if run.Wait(TimeSpan.FromSeconds 120.0) then "ended" else "still running") with :? AggregateException as e -> (nonNull e.InnerException).Message
            Expect.stringContains outcome "files found or read before among them: is the data's storage still there" "the data failure ends the run (a storage failure: files read before are gone)"
            let saved = Checkpoints.List output
            Expect.equal saved.Count 1 "one checkpoint, written as the run ended (no periodic one before step 1000)"
            Expect.isGreaterThanOrEqual (Checkpoints.StepOf saved.[0]) 3L "it holds the steps run"
            Expect.exists logged (fun l -> l.Contains "the data failed at step" && l.Contains(nonNull (Path.GetFileName saved.[0]))) "and the log names it"
            Directory.Delete(output, true)
            Directory.Delete(data, true)
        }

        test "a job that fails stops the job runner's batch at once: it is logged when it ends and the running sibling gets SIGTERM, not an hour later" {
            let output = DataTests.tempDir "jobs-fail"
            let train = Evaluation.RealPhotos.HostJob("train", List.toArray (trainArgs output [ "--max-steps"; "100000" ]), output + ".log")
            let bad = Evaluation.RealPhotos.HostJob("bad", [| "train"; "--epochs" |], output + "-bad.log")
            let lines = Collections.Concurrent.ConcurrentQueue<string>()
            let runner = Threading.Tasks.Task.Run(fun () -> Evaluation.RealPhotos.HostJobs.Run([| train; bad |], 2, Action<string>(lines.Enqueue)))
            let outcome = try (if runner.Wait(TimeSpan.FromSeconds 120.0) then "ended without a failure" else "still running") with :? AggregateException as e -> (nonNull e.InnerException).Message
            Expect.stringContains outcome "bad ended with exit code 2" "the batch ends with the failed job"
            Expect.exists lines (fun l -> l.StartsWith "[bad] failed with exit code 2") "logged as it happened"
            Expect.exists lines (fun l -> l.StartsWith "[train] ended after another job's failure") "the sibling was asked to end"
            Directory.Delete(output, true)
            for log in [ train.Log; bad.Log ] do File.Delete log
        }

        test "a configuration error that may be one rank's alone (its dataset gives no step) ends every rank at once; one from the options is met by all" {
            let output = DataTests.tempDir "rank-local"
            let config = TrainingTests.tinyConfig output [ "accum", "8" ] // 48 images: 6 batches of 8 per epoch, no step of 8
            let e = thrown<ConfigException> (fun () -> TrainingTests.run config |> ignore) "no optimiser step per epoch"
            Expect.isFalse (TrainCommand.MetByEveryRank e) "this rank's dataset: the others may wait in a collective, so all are aborted"
            Expect.isTrue (TrainCommand.MetByEveryRank(ConfigException "--lr must be in (0, 10]")) "an option's error is every rank's"
            Directory.Delete(output, true)
        }

        test "--move-aside refuses to move a run folder that holds the dataset (the data moved with the old run, and the new run found none)" {
            let project = DataTests.tempDir "data-inside"
            let images = Path.Combine(project, "imgs")
            Directory.Move(DataTests.sceneFolder 16 64 64, images)
            let args extra = List.toArray (trainArgs project ([ "--data"; images; "--max-steps"; "2" ] @ extra))
            Expect.equal (fst (TrainingTests.cli (args []))) 0 "a run whose folder holds its data"
            let code, text = TrainingTests.cli (args [ "--seed"; "1"; "--move-aside" ])
            Expect.equal code 2 text
            Expect.stringContains text "it holds the dataset" "the reason"
            Expect.equal (Directory.GetFiles images).Length 16 "the data stays where it is"
            Expect.isEmpty (Directory.GetDirectories(present (Path.GetDirectoryName project), present (Path.GetFileName project) + ".old-*")) "nothing moved"
            Expect.equal (fst (TrainingTests.cli (List.toArray (trainArgs project [ "--data"; images; "--max-steps"; "4" ])))) 0 "the run still resumes"
            Directory.Delete(project, true)
        }

        test "--move-aside works when --output ends with a slash" {
            let output = DataTests.tempDir "slash"
            Expect.equal (fst (TrainingTests.cli (List.toArray (trainArgs output [ "--max-steps"; "2" ])))) 0 "first run"
            let code, text = TrainingTests.cli (List.toArray (trainArgs (output + "/") [ "--resume"; "false"; "--max-steps"; "2"; "--move-aside" ]))
            Expect.equal code 0 text
            let aside = Directory.GetDirectories(present (Path.GetDirectoryName output), DirectoryInfo(output).Name + ".old-*") |> Array.exactlyOne
            Expect.equal (lines aside "metrics.jsonl").Length 2 "the old run moved beside the folder"
            Directory.Delete(output, true)
            Directory.Delete(aside, true)
        }

        test "--move-aside of a folder whose name leaves no room for .old-<time> is refused before anything moves" {
            // 'I/O error' (exit 1) after the lock once: NAME.old-YYYYMMDD-HHMMSS passes 255 bytes
            let dir = DataTests.tempDir "aside-long"
            let output = Path.Combine(dir, String('r', 240))
            Expect.equal (fst (TrainingTests.cli (List.toArray (trainArgs output [ "--max-steps"; "2" ])))) 0 "first run"
            let code, text = TrainingTests.cli (List.toArray (trainArgs output [ "--resume"; "false"; "--max-steps"; "2"; "--move-aside" ]))
            Expect.equal code 2 text
            Expect.stringContains text "--move-aside cannot move" "said"
            Expect.equal (lines output "metrics.jsonl").Length 2 "the old run in place"
            Directory.Delete(dir, true)
        }

        test "free space is read where the files land: through a symbolic link, on the link target's file system" {
            let target = DataTests.tempDir "disk-target"
            let link = Path.Combine("/dev/shm", sprintf "croc-link-%s" (Guid.NewGuid().ToString("N")))
            File.CreateSymbolicLink(link, target) |> ignore
            try
                let free (path: string) = float (DiskSpace.Free path).Value
                let onTarget, onShm, throughLink = free target, free "/dev/shm", free (Path.Combine(link, "runs", "ck.safetensors"))
                if abs (onTarget - onShm) < 2e9 then skiptestf "/tmp and /dev/shm have about the same free space (%.0f, %.0f): nothing to tell apart" onTarget onShm
                Expect.isLessThan (abs (throughLink - onTarget)) 5e8 (sprintf "the target's %.0f, not /dev/shm's %.0f: %.0f" onTarget onShm throughLink)
            finally
                File.Delete link
                Directory.Delete(target, true)
        }

        test "bench takes any --batch in its range: the synthetic set's size (which it never uses) does not refuse one above 1024" {
            let config = BenchCommand.ConfigOf(BenchOptions(Preset = Preset.Tiny, Batch = 2048))
            Expect.equal config.Batch 2048 "the batch asked for"
        }

        test "bench-clustering, bench-vit and bench-block warn when --threads asks for more than the machine's cores, as bench and train do" {
            let threads = "256" // above any CI machine's cores
            for args in [ [ "bench-clustering"; "--batch"; "1"; "--heads"; "1"; "--tokens"; "9"; "--dim"; "4"; "--repeats"; "1" ]
                          [ "bench-vit"; "--arch"; "tiny"; "--size"; "16"; "--patch"; "8"; "--batch"; "1"; "--repeats"; "1" ]
                          [ "bench-block"; "--arch"; "tiny"; "--size"; "16"; "--patch"; "8"; "--images"; "1"; "--repeats"; "1" ] ] do
                let code, out, err = croc 120 (args @ [ "--threads"; threads ])
                Expect.equal code 0 (sprintf "%s: %s" args.Head err)
                Expect.stringContains out "1 process(es) × 256 threads ask for more than this machine's" (sprintf "%s warns" args.Head)
        }

        test "an existing --json or picture path that is a FIFO or an endless device is no earlier result, told at once (no hang, no endless read); a result is read up to 1 MiB" {
            let dir = DataTests.tempDir "fifo"
            let fifo = Path.Combine(dir, "result.json")
            (present (Process.Start("mkfifo", [| fifo |]))).WaitForExit()
            let within (f: unit -> bool) =
                let task = Threading.Tasks.Task.Run(Func<bool> f)
                if task.Wait 20000 then task.Result else failtest "blocked (it hung on the FIFO once)"
            Expect.isFalse (within (fun () -> OutputPaths.IsJsonResult(fifo, "top1"))) "a FIFO"
            Expect.isFalse (within (fun () -> CrOC.Data.PictureMark.IsOn fifo)) "a FIFO as a picture"
            Expect.isFalse (within (fun () -> OutputPaths.IsJsonResult("/dev/full", "top1"))) "a device that never ends (read whole once: out of memory)"
            let result = Path.Combine(dir, "earlier.json")
            File.WriteAllText(result, "{ \"top1\": 0.5 }")
            Expect.isTrue (OutputPaths.IsJsonResult(result, "top1")) "an earlier result"
            File.WriteAllText(result, "{ \"top1\": 0.5, \"pad\": \"" + String('x', 2 <<< 20) + "\" }")
            Expect.isFalse (OutputPaths.IsJsonResult(result, "top1")) "above 1 MiB: no result of ours"
            Directory.Delete(dir, true)
        }

        test "eval-seg says when its evaluation images are training images too (another split file of the same names) and when a split lists a name twice" {
            let dir = DataTests.tempDir "seg-overlap"
            let voc = Path.Combine(dir, "voc")
            CrOC.Data.SyntheticScenes.WriteVoc(voc, 4, 2, 3L)
            let splits = Path.Combine(voc, "ImageSets", "Segmentation")
            let train = File.ReadAllLines(Path.Combine(splits, "train.txt"))
            File.WriteAllLines(Path.Combine(splits, "again.txt"), Array.append train [| train.[0] |])
            let weights = Path.Combine(dir, "w.safetensors")
            writeTinyBackbone weights
            let code, out, err = croc 120 [ "eval-seg"; "--weights"; weights; "--data"; voc; "--val-split"; "again"; "--size"; "32"; "--epochs"; "1" ]
            Expect.equal code 0 err
            Expect.stringContains out "note: 4 of the 4 evaluation images ('again') are in the training split ('train') too" "the overlap, though the split names differ"
            Expect.stringContains out "note: 'again' lists 1 name(s) more than once" "the repeated name"
            Directory.Delete(dir, true)
        }

        test "eval-seg --cache-features finds a bad evaluation mask before the training images' feature pass" {
            let dir = DataTests.tempDir "seg-cache-bad"
            let voc = Path.Combine(dir, "voc")
            CrOC.Data.SyntheticScenes.WriteVoc(voc, 4, 2, 3L)
            let last = File.ReadAllLines(Path.Combine(voc, "ImageSets", "Segmentation", "val.txt")) |> Array.last
            let mask = Path.Combine(voc, "SegmentationClass", last + ".png")
            File.WriteAllBytes(mask, (File.ReadAllBytes mask).[.. 200])
            let weights = Path.Combine(dir, "w.safetensors")
            writeTinyBackbone weights
            let code, out, err = croc 120 [ "eval-seg"; "--weights"; weights; "--data"; voc; "--size"; "32"; "--epochs"; "1"; "--cache-features" ]
            Expect.equal code 2 err
            Expect.stringContains err "unreadable mask" "the bad mask is named"
            Expect.isFalse (out.Contains "frozen features of") (sprintf "before any feature pass:\n%s" out)
            Directory.Delete(dir, true)
        }

        test "eval-seg: a training mask all void (255) is a batch skipped, not 'diverged, use a smaller --lr'; all void is refused as the data's; --standardize with one feature per channel centres only" {
            let dir, voc, weights = vocWithBackbone "seg-void" 2 1 3L
            let train = File.ReadAllLines(Path.Combine(voc, "ImageSets", "Segmentation", "train.txt"))
            let allVoid name =
                let mask = Path.Combine(voc, "SegmentationClass", name + ".png")
                let info = SixLabors.ImageSharp.Image.Identify(mask)
                use image = new SixLabors.ImageSharp.Image<SixLabors.ImageSharp.PixelFormats.L8>(info.Width, info.Height, SixLabors.ImageSharp.PixelFormats.L8(255uy))
                SixLabors.ImageSharp.ImageExtensions.SaveAsPng(image, mask)
            allVoid train.[0]
            let arguments = [ "eval-seg"; "--weights"; weights; "--data"; voc; "--size"; "32"; "--epochs"; "1"; "--batch"; "1"; "--cache-features" ]
            let code, out, err = croc 120 arguments
            Expect.equal code 0 err
            Expect.stringContains out "(1 of 2 batches without a labelled pixel skipped)" "said"
            allVoid train.[1]
            let code, _, err = croc 120 arguments
            Expect.equal code 2 err
            Expect.stringContains err "no pixel of the 2 training image(s) has a class label at --feature-size" "refused naming the data, not the learning rate"
            // random crops (no cache) may find labels in a later epoch: refused only after the last one
            let code, out, err = croc 120 [ "eval-seg"; "--weights"; weights; "--data"; voc; "--size"; "32"; "--epochs"; "2"; "--batch"; "1" ]
            Expect.equal code 2 err
            Expect.stringContains err "has a class label in any epoch's crops" "said"
            Expect.stringContains out "training batches: 4/4" "after every epoch (after the first once)"
            Directory.Delete(dir, true)
            let dir, voc, weights = vocWithBackbone "seg-one-feature" 1 1 3L
            let code, _, err = croc 120 [ "eval-seg"; "--weights"; weights; "--data"; voc; "--size"; "8"; "--feature-size"; "1"; "--epochs"; "1"; "--cache-features"; "--standardize" ]
            Expect.equal code 0 err // NaN once: the unbiased std of one value, and libtorch's warning line
            Expect.isFalse (err.Contains "degrees of freedom") err
            Directory.Delete(dir, true)
        }

        test "a standard output that is closed or full loses its lines, not the work: said on stderr, and a success becomes exit 1 (a pipe whose reader left is no loss); train keeps its checkpoint" {
            // a stack trace and exit 134 (help), "the disk is full" or "permission denied" exit 1 (every other command) once
            for redirect in [ ">/dev/full"; ">&-" ] do
                let code, err = crocInShell "true" redirect [] [ "--help" ]
                Expect.equal code 1 (redirect + ": " + err)
                Expect.isFalse (err.Contains "Unhandled exception") err
                let code, err = crocInShell "true" redirect [] [ "eval-knn"; "--help" ]
                Expect.equal code 1 (redirect + ": " + err)
                Expect.stringContains err "standard output could not be written" "said once on standard error"
            let code, err = crocInShell "set -o pipefail" "| true" [] [ "--help" ] // the reader gone before the first line: EPIPE, which .NET drops
            Expect.equal code 0 ("a reader that wanted no more lines is no failure: " + err)
            Expect.isFalse (err.Contains "could not be written") err
            let code, _ = crocInShell "true" "2>/dev/full" [] [ "no-such-command" ]
            Expect.equal code 2 "a usage error whose standard error is full is still exit 2"
            let output = DataTests.tempDir "closed-stdout"
            let code, err = crocInShell "true" ">&-" [] (trainArgs output [ "--max-steps"; "1" ])
            Expect.equal code 1 err
            Expect.isNonEmpty (Checkpoints.List output) "the checkpoint written"
            Expect.exists (lines output "train.log") (fun l -> l.Contains "step 1/1") "train.log has the lines the console lost"
            Directory.Delete(output, true)
            // `croc-host help train` is train's help, `help nosuch` an unknown command; no command at all is a usage error on standard error
            let code, out, _ = croc 60 [ "help"; "eval-knn" ]
            Expect.equal code 0 out
            Expect.stringContains out "--bank" "eval-knn's options"
            let code, _, err = croc 60 [ "help"; "nosuch" ]
            Expect.equal code 2 err
            Expect.stringContains err "unknown command 'nosuch'" "the usage with exit 0 once"
            let code, out, err = croc 60 []
            Expect.equal code 2 out
            Expect.stringContains err "Usage: croc-host <command>" "the usage on standard error"
        }

        test "an output through links is judged as the kernel follows them: a relative target behind a linked folder is no 'link to nothing'" {
            // work/sym -> real/a, real/a/out -> ../res: the kernel reaches real/res; the link's text joined to work/sym/ named nothing (refused once)
            let dir = DataTests.tempDir "relative-link"
            Directory.CreateDirectory(Path.Combine(dir, "real", "a")) |> ignore
            Directory.CreateDirectory(Path.Combine(dir, "real", "res")) |> ignore
            Directory.CreateDirectory(Path.Combine(dir, "work")) |> ignore
            Directory.CreateSymbolicLink(Path.Combine(dir, "work", "sym"), Path.Combine(dir, "real", "a")) |> ignore
            Directory.CreateSymbolicLink(Path.Combine(dir, "real", "a", "out"), "../res") |> ignore
            let through = Path.Combine(dir, "work", "sym", "out")
            Expect.equal (OutputPaths.Folder(through, "--output")) through "taken"
            Directory.CreateSymbolicLink(Path.Combine(dir, "real", "a", "gone"), "../nothing") |> ignore
            let e = thrown<OutputException> (fun () -> OutputPaths.Folder(Path.Combine(dir, "work", "sym", "gone"), "--output") |> ignore) "a link to nothing"
            Expect.stringContains e.Message "is a link to '../nothing', which does not exist" "said"
            Directory.Delete(dir, true)
        }

        test "a folder holds a path by whole components; a path naming 'quota' is not a full disk" {
            Expect.isTrue (DiskSpace.Holds("/", "/runs/x")) "/ holds everything"
            Expect.isTrue (DiskSpace.Holds("/run", "/run/x")) "a component below"
            Expect.isTrue (DiskSpace.Holds("/run", "/run")) "the mount itself"
            Expect.isFalse (DiskSpace.Holds("/run", "/runs/x")) "/run does not hold /runs"
            Expect.isFalse (DiskSpace.Holds("/sys", "/system/x")) "/sys does not hold /system"
            Expect.isFalse (DiskSpace.IsDiskFull(IOException("The process cannot access the file '/data/quota-exp/run.lock' because it is being used by another process.", 11))) "a lock conflict"
            Expect.isTrue (DiskSpace.IsDiskFull(IOException("Disk quota exceeded", 122))) "EDQUOT"
        }

        test "a second run into a folder in use is refused naming the holder; a dead holder's lock is taken over" {
            let output = DataTests.tempDir "locked"
            let info = ProcessStartInfo("dotnet", RedirectStandardOutput = true, RedirectStandardError = true)
            for a in hostDll :: trainArgs output [ "--max-steps"; "100000"; "--checkpoint-every"; "2" ] do info.ArgumentList.Add a
            use first = present (Process.Start info)
            first.OutputDataReceived.Add ignore
            first.ErrorDataReceived.Add ignore
            first.BeginOutputReadLine()
            first.BeginErrorReadLine()
            let watch = Stopwatch.StartNew()
            while Checkpoints.List(output).Count = 0 do
                if watch.Elapsed.TotalSeconds > 120.0 || first.HasExited then failwith "the first run wrote no checkpoint"
                Threading.Thread.Sleep 200
            let code, message = TrainingTests.cli (List.toArray (trainArgs output [ "--max-steps"; "100000" ]))
            Expect.equal code 2 "refused"
            Expect.stringContains message (sprintf "in use by another run (process %d" first.Id) "names the holder"
            first.Kill()
            first.WaitForExit()
            let code, text = TrainingTests.cli (List.toArray (trainArgs output [ "--max-steps"; "12" ]))
            Expect.equal code 0 (sprintf "the stale lock of a killed run is taken over:\n%s" text)
            Directory.Delete(output, true)
        }

        test "rerunning a finished run says so (no NaN); redirected output has no ANSI codes and each progress line once" {
            let output = DataTests.tempDir "finished"
            let code, out, err = croc 180 (trainArgs output [ "--max-steps"; "4"; "--log-every"; "2" ])
            Expect.equal code 0 err
            Expect.isFalse (out.Contains "\u001b" || err.Contains "\u001b") "no escape codes when redirected"
            let progress = out.Split('\n') |> Array.filter (fun l -> l.StartsWith "step ")
            Expect.equal (progress |> Array.map (fun l -> l.Split(' ').[1])) [| "2/4"; "4/4" |] "each logged step once"
            // On a terminal (a pty from util-linux's script) the redrawn line is not printed again by the log.
            if File.Exists "/usr/bin/script" then
                let tty = DataTests.tempDir "finished-tty"
                let command = String.Join(" ", "dotnet" :: hostDll :: trainArgs tty [ "--max-steps"; "4"; "--log-every"; "2" ] |> List.map (fun a -> "'" + a + "'"))
                let info = ProcessStartInfo("/usr/bin/script", RedirectStandardOutput = true, RedirectStandardError = true)
                for a in [ "-qefc"; command; "/dev/null" ] do info.ArgumentList.Add a
                use p = present (Process.Start info)
                let screen = p.StandardOutput.ReadToEnd()
                p.WaitForExit()
                Expect.equal p.ExitCode 0 screen
                let count (text: string) = (screen.Length - screen.Replace(text, "").Length) / text.Length
                Expect.equal (count "step 2/4 ") 1 (sprintf "a logged step appears once on a terminal:\n%s" screen)
                Directory.Delete(tty, true)
            let records () = [ for f in [ "config.json"; "run.json" ] -> File.ReadAllText(Path.Combine(output, f)) ]
            let before = records ()
            let code, out, err = croc 120 (trainArgs output [ "--max-steps"; "4"; "--lr"; "0.002" ])
            Expect.equal code 0 err
            Expect.stringContains out "already finished its 4 steps" "says there is nothing to do"
            Expect.equal (records ()) before "the finished run's config.json and run.json are left as they were"
            Expect.isFalse (out.Contains "NaN") "no NaN summary"
            Directory.Delete(output, true)
        }

        test "links and strays lose nothing: a foreign checkpoint is set aside, not pruned; --move-aside refuses the working directory's folder; a linked folder is searched once; a link loop is no storage outage, and clusters skips it" {
            let dir = DataTests.tempDir "links"
            // Another run's checkpoint in this run's checkpoints/ (copied over its step 1) is set aside when pruning reaches it.
            let mine, other = Path.Combine(dir, "mine"), Path.Combine(dir, "other")
            for output, seed in [ mine, "0"; other, "7" ] do
                let code, _, err = croc 120 (trainArgs output [ "--max-steps"; "2"; "--checkpoint-every"; "1"; "--seed"; seed ])
                Expect.equal code 0 err
            let stray = Path.Combine(Checkpoints.Folder mine, "step-00000001.safetensors")
            File.Copy(Path.Combine(Checkpoints.Folder other, "step-00000001.safetensors"), stray, true)
            // and a file of that name whose header is unreadable (a key given twice)
            let garbled = Path.Combine(Checkpoints.Folder mine, "step-00000000.safetensors")
            let header = Encoding.ASCII.GetBytes "{\"a\":{},\"a\":{}}"
            File.WriteAllBytes(garbled, Array.append (BitConverter.GetBytes(int64 header.Length)) header)
            let code, _, err = croc 120 (trainArgs mine [ "--max-steps"; "4"; "--checkpoint-every"; "1"; "--keep-checkpoints"; "1"; "--seed"; "0" ])
            Expect.equal code 0 err
            Expect.isTrue (File.Exists(stray + ".refused")) "the other run's checkpoint kept aside"
            Expect.isTrue (File.Exists(garbled + ".refused")) "an unreadable one too, and the run goes on"
            Expect.stringContains (File.ReadAllText(Path.Combine(mine, "train.log"))) "not this run's checkpoint (made with seed = 7, this run has 0), so not pruned" "and said"
            Expect.equal (checkpointNames mine) [ "step-00000004.safetensors" ] "this run's own were pruned as before"
            // --move-aside of the folder the command runs in would move the working directory along.
            let here = Environment.CurrentDirectory
            let code, message =
                try
                    Environment.CurrentDirectory <- mine
                    TrainingTests.cli (List.toArray (trainArgs "." [ "--move-aside"; "--seed"; "1" ]))
                finally Environment.CurrentDirectory <- here
            Expect.equal code 2 message
            Expect.stringContains message "holds the working directory" "refused"
            Expect.isTrue (File.Exists(Path.Combine(mine, "config.json"))) "the run stays where it is"
            // A folder linked back to its parent, and a second link to the same folder: each image once.
            let scenes = DataTests.sceneFolder 3 32 32
            Directory.CreateDirectory(Path.Combine(scenes, "sub")) |> ignore
            Directory.CreateSymbolicLink(Path.Combine(scenes, "sub", "up"), scenes) |> ignore
            Directory.CreateSymbolicLink(Path.Combine(scenes, "again"), scenes) |> ignore
            Expect.equal (CrOC.Data.ImageSources.Find([ scenes ]).Count) 3 "three images, no cycle"
            // A file that is a link to itself is a bad file, not an unreachable disk: not retried.
            let loop = Path.Combine(scenes, "loop.jpg")
            File.CreateSymbolicLink(loop, loop) |> ignore
            let io = thrown<IOException> (fun () -> File.ReadAllBytes loop |> ignore) "a link loop"
            Expect.isFalse (CrOC.Data.ImageDecoder.IsStorageFailure io) "ELOOP is the file's failure"
            let decoder = CrOC.Data.ImageDecoder(StorageRetryWaits = [| TimeSpan.FromHours 1.0 |])
            let failure = thrown<CrOC.Data.DecodeException> (fun () -> decoder.Decode loop |> ignore) "undecodable"
            Expect.isFalse failure.Storage "reported at once"
            // clusters --data skips such files (and any undecodable one) for the next images
            let weights = Path.Combine(dir, "w.safetensors")
            writeTinyBackbone weights
            File.WriteAllText(Path.Combine(scenes, "broken.jpg"), "not a JPEG")
            let code, out, err = croc 120 [ "clusters"; "--weights"; weights; "--data"; scenes; "--count"; "2"; "--output"; Path.Combine(dir, "c.png") ]
            Expect.equal code 0 err
            Expect.stringContains out "skipped" "says which it skipped"
            Expect.stringContains out "(2 images" "and shows two others"
            let code, out, err = croc 120 [ "clusters"; "--weights"; weights; "--data"; scenes; "--count"; "2"; "--output"; Path.Combine(dir, "c.png"); "--size"; "512" ]
            Expect.equal code 0 (sprintf "a rerun replaces its own earlier picture: %s" err)
            Expect.stringContains out "4 views of 512 px (4,096 patches each) through the backbone and the clustering: this may take minutes" "a long forward is announced" // minutes without a line once
            let code, out, err = croc 120 [ "clusters"; "--weights"; weights; "--data"; scenes; "--count"; "64"; "--output"; Path.Combine(dir, "c.png") ]
            Expect.equal code 0 err
            Expect.stringContains out "note: --count 64, but --data has" "fewer images than asked for are said"
            // A refusal leaves no lock files behind in a folder that is not its run's.
            let strays = Path.Combine(dir, "strays")
            Directory.CreateDirectory strays |> ignore
            File.WriteAllText(Path.Combine(strays, "metrics.jsonl"), "{}\n")
            let code, message = TrainingTests.cli (List.toArray (trainArgs strays []))
            Expect.equal code 2 message
            Expect.sequenceEqual (Directory.GetFiles strays |> Array.map Path.GetFileName) [| "metrics.jsonl" |] "nothing was changed, as the message says"
            Directory.Delete(dir, true)
            Directory.Delete(scenes, true)
        }

        test "a second hunt: eval-seg checks its sets before the probe trains and replaces only its own predictions; roots named twice count once; a folder or an odd file is named as such; tar names as tar -tf shows them" {
            let dir, voc, weights = vocWithBackbone "second-hunt" 4 2 3L
            // a validation mask of another size: found before the probe's epochs (without cached features it was found after them)
            let valName = (File.ReadAllLines(Path.Combine(voc, "ImageSets", "Segmentation", "val.txt"))).[0]
            let mask = Path.Combine(voc, "SegmentationClass", valName + ".png")
            let goodMask = File.ReadAllBytes mask
            CrOC.Data.VocSegmentation.SaveMask(Array.zeroCreate 12, 4, 3, mask)
            let code, out, err = croc 120 [ "eval-seg"; "--weights"; weights; "--data"; voc; "--size"; "32"; "--epochs"; "2" ]
            Expect.equal code 2 err
            Expect.stringContains err "does not match image" "the bad mask named"
            Expect.isFalse (out.Contains "epoch 1/2") (sprintf "before any probe epoch:\n%s" out)
            File.WriteAllBytes(mask, goodMask)
            // --save-predictions replaces its own masks (marked), never another file
            let predictions = Path.Combine(dir, "predictions")
            let evalArgs = [ "eval-seg"; "--weights"; weights; "--data"; voc; "--size"; "32"; "--epochs"; "1"; "--cache-features"; "--save-predictions"; predictions ]
            let code, _, err = croc 120 evalArgs
            Expect.equal code 0 err
            let code, out, err = croc 120 evalArgs
            Expect.equal code 0 (sprintf "a rerun replaces its own predictions: %s" err)
            Expect.isFalse (out.Contains "of an earlier run stay") "all of them rewritten"
            // an earlier run's mask this run does not rewrite (a larger --save-count once) is said
            File.Copy(Path.Combine(predictions, valName + ".png"), Path.Combine(predictions, "earlier.png"))
            let code, out, err = croc 120 evalArgs
            Expect.equal code 0 err
            Expect.stringContains out "note: 1 predicted mask(s) of an earlier run stay in" "said (mixed in without a word once)"
            File.Delete(Path.Combine(predictions, "earlier.png"))
            File.Copy(mask, Path.Combine(predictions, valName + ".png"), true)
            let code, _, err = croc 120 evalArgs
            Expect.equal code 2 err
            Expect.stringContains err "exists and is not a mask croc-host predicted" "a ground-truth mask is not replaced"
            Expect.equal (File.ReadAllBytes(Path.Combine(predictions, valName + ".png"))) goodMask "and left as it was"
            // two roots naming one folder (one through a link): its images once
            let images = Path.Combine(voc, "JPEGImages")
            let alias = Path.Combine(dir, "alias")
            Directory.CreateSymbolicLink(alias, images) |> ignore
            let warnings = Collections.Generic.List<string>()
            Expect.equal (CrOC.Data.ImageSources.Find([ images; alias ], Action<string> warnings.Add).Count) 6 "six images, not twelve"
            Expect.stringContains (String.Join("\n", warnings)) "already searched" "and says why the second root adds none"
            // a .txt list may name a folder; a file that is no dataset is named as such
            let list = Path.Combine(dir, "list.txt")
            File.WriteAllText(list, "voc/JPEGImages\n")
            Expect.equal (CrOC.Data.ImageSources.Find([ list ]).Count) 6 "a folder line lists its images"
            let odd = Path.Combine(dir, "odd.tar.gz")
            File.WriteAllText(odd, "gzip")
            let e = thrown<CrOC.Data.DatasetException> (fun () -> CrOC.Data.ImageSources.Find([ odd ]) |> ignore) "not a dataset"
            Expect.stringContains e.Message "is a file of no kind a dataset can be" "not 'does not exist'"
            let folderAsImage = thrown<CrOC.Data.DecodeException> (fun () -> CrOC.Data.ImageDecoder().Decode(images) |> ignore) "a folder"
            Expect.stringContains folderAsImage.Message "a folder, not an image file" "not 'access denied'"
            // an archive's member named with the "./" that `tar -tf` shows
            let archive = Path.Combine(dir, "dot.tar")
            do
                use stream = File.Create archive
                use writer = new Formats.Tar.TarWriter(stream)
                writer.WriteEntry(Path.Combine(images, valName + ".jpg"), "./imgs/" + valName + ".jpg")
            Expect.equal (CrOC.Data.ImageSources.Find([ archive + "#./imgs" ]).Count) 1 "'#./imgs' is the members' 'imgs'"
            Directory.Delete(dir, true)
        }

        test "bad inputs end with one line and a documented exit code, never a crash (134) or a stack trace" {
            let dir = DataTests.tempDir "bad-inputs"
            let aFile = Path.Combine(dir, "a-file")
            File.WriteAllText(aFile, "x")
            let zipNamedSafetensors, binaryAnnotations = Path.Combine(dir, "zip.safetensors"), Path.Combine(dir, "binary.txt")
            PthWriter.Write(zipNamedSafetensors, NamedTensors([ "w", torch.ones(4L) ]))
            File.WriteAllBytes(binaryAnnotations, [| 1uy; 2uy; 27uy; byte 'x' |])
            let danglingLink, loopLink = Path.Combine(dir, "dangling"), Path.Combine(dir, "loop.json")
            File.CreateSymbolicLink(danglingLink, Path.Combine(dir, "nowhere")) |> ignore
            File.CreateSymbolicLink(loopLink, loopLink) |> ignore
            let fifoWeights = Path.Combine(dir, "fifo.safetensors")
            do
                use mkfifo = Diagnostics.Process.Start("mkfifo", [ fifoWeights ])
                mkfifo.WaitForExit()
            let recordsAsFolders = Path.Combine(dir, "records-as-folders")
            Directory.CreateDirectory(Path.Combine(recordsAsFolders, "metrics.jsonl")) |> ignore
            let pictureAsFolder = Path.Combine(dir, "picture-as-folder")
            Directory.CreateDirectory(Path.Combine(pictureAsFolder, "clusters.png")) |> ignore
            let eventsAsFile = Directory.CreateDirectory(Path.Combine(dir, "events-as-file")).FullName
            File.WriteAllText(Path.Combine(eventsAsFile, "tensorboard"), "")
            let suiteConfig = Path.Combine(dir, "suite.json")
            File.WriteAllText(suiteConfig, "{ \"data\": \"photos\", \"max-steps\": 1 }")
            let unwritable = "/proc/croc-cannot-write-here/out"
            let voc = Path.Combine(dir, "voc")
            CrOC.Data.SyntheticScenes.WriteVoc(voc, 4, 2, 3L)
            let weights = Path.Combine(dir, "w.safetensors")
            writeTinyBackbone weights
            // A VOC root whose train list names an image that is not there (read in a parallel loop).
            let ghost = Path.Combine(dir, "voc-ghost")
            CrOC.Data.SyntheticScenes.WriteVoc(ghost, 4, 2, 3L)
            File.AppendAllText(Path.Combine(ghost, "ImageSets", "Segmentation", "train.txt"), "\nghost\n")
            let pngNamedWeights = Path.Combine(dir, "weights.png")
            File.Copy(weights, pngNamedWeights)
            let existing = Path.Combine(dir, "taken")
            File.WriteAllText(existing + ".json", "another export's card")
            let photo = Path.Combine(dir, "photo.png")
            do
                use image = new SixLabors.ImageSharp.Image<SixLabors.ImageSharp.PixelFormats.Rgb24>(32, 32)
                SixLabors.ImageSharp.ImageExtensions.SaveAsPng(image, photo)
            let photoBytes = File.ReadAllBytes photo
            // A VOC root whose first mask is cut in half.
            let badMask = Path.Combine(dir, "voc-bad-mask")
            CrOC.Data.SyntheticScenes.WriteVoc(badMask, 4, 2, 3L)
            let mask = Path.Combine(badMask, "SegmentationClass", "scene_00000.png")
            File.WriteAllBytes(mask, (File.ReadAllBytes mask).[.. 200])
            // Links to inputs, a run's config.json, a photo that is no picture of ours: none is an output to replace.
            let link name target = let path = Path.Combine(dir, name) in File.CreateSymbolicLink(path, target) |> ignore; path
            let weightsLink = link "link.safetensors" weights
            let photoLink = link "photo-link.png" photo
            let masksLink = link "masks-link" (Path.Combine(voc, "SegmentationClass"))
            let runConfig = Path.Combine(dir, "config.json")
            File.WriteAllText(runConfig, "{ \"arch\": \"tiny\" }")
            let otherPhoto = Path.Combine(dir, "other.png")
            File.Copy(photo, otherPhoto)
            let otherPhotoBytes = File.ReadAllBytes otherPhoto
            // A pickle that calls os.system (protocol 2: GLOBAL posix.system, ("true",), REDUCE), in torch.save's zip layout.
            let evil = Path.Combine(dir, "evil.pth")
            do
                use zip = ZipFile.Open(evil, ZipArchiveMode.Create)
                use entry = zip.CreateEntry("archive/data.pkl").Open()
                let pickle = Array.concat [ [| 0x80uy; 2uy |]; Encoding.ASCII.GetBytes "cposix\nsystem\nX"; [| 4uy; 0uy; 0uy; 0uy |]; Encoding.ASCII.GetBytes "true"; [| 0x85uy; byte 'R'; byte '.' |] ]
                entry.Write(pickle, 0, pickle.Length)
            let toml = Path.Combine(dir, "overflow.toml")
            File.WriteAllText(toml, "depth = 99999999999999999999\n")
            let twice = Path.Combine(dir, "twice.json")
            File.WriteAllText(twice, "{ \"batch\": 2, \"batch\": 4 }")
            let nanWeights = Path.Combine(dir, "nan.safetensors")
            let partialWeights = Path.Combine(dir, "partial.safetensors")
            let overflowWeights = Path.Combine(dir, "overflow.safetensors")
            let bank = Path.Combine(dir, "bank") // two classes of the VOC set's photos
            for i, photo in Directory.GetFiles(Path.Combine(voc, "JPEGImages")) |> Array.sort |> Array.indexed do
                let folder = Directory.CreateDirectory(Path.Combine(bank, (if i % 2 = 0 then "even" else "odd"))).FullName
                File.Copy(photo, Path.Combine(folder, present (Path.GetFileName photo)))
            do
                let named = Vit.named (Vit.init (Vit.VitConfig.Tiny(8, 32) |> fun c -> { c with Depth = 1 }) (new torch.Generator(0UL)))
                BackboneExport.Write(nanWeights, NamedTensors(named |> List.mapi (fun i (n, t) -> n, (if i = 3 then torch.full_like(t, Double.NaN) else t))).WithPrefix("backbone."))
                BackboneExport.Write(partialWeights, NamedTensors(named |> List.filter (fun (n, _) -> not (n.EndsWith "fc2.bias"))).WithPrefix("backbone."))
                // finite (the loader's NaN check passes them) but overflowing in the first matmul
                BackboneExport.Write(overflowWeights, NamedTensors(named |> List.map (fun (n, t) -> n, (if n = "patch_embed.proj.weight" then torch.full_like(t, 3e38) else t))).WithPrefix("backbone."))
            let cases =
                [ 2, [ "eval-seg"; "--weights"; weights; "--data"; ghost; "--size"; "32"; "--epochs"; "1" ], "file not found"
                  2, [ "export"; "--weights"; weightsLink; "--output"; Path.Combine(dir, "w"); "--format"; "safetensors"; "--overwrite" ], "is this command's input file"
                  2, [ "eval-seg"; "--weights"; weights; "--data"; voc; "--save-predictions"; masksLink ], "lies inside the dataset"
                  2, [ "clusters"; "--weights"; weights; "--image"; photoLink; "--output"; photo ], "is this command's input file"
                  2, [ "clusters"; "--weights"; weights; "--image"; photo; "--output"; otherPhoto ], "exists and is not a picture croc-host drew"
                  2, [ "eval-knn"; "--weights"; weights; "--bank"; voc; "--queries"; voc; "--json"; runConfig ], "exists and is not an earlier result (a JSON object with \"top1\")"
                  2, [ "eval-seg"; "--weights"; evil; "--data"; voc ], "its pickle calls 'posix.system'"
                  2, [ "train"; "--config"; toml ], "Unable to parse integer"
                  2, [ "train"; "--config"; twice ], "'batch' is given 2 times"
                  2, [ "experiment"; "--train-args=--bogus 1" ], "`croc-host train --help`'s options"
                  2, [ "eval-seg"; "--weights"; weights; "--probe-seeds"; "1,1" ], "--probe-seeds must be distinct"
                  2, [ "eval-seg"; "--weights"; nanWeights; "--data"; voc ], "holds NaN or infinite values"
                  2, [ "eval-seg"; "--weights"; partialWeights; "--data"; voc ], "missing from the file: blocks.0.mlp.fc2.bias)"
                  1, [ "eval-knn"; "--weights"; overflowWeights; "--bank"; bank; "--queries"; bank; "--size"; "32" ], "non-finite (NaN or infinite) features for k-NN bank features" // a top-1 of NaN scores once
                  1, [ "eval-seg"; "--weights"; overflowWeights; "--data"; voc; "--size"; "32"; "--epochs"; "1" ], "non-finite (NaN or infinite) features for the probe's images"
                  1, [ "clusters"; "--weights"; overflowWeights; "--data"; Path.Combine(voc, "JPEGImages"); "--output"; Path.Combine(dir, "nan-clusters.png") ], "non-finite (NaN or infinite) features for the images' views" // one colour, captioned 'K* = 4, 4 matched', once
                  1, [ "eval-seg"; "--weights"; weights; "--data"; voc; "--size"; "32"; "--epochs"; "3"; "--batch"; "1"; "--lr"; "1e30" ], "it diverged at lr 1E+30; use a smaller --lr" // an mIoU of a NaN probe once
                  2, [ "eval-knn"; "--weights"; weights; "--bank"; bank; "--queries"; bank; "--size"; "4096"; "--batch"; "4096" ], "--size 4096 with the backbone's patch 8 and --batch 4096 gives 262,145 tokens per image: the activations" // killed by the kernel once
                  2, [ "eval-seg"; "--weights"; weights; "--data"; voc; "--size"; "4096"; "--batch"; "4096" ], "gives 262,145 tokens per image: the activations"
                  2, [ "eval-seg"; "--weights"; weights; "--data"; voc; "--size"; "32"; "--feature-size"; "4096"; "--classes"; "255"; "--epochs"; "1" ], "the probe's logits at --feature-size 4096 and --size 32 for 255 classes with --batch 60 need at least" // "out of memory" after the feature pass once
                  2, [ "export"; "--weights"; partialWeights; "--output"; Path.Combine(dir, "partial-export") ], "; --non-strict exports what fits"
                  2, [ "eval-seg"; "--weights"; weights; "--data"; voc; "--size"; "32"; "--epochs"; "1"; "--classes"; "1" ], "is neither a class (0..0) nor 255"
                  2, [ "eval-seg"; "--weights"; weights; "--probe-seeds"; "," ], "--probe-seeds needs at least one value"
                  2, [ "clusters"; "--weights"; weights; "--data"; Path.Combine(voc, "JPEGImages"); "--size"; "8" ], "--size 8 gives 1 patch(es)"
                  2, [ "clusters"; "--weights"; weights; "--data"; Path.Combine(voc, "JPEGImages"); "--size"; "4096"; "--count"; "6" ], "use a smaller --size or --count" // an int overflow once
                  2, [ "export"; "--weights"; weights; "--output"; Path.Combine(dir, "w"); "--format"; "safetensors" ], "is this command's input file"
                  2, [ "export"; "--weights"; weights; "--output"; existing ], "exists: choose another --output, or add --overwrite"
                  2, [ "experiment"; "--train-args=--epochs" ], "--epochs needs a value"
                  2, [ "experiment"; "--train-args=--move-aside" ], "'--move-aside' is the suite's own"
                  2, [ "train"; "--output"; Path.Combine(aFile, "run") ], "which is a file, not a folder"
                  2, [ "experiment"; "--output"; aFile ], "is a file, not a folder"
                  2, [ "bench-vit"; "--arch"; "tiny"; "--size"; "4096"; "--patch"; "1"; "--batch"; "1" ], "gives 16,777,217 tokens per image: the activations" // swapped for minutes once
                  2, [ "bench-block"; "--size"; "2048"; "--patch"; "2" ], "tokens per image: the activations"
                  2, [ "eval-knn"; "--k"; "5"; "--k"; "7" ], "--k is given 2 times (5, 7): give it once"
                  2, [ "experiment"; "--train-args=--depth 2 --depth 3" ], "--train-args: --depth is given 2 times"
                  2, [ "train"; "--output"; Path.Combine(dir, "lr-run"); "--data"; Path.Combine(voc, "JPEGImages"); "--batch"; "1"; "--lr"; "0.001"; "--min-lr"; "5" ], "--min-lr 5 is above the peak learning rate 3.906E-06"
                  2, [ "experiment"; "--train-args=--alpha 0.5"; "--output"; Path.Combine(dir, "exp") ], "'--alpha' is the suite's own"
                  2, [ "experiment"; "--seeds"; "0,0" ], "--seeds must be distinct"
                  2, [ "experiment"; "--train-args=--config " + suiteConfig; "--output"; Path.Combine(dir, "exp-config") ], "sets 'data', which is the suite's own" // trained on the scenes, recorded the file's data once
                  2, [ "experiment"; "--size"; "100" ], "--size 100 is not a multiple of the patch size 8"
                  2, [ "clusters"; "--weights"; pngNamedWeights; "--data"; Path.Combine(voc, "JPEGImages"); "--output"; pngNamedWeights ], "is this command's input file"
                  2, [ "eval-seg"; "--weights"; weights; "--data"; voc; "--json"; aFile ], "exists and is not an earlier result (a JSON object with \"miou\")"
                  2, [ "eval-knn"; "--weights"; weights; "--bank"; voc; "--queries"; voc; "--json"; weights ], "is this command's input file"
                  2, [ "eval-knn"; "--weights"; weights; "--bank"; voc; "--queries"; voc; "--temperature"; "0.001" ], "--temperature must be"
                  2, [ "eval-knn"; "--weights"; weights; "--bank"; bank; "--queries"; bank; "--query-annotations"; "/dev/zero" ], "'/dev/zero' holds more than 67108864 bytes" // read until out of memory once
                  2, [ "eval-knn"; "--weights"; weights; "--bank"; bank + "," + bank; "--queries"; bank ], "this option takes one root, not a comma-separated list" // "does not exist" alone once
                  2, [ "eval-knn"; "--weights"; weights; "--bank"; bank; "--queries"; bank; "--init-seed"; "5" ], "--init-seed 5 seeds --random's initialisation" // ignored silently once
                  2, [ "eval-seg"; "--weights"; weights; "--data"; voc; "--save-count"; "3" ], "--save-count 3 counts the masks --save-predictions writes" // ignored silently once
                  2, [ "eval-seg"; "--weights"; weights; "--data"; voc; "--train-split="; ], "--train-split needs a value (NAME), got ''" // looked for 'ImageSets/Segmentation/.txt' once
                  2, [ "train"; "--output"; Path.Combine(dir, String.Join("/", Array.create 19 (String('x', 200)))) ], "bytes long: the files written in it would pass the 4095-byte limit of a path" // every step ran, then the first checkpoint's temporary name failed (exit 1, nothing kept) once
                  2, [ "eval-knn"; "--weights"; weights; "--bank"; bank; "--queries"; bank; "--json"; Path.Combine(dir, String('j', 251) + ".json") ], "is 256 bytes long, more than the 255 a file or folder name may have" // after the whole evaluation once
                  2, [ "eval-knn"; "--weights"; weights; "--bank"; bank; "--queries"; bank; "--json"; Path.Combine(dir, "a" + String.replicate 64 "😀" + ".json") ], "the name 'a" + String.replicate 11 "😀" + "…' is 262 bytes long" // half an emoji once
                  2, [ "clusters"; "--weights"; weights; "--data"; Path.Combine(voc, "JPEGImages"); "--output"; Path.Combine(dir, String('c', 242) + ".png") ], "--output (its attention picture)" // its -attention.png name, after loading once
                  2, [ "clusters"; "--weights"; weights; "--data"; Path.Combine(voc, "JPEGImages"); "--output"; Path.Combine(dir, ".png") ], "names no picture" // a hidden '.png' and '-attention.png' once
                  2, [ "export"; "--weights"; zipNamedSafetensors ], "a zip archive (a PyTorch .pth saved by torch.save?), not safetensors" // "header length 2251885780355920 does not fit a file of … bytes" once
                  2, [ "eval-knn"; "--weights"; weights; "--bank"; bank; "--queries"; bank; "--query-annotations"; binaryAnnotations ], "the line '???x' has no class" // raw control bytes on the terminal once
                  2, [ "train"; "--output"; danglingLink ], "is a link to '" + Path.Combine(dir, "nowhere") + "', which does not exist" // "is a file, not a folder" once
                  2, [ "eval-knn"; "--weights"; weights; "--bank"; bank; "--queries"; bank; "--json"; loopLink ], "is a link that leads back to itself" // "exists and is not an earlier result" once
                  2, [ "export"; "--weights"; weights; "--output"; dir + "/" ], "names no file"
                  2, [ "export"; "--weights"; weights; "--output"; dir + "/." ], "names no file" // wrote hidden '..safetensors' files once
                  2, [ "export"; "--weights"; weights; "--output"; dir + "/.." ], "names no file"
                  2, trainArgs "" [], "--output needs a value (DIR), got ''"
                  2, [ "eval-seg"; "--weights"; weights; "--data"; voc; "--save-predictions"; Path.Combine(voc, "SegmentationClass") ], "lies inside the dataset"
                  2, [ "eval-seg"; "--weights"; weights; "--data"; voc; "--save-predictions"; Path.Combine(dir, "pred"); "--json"; Path.Combine(dir, "pred", "scene_00004.png") ], "lies in --save-predictions" // replaced a mask once
                  2, [ "eval-seg"; "--weights"; weights; "--data"; voc; "--save-predictions"; Path.Combine(dir, "pred"); "--json"; Path.Combine(dir, "pred") ], "lies in --save-predictions" // failed after the work once
                  2, [ "clusters"; "--weights"; weights; "--data"; Path.Combine(voc, "JPEGImages"); "--output"; Path.Combine(dir, "c.jpg") ], "must end with .png"
                  2, [ "clusters"; "--weights"; weights; "--data"; Path.Combine(voc, "JPEGImages"); "--seeds"; "4294967296" ], "--seeds must lie in [0, 2147483647], got 4294967296"
                  2, [ "eval-knn"; "--weights"; weights; "--bank"; bank; "--queries"; bank; "--query-stride"; "99999999999" ], "--query-stride must lie in [1, 2147483647], got 99999999999" // "[-2147483648, 2147483647] (≥ 1)" once
                  2, [ "eval-seg"; "--weights"; weights; "--data"; voc; "--probe-seeds"; "0,,1" ], "--probe-seeds has an empty item (number 2 of 3) (N,N,…), got '0,,1'" // read as 0,1 once
                  2, [ "bench-clustering"; "--tokens"; "1" ], "fewer than the clustering's 5 initial clusters"
                  2, [ "bench-clustering"; "--tokens"; "250000"; "--batch"; "1000"; "--heads"; "64" ], "the keys alone need 7.45 TiB" // out of memory, exit 1, once
                  2, [ "bench"; "--preset"; "tiny"; "--size"; "8" ], "--size 8 gives two views 2 patches, fewer than the preset's n-tokens 5"
                  2, [ "experiment"; "--quick" ], "--quick is the real suite's try-out"
                  2, [ "experiment"; "--suite"; "real"; "--size"; "64"; "--train-args=--epochs 2" ], "--train-args, --size: the synthetic suite's" // ignored silently once
                  2, trainArgs (Path.Combine(dir, "r1")) [ "--lr"; "nan" ], "--lr must be"
                  2, trainArgs (Path.Combine(dir, "r2")) [ "--lr"; "-0.001" ], "--lr must be"
                  2, trainArgs (Path.Combine(dir, "r3")) [ "--drop-path"; "3" ], "--drop-path must be"
                  2, trainArgs (Path.Combine(dir, "r4")) [ "--batch"; "0" ], "--batch must be"
                  2, trainArgs (Path.Combine(dir, "big-run")) [ "--image-size"; "4096"; "--patch"; "2" ], "gives 4,194,305 tokens per image: the activations"
                  2, trainArgs (Path.Combine(dir, "r5")) [ "--lr"; "Infinity" ], "--lr must be in (0, 10], got Infinity"
                  2, [ "eval-seg"; "--weights"; weights; "--data"; voc; "--lr"; "Infinity" ], "--lr must be finite and > 0, got Infinity" // "must be > 0, got Infinity" once
                  2, trainArgs aFile [], "is a file, not a folder"
                  2, trainArgs recordsAsFolders [], "holds a folder named metrics.jsonl" // "permission denied", exit 1, once
                  2, trainArgs pictureAsFolder [], "holds a folder named clusters.png" // "Is a directory", exit 1, after the last step once
                  2, trainArgs eventsAsFile [], "--output's TensorBoard folder '" + Path.Combine(eventsAsFile, "tensorboard") + "' is a file" // exit 1 after the records once
                  2, trainArgs "/" [], "is the filesystem's root" // as root, a run was written into / once
                  2, trainArgs "//." [], "is the filesystem's root"
                  2, trainArgs unwritable [], "cannot be written"
                  2, [ "export"; "--weights"; weights; "--output"; unwritable ], "cannot be written"
                  2, [ "eval-seg"; "--weights"; weights; "--json"; unwritable + ".json" ], "cannot be written"
                  2, [ "export"; "--weights"; weights; "--output"; "/proc/croc-export" ], "no new file can be made in it" // .NET's "Could not find file" once
                  2, [ "eval-seg"; "--weights"; Path.Combine(dir, "absent.pth"); "--data"; voc ], "no such file"
                  2, [ "eval-seg"; "--weights"; Path.Combine(dir, "absent.pth") ], "no such file" // before generating the synthetic set
                  2, [ "eval-seg"; "--weights"; aFile; "--data"; voc ], "not a readable PyTorch file"
                  2, [ "export"; "--weights"; fifoWeights; "--output"; Path.Combine(dir, "fifo-export") ], "is not a readable regular file" // hung once
                  2, [ "eval-knn"; "--weights"; fifoWeights; "--bank"; voc; "--queries"; voc ], "is not a readable regular file"
                  2, [ "bench"; "--size"; "4096"; "--batch"; "1"; "--repeats"; "1"; "--no-data"; "--precision"; "bf16" ], "--size 4096 with the preset's patch 16 gives 65,537 tokens per image" // bf16's scores uncounted: a C++ abort (134) once
                  2, [ "eval-knn"; "--weights"; weights; "--bank"; bank; "--queries"; bank; "--size"; "2048"; "--batch"; "1"; "--precision"; "bf16" ], "--size 2048 with the backbone's patch 8"
                  2, [ "bench"; "--preset"; "tiny"; "--size"; "30" ], "multiple of the preset's patch 8"
                  2, [ "bench-allreduce"; "--sizes"; "abc" ], "--sizes needs a number"
                  2, [ "bench-allreduce"; "--sizes"; "8,8" ], "--sizes needs two different sizes at least" // a bandwidth of 1e9 GB/s from one size once
                  2, [ "bench-allreduce"; "--sizes"; "0.000001,0.000002" ], "--sizes needs two different sizes at least" // both one element
                  2, [ "clusters"; "--weights"; weights ], "exactly one of --image and --data"
                  2, [ "clusters"; "--weights"; weights; "--image"; photo; "--count"; "3" ], "--count 3 draws images from --data" // ignored silently once
                  2, [ "clusters"; "--weights"; weights; "--image"; photo; "--output"; photo ], "is this command's input file"
                  2, [ "eval-seg"; "--weights"; weights; "--data"; badMask; "--size"; "32"; "--epochs"; "1" ], "unreadable mask"
                  2, [ "eval-knn"; "--weights"; weights ], "--bank is required"
                  2, [ "train"; "--epochs" ], "--epochs needs a value"
                  2, [ "train"; "--size"; "64" ], "unknown option --size (did you mean --image-size?)" // no suggestion once
                  2, [ "frobnicate" ], "unknown command" ]
            let weightsBytes = File.ReadAllBytes weights
            for expected, args, message in cases do
                let code, _, err = croc 120 args
                let what = String.Join(" ", args |> List.map (fun a -> if a.Length > 40 then "…" + a.Substring(a.Length - 20) else a))
                Expect.equal code expected (sprintf "%s → exit %d:\n%s" what code err)
                Expect.stringContains err message (sprintf "%s: the message" what)
                Expect.isFalse (err.Contains "   at ") (sprintf "%s: no stack trace:\n%s" what err)
                let messageLines = err.Split('\n', StringSplitOptions.RemoveEmptyEntries) |> Array.filter (fun l -> not (l.StartsWith "Run `croc-host"))
                Expect.equal messageLines.Length 1 (sprintf "%s: one line:\n%s" what err)
                if args.Head <> "export" then Expect.isFalse (err.Contains "--non-strict") (sprintf "%s: no option the command lacks" what)
            for refused in [ "lr-run"; "big-run" ] do // refused after the run folder was made once
                Expect.isFalse (Directory.Exists(Path.Combine(dir, refused))) (sprintf "the refused run left no folder '%s'" refused)
            Expect.equal (File.ReadAllBytes weights) weightsBytes "export did not write over its input"
            Expect.equal (File.ReadAllBytes otherPhoto) otherPhotoBytes "clusters did not write over a photo"
            Expect.equal (File.ReadAllText runConfig) "{ \"arch\": \"tiny\" }" "eval-knn did not write over a run's config.json"
            Expect.equal (File.ReadAllText(existing + ".json")) "another export's card" "nor over an existing file"
            Expect.equal (File.ReadAllBytes photo) photoBytes "clusters did not write over the photo it shows"
            Directory.Delete(dir, true)
        }

        test "bench-allreduce fits its ring model to the smallest and the largest size, in whatever order --sizes gives them" {
            let sorted = [ struct (1e3, 1e-4); struct (1e6, 1e-2); struct (1e8, 0.5) ]
            let struct (latency, bandwidth) = AllReduceBenchmark.FitRing(ResizeArray sorted, 4)
            Expect.floatClose Accuracy.veryHigh latency (1e-4 / 6.0) "the smallest size's time over 2(N−1) ring steps"
            Expect.floatClose Accuracy.veryHigh bandwidth (1.5 * 1e8 / (0.5 - 1e-4)) "the largest size's bytes moved, 2(N−1)/N · S, over its time less the latency"
            for order in [ List.rev sorted; [ sorted.[1]; sorted.[2]; sorted.[0] ] ] do
                Expect.equal (AllReduceBenchmark.FitRing(ResizeArray order, 4)) (struct (latency, bandwidth)) (sprintf "%A: the same fit (the first and last given were taken once)" order)
        }

        test "a rank's bad option points at the command's --help, not at 'train [rank 1]'" {
            let error = new StringWriter()
            let previous = Console.Error
            Console.SetError error
            let code = try ExitCodes.Report("train [rank 1]", OptionException "--lr must be positive") finally Console.SetError previous
            Expect.equal code 2 "bad input"
            Expect.equal (error.ToString().Split('\n', StringSplitOptions.RemoveEmptyEntries) |> List.ofArray)
                [ "croc-host train [rank 1]: --lr must be positive"; "Run `croc-host train --help` for its options." ] "the line names the rank, the hint the command"
        }

        test "eval-knn warns when the undecodable images it skipped leave the bank one class" {
            let dir = DataTests.tempDir "knn-skipped-class"
            let weights = Path.Combine(dir, "w.safetensors")
            writeTinyBackbone weights
            Directory.CreateDirectory(Path.Combine(dir, "bank", "cat")) |> ignore
            for name in [ "one"; "two" ] do
                use picture = new SixLabors.ImageSharp.Image<SixLabors.ImageSharp.PixelFormats.Rgb24>(32, 32)
                SixLabors.ImageSharp.ImageExtensions.SaveAsPng(picture, Path.Combine(dir, "bank", "cat", name + ".png"))
            Directory.CreateDirectory(Path.Combine(dir, "bank", "dog")) |> ignore
            File.WriteAllText(Path.Combine(dir, "bank", "dog", "broken.png"), "not a picture")
            let code, text, err = croc 120 [ "eval-knn"; "--weights"; weights; "--bank"; Path.Combine(dir, "bank"); "--queries"; Path.Combine(dir, "bank") ]
            Expect.equal code 0 err
            Expect.stringContains text "2 undecodable images skipped" "the broken dog skipped (in the bank and among the queries)"
            Expect.stringContains text "with the undecodable images skipped, the bank has one class ('cat')" "and the one class it leaves said (the check before the run saw two)"
            Directory.Delete(dir, true)
        }

        test "eval-knn with a --k above the bank's size says the whole bank voted, in its result line too; its JSON records the network evaluated" {
            let output = DataTests.tempDir "knn-k"
            let code, text = TrainingTests.cli (List.toArray (trainArgs output [ "--max-steps"; "1" ]))
            Expect.equal code 0 text
            let bank = Path.Combine(output, "bank")
            let scenes = Directory.GetFiles(TrainingTests.scenes.Force()) |> Array.sort
            for i in 0 .. 5 do
                let folder = Directory.CreateDirectory(Path.Combine(bank, (if i % 2 = 0 then "even" else "odd"))).FullName
                File.Copy(scenes.[i], Path.Combine(folder, present (Path.GetFileName scenes.[i])))
            let weights = Checkpoints.List(output) |> Seq.last
            let json name = Path.Combine(output, name)
            let recorded name = Text.Json.JsonDocument.Parse(File.ReadAllText(json name)).RootElement.GetProperty("backbone").GetString()
            let code, out, err = croc 120 [ "eval-knn"; "--weights"; weights; "--bank"; bank; "--queries"; bank; "--k"; "100"; "--size"; "32"; "--json"; json "teacher.json" ]
            Expect.equal code 0 err
            Expect.stringContains out "k = 6 of --k 100: the whole bank" "the k that voted"
            Expect.equal (recorded "teacher.json") "teacher" "the network evaluated is recorded"
            let record name = Text.Json.JsonDocument.Parse(File.ReadAllText(json name)).RootElement
            Expect.equal ((record "teacher.json").GetProperty("k").GetInt32()) 100 "the --k asked"
            Expect.equal ((record "teacher.json").GetProperty("k_used").GetInt32()) 6 "and the k that voted (only the asked one once)"
            Expect.stringContains (nonNull ((record "teacher.json").GetProperty("warnings").[0].GetString())) "queries are bank images too" "the warnings said before the run are kept"
            // A backbone file holds one network: asked for the student, the record says what was evaluated ("student" once), by the export's model card ("single network" once).
            Expect.equal (fst (TrainingTests.cli [| "export"; "--weights"; weights; "--output"; Path.Combine(output, "bb") |])) 0 "export"
            let code, out, err = croc 120 [ "eval-knn"; "--weights"; Path.Combine(output, "bb.safetensors"); "--backbone"; "student"; "--bank"; bank; "--queries"; bank; "--size"; "32"; "--json"; json "single.json" ]
            Expect.equal code 0 err
            Expect.stringContains out "holds a single network (the teacher, by its model card), evaluated as it is" "said"
            Expect.equal (recorded "single.json") "teacher" "recorded as the network the export was made from"
            // a re-export keeps the card's network; an export made with --non-strict is said when evaluated (silently once)
            Expect.equal (fst (TrainingTests.cli [| "export"; "--weights"; Path.Combine(output, "bb.safetensors"); "--output"; Path.Combine(output, "bb2") |])) 0 "re-export"
            let card = Text.Json.JsonDocument.Parse(File.ReadAllText(Path.Combine(output, "bb2.json"))).RootElement
            Expect.equal (nonNull (card.GetProperty("network").GetString())) "teacher" "still the teacher"
            let partial = Path.Combine(output, "partial.safetensors")
            let full = Safetensors.Read(Path.Combine(output, "bb.safetensors"))
            let struct (tensors, _) = full
            Expect.isTrue (tensors.Remove "norm.bias") "a tensor left out"
            Safetensors.Write(partial, tensors)
            Expect.equal (fst (TrainingTests.cli [| "export"; "--weights"; partial; "--non-strict"; "--output"; Path.Combine(output, "incomplete") |])) 0 "a --non-strict export"
            let code, out, err = croc 120 [ "eval-knn"; "--weights"; Path.Combine(output, "incomplete.safetensors"); "--bank"; bank; "--queries"; bank; "--size"; "32" ]
            Expect.equal code 0 err
            Expect.stringContains out "warning: this file is an incomplete export (made with --non-strict" "said"
            Directory.Delete(output, true)
        }

        test "usage errors name the subcommand's --help; every option of train is in its help with its default and range" {
            let code, message = TrainingTests.cli [| "eval-seg"; "--weights"; "w"; "--sise"; "3" |]
            Expect.equal code 2 "unknown option"
            Expect.stringContains message "unknown option --sise (did you mean --size?)" "with a suggestion"
            Expect.stringContains message "Run `croc-host eval-seg --help`" "points to the subcommand's help"
            let help = TrainCommand.Help()
            for option in OptionSet<TrainConfig>.Options do
                Expect.stringContains help ("--" + option.Name) (sprintf "--%s is in the help" option.Name)
            Expect.stringContains help "--lr X" "a value placeholder"
            Expect.stringContains help "[default 0.005; in (0, 10]]" "the default and the range of --lr"
            Expect.stringContains help "--move-aside" "the command's own options too"
            // Every stored setting is an option: a new field cannot be forgotten by the command line.
            let settable = typeof<TrainConfig>.GetProperties() |> Array.filter (fun p -> p.CanWrite) |> Array.map (fun p -> p.Name) |> Set.ofArray
            let declared = OptionSet<TrainConfig>.Options |> Seq.map (fun o -> o.Property.Name) |> Set.ofSeq
            Expect.equal declared settable "every TrainConfig field has exactly one option"
        }

        test "config files and --config themselves: no value, a preset that is not a name, a list of settings, nulls, a missing file are bad input (exit 2)" {
            let dir = DataTests.tempDir "config-files"
            let write (name: string) (text: string) =
                let file = Path.Combine(dir, name)
                File.WriteAllText(file, text)
                file
            let cases =
                [ [| "train"; "--config"; "--max-steps"; "1" |], "--config needs a value"
                  [| "train"; "--config"; write "p.toml" "preset = 5\n" |], "preset must be a name"
                  [| "train"; "--config"; write "list.json" "[1, 2]" |], "not a table of settings"
                  [| "train"; "--config"; write "null.json" """{ "device": null }""" |], "'device' is null"
                  [| "train"; "--config"; write "typo.json" """{ "lrr": 0.1 }""" |], "unknown setting 'lrr' (did you mean --lr?)"
                  [| "train"; "--config"; dir |], "is a folder, not a file"
                  [| "train"; "--config"; dir + ".json" |], "not found" ]
            for args, says in cases do
                let code, message = TrainingTests.cli args
                Expect.equal code 2 (sprintf "%A → %s" args message)
                Expect.stringContains message says (sprintf "%A" args)
            Directory.Delete(dir, true)
        }

        test "a config file's values are range-checked like the command line's (TOML nan)" {
            let file = Path.Combine(DataTests.tempDir "toml-nan", "run.toml")
            File.WriteAllText(file, "lr = nan\n")
            let e = thrown<ConfigException> (fun () -> TrainingTests.configOf [ "config", file ] |> ignore) "refused"
            ignore e
            let code, message = TrainingTests.cli [| "train"; "--config"; file |]
            Expect.equal code 2 "exit 2"
            Expect.stringContains message "--lr must be" "names the setting"
        }

        test "disk full while writing a checkpoint: the previous file stays intact and the message says what was needed" {
            let dir = DataTests.tempDir "disk-full"
            let path = Path.Combine(dir, "step-00000002.safetensors")
            File.WriteAllText(path, "previous")
            let e = thrown<IOException> (fun () -> AtomicFile.Write(path, (fun s -> s.Write([| 1uy |], 0, 1)), Int64.MaxValue / 2L)) "refused before writing"
            Expect.stringContains e.Message "needs" "how much was needed"
            Expect.stringContains e.Message "free" "and how much is free"
            Expect.isTrue (DiskSpace.IsDiskFull e) "recognised as a full disk"
            Expect.stringContains (ExitCodes.Message e) "the disk is full" "one clear line"
            // libtorch's allocator refusing (bench --threads 512 asked for 35 GB) is out of memory, not an internal error.
            let refused = Runtime.InteropServices.ExternalException("[enforce fail at alloc_cpu.cpp:117] data. DefaultCPUAllocator: can't allocate memory: you tried to allocate 34706096768 bytes. Error code 12")
            Expect.stringStarts (ExitCodes.Message refused) "out of memory" "said as such"
            Expect.isTrue (ExitCodes.IsExpected refused) "no crash file"
            let full = thrown<IOException> (fun () -> AtomicFile.Write(path, fun s -> s.Write([| 1uy; 2uy |], 0, 2); raise (IOException("No space left on device", 28)))) "a write that fills the disk"
            Expect.stringContains full.Message "were written before the disk filled" "says how far it got"
            Expect.equal (File.ReadAllText path) "previous" "the previous file is intact"
            Expect.isEmpty (Directory.GetFiles(dir, "*.tmp")) "no temporary file left"
            // files written together: the second's failure leaves the first neither new nor replaced
            let first, second = Path.Combine(dir, "a.json"), Path.Combine(dir, "b.json")
            let content (p: string) (write: IO.Stream -> unit) = AtomicFile.Content(p, Action<IO.Stream> write)
            let ok (s: IO.Stream) = s.WriteByte 65uy
            thrown<IOException> (fun () -> AtomicFile.WriteTogether([ content path ok; content first (fun s -> raise (IOException("No space left on device", 28))) ])) "the second fails" |> ignore
            Expect.equal (File.ReadAllText path) "previous" "the first, written before the failure, did not replace its file"
            Expect.isFalse (File.Exists first) "nothing at the second's path"
            Expect.isEmpty (Directory.GetFiles(dir, "*.tmp")) "no temporary file left"
            // a name within 44 bytes of the 255-byte limit: its temporary file is the hidden .PID.GUID.tmp beside it (TARGET.PID.GUID.tmp failed after the work once)
            let longName = Path.Combine(dir, String('n', 250))
            AtomicFile.WriteTogether([ content longName ok ])
            Expect.equal (File.ReadAllText longName) "A" "written"
            Expect.isTrue (AtomicFile.IsAbandoned(Path.Combine(dir, sprintf ".2147483000.%s.tmp" (Guid.NewGuid().ToString("N"))))) "the short form is cleaned up after a killed writer too"
            AtomicFile.WriteTogether([ content first ok; content second ok ])
            Expect.equal [ File.ReadAllText first; File.ReadAllText second ] [ "A"; "A" ] "both written when both succeed"
            // only a target present at the check may be replaced: one that appears before its rename is kept (the check's answer was asked again once)
            File.Delete second
            let appears (_: string) = File.WriteAllText(second, "theirs"); true
            thrown<OutputException> (fun () -> AtomicFile.WriteTogether([ content first ok; content second ok ], true, Func<string, bool>(appears))) "refused" |> ignore
            Expect.equal (File.ReadAllText second) "theirs" "kept"
            Directory.Delete(dir, true)
        }

        test "a ViT pass whose activations cannot fit in memory is refused before any work; the official step fits" {
            let official = Training.CrocSetup.Published(Training.Arch.Small, 16, 224)
            // 2 bytes × 16 images × 197 tokens × 8·384 values × 12 blocks: a lower bound
            Expect.floatClose Accuracy.veryHigh (MemoryFit.ActivationBytes(official, 16L, true, PrecisionChoice.Fp32)) (2.0 * 16.0 * 197.0 * 8.0 * 384.0 * 12.0) "the estimate"
            Expect.floatClose Accuracy.veryHigh (MemoryFit.ActivationBytes(official, 16L, false, PrecisionChoice.Fp32)) (2.0 * 16.0 * 197.0 * 8.0 * 384.0) "one block at inference"
            // bf16 on the CPU holds the scores (2 bytes × 16 × 6 heads × 197²): 13 blocks' worth under training, 2 at inference
            let scores = 2.0 * 16.0 * 6.0 * 197.0 * 197.0
            Expect.floatClose Accuracy.veryHigh (MemoryFit.ActivationBytes(official, 16L, true, PrecisionChoice.Bf16)) (2.0 * 16.0 * 197.0 * 8.0 * 384.0 * 12.0 + 13.0 * scores) "bf16 training"
            Expect.floatClose Accuracy.veryHigh (MemoryFit.ActivationBytes(official, 16L, false, PrecisionChoice.Bf16)) (2.0 * 16.0 * 197.0 * 8.0 * 384.0 + 2.0 * scores) "bf16 inference"
            // the parameters in float32: ViT-S/16's 21,665,664 once at inference, six times under training (student, teacher, gradients, two moments, a shadow)
            Expect.floatClose Accuracy.veryHigh (MemoryFit.ParameterBytes(official, true)) (4.0 * 6.0 * 21665664.0) "training"
            Expect.floatClose Accuracy.veryHigh (MemoryFit.ParameterBytes(official, false)) (4.0 * 21665664.0) "inference"
            MemoryFit.Check(official, 16L, true, PrecisionChoice.Bf16, "the official step", 4L <<< 30) // 0.8 GB in half of 4 GB
            // a bound within memory but above half of it: a bench of 2 × 65,536 images at 16 px passed and was killed for memory once
            thrown<OptionException> (fun () -> MemoryFit.Check(official, 16L, true, PrecisionChoice.Bf16, "the official step", 1500L <<< 20)) "0.8 GB in 1.5 GB" |> ignore
            let e = thrown<OptionException> (fun () -> MemoryFit.Check(official, 16L, true, PrecisionChoice.Fp32, "--size 224 with --patch 16", 100L <<< 20)) "beyond 100 MiB"
            Expect.stringContains e.Message "--size 224 with --patch 16 gives 197 tokens per image: the activations of 16 image(s) and the parameters need at least 221.6 MiB + 495.9 MiB, more than half of this machine's 100.0 MiB" "says why"
        }

        test "two exports racing for one --output: without --overwrite the later rename keeps the file the other process wrote meanwhile" {
            let dir = DataTests.tempDir "export-race"
            let path = Path.Combine(dir, "backbone.json")
            let other () = File.WriteAllText(path, "the other export's")
            let e = thrown<OutputException> (fun () -> AtomicFile.Write(path, (fun s -> other (); s.Write([| 1uy |], 0, 1)), replace = false)) "refused"
            Expect.stringContains e.Message "was written by another process while this one wrote it" "said"
            Expect.equal (File.ReadAllText path) "the other export's" "kept"
            Expect.equal (Directory.GetFiles dir).Length 1 "no temporary file left"
            AtomicFile.Write(path, (fun s -> s.Write([| 65uy |], 0, 1)))
            Expect.equal (File.ReadAllText path) "A" "replace (--overwrite, checkpoints) still replaces"
            Directory.Delete(dir, true)
        }

        test "export keeps a checkpoint's config metadata that is not JSON (another tool's) as text in the model card, and says whether every tensor loaded" {
            let dir = DataTests.tempDir "export-namespace"
            let network = NamedTensors(Network.named (Network.init Fixtures.config (new torch.Generator(1UL, torch.CPU))))
            let weights = Path.Combine(dir, "ckpt.safetensors")
            Safetensors.Write(weights, network.WithPrefix("student."), readOnlyDict [ "config", "Namespace(arch='vit_small')" ])
            let code, out, err = croc 120 [ "export"; "--weights"; weights; "--network"; "student"; "--output"; Path.Combine(dir, "w") ]
            Expect.equal code 0 (out + err)
            let card = present (System.Text.Json.Nodes.JsonNode.Parse(File.ReadAllText(Path.Combine(dir, "w.json"))))
            Expect.equal (string card.["training_config"]) "Namespace(arch='vit_small')" "kept as text"
            Expect.equal ((present card.["complete"]).GetValue<bool>()) true "every tensor loaded"
            // A --non-strict export of a file that lacks a tensor says so in its card.
            network.Remove "backbone.norm.weight" |> ignore
            let partial = Path.Combine(dir, "partial.safetensors")
            Safetensors.Write(partial, network.WithPrefix("student."))
            let code, out, err = croc 120 [ "export"; "--weights"; partial; "--network"; "student"; "--non-strict"; "--output"; Path.Combine(dir, "p") ]
            Expect.equal code 0 (out + err)
            let card = present (System.Text.Json.Nodes.JsonNode.Parse(File.ReadAllText(Path.Combine(dir, "p.json"))))
            Expect.equal ((present card.["complete"]).GetValue<bool>()) false "incomplete"
            Expect.stringContains (string card.["binding"]) "missing from the file: norm.weight" "names what did not load"
            Directory.Delete(dir, true)
        }

        test "export's model card gives the input normalisation and the architecture's details; a re-export keeps the training config and commit; two exports of one file are byte-identical" {
            let dir = DataTests.tempDir "export-card"
            let network = NamedTensors(Network.named (Network.init Fixtures.config (new torch.Generator(1UL, torch.CPU))))
            let weights = Path.Combine(dir, "ckpt.safetensors")
            Safetensors.Write(weights, network.WithPrefix("student."), readOnlyDict [ "config", "{\"arch\": \"tiny\"}"; "commit", "abc1234" ])
            let exportSaying (args: string list) =
                let code, out, err = croc 120 ([ "export" ] @ args)
                Expect.equal code 0 (out + err)
                out
            let export args = exportSaying args |> ignore
            let cardOf (name: string) = present (System.Text.Json.Nodes.JsonNode.Parse(File.ReadAllText(Path.Combine(dir, name + ".json"))))
            let said = exportSaying [ "--weights"; weights; "--network"; "student"; "--output"; Path.Combine(dir, "w") ]
            Expect.isFalse (said.Contains "taken as D/64") "no doubt about the heads of weights with croc-host's training config"
            let card = cardOf "w"
            let input = present card.["input"]
            Expect.sequenceEqual [ for v in (present input.["mean"]).AsArray() -> (present v).GetValue<float32>() ] [ 0.485f; 0.456f; 0.406f ] "ImageNet mean"
            Expect.sequenceEqual [ for v in (present input.["std"]).AsArray() -> (present v).GetValue<float32>() ] [ 0.229f; 0.224f; 0.225f ] "ImageNet std"
            Expect.equal ((present card.["layer_norm_eps"]).GetValue<float>()) 1e-6 "LayerNorm eps"
            Expect.stringContains (string card.["heads_source"]) "D/64" "says the head count was inferred"
            Expect.equal (string (present card.["training_config"]).["arch"]) "tiny" "training config"
            // a re-export of the export (a plain backbone whose metadata is the embedded card)
            export [ "--weights"; Path.Combine(dir, "w.safetensors"); "--output"; Path.Combine(dir, "again") ]
            let again = cardOf "again"
            Expect.equal (string (present again.["training_config"]).["arch"]) "tiny" "the training config survives a re-export"
            Expect.equal (string again.["training_commit"]) "abc1234" "and the training commit"
            // heads given at export are the file's from then on: a re-export (and any load) reads them from its card
            let said = exportSaying [ "--weights"; Path.Combine(dir, "w.safetensors"); "--heads"; "4"; "--output"; Path.Combine(dir, "h4") ]
            Expect.stringContains said "--heads 4 replaces the file's 1 head(s) (the model card in the file)" "said (without a word once)"
            let said = exportSaying [ "--weights"; Path.Combine(dir, "h4.safetensors"); "--output"; Path.Combine(dir, "h4-again") ]
            let h4 = cardOf "h4-again"
            Expect.equal ((present h4.["heads"]).GetValue<int>()) 4 "the recorded heads, not D/64 (they were ignored once)"
            Expect.equal (string h4.["heads_source"]) "the model card in the file" "and where they came from"
            Expect.isFalse (said.Contains "taken as D/64") "no doubt"
            Expect.equal (BackboneLoader.Load(Path.Combine(dir, "h4.safetensors")).Config.Heads) 4 "every command's loader"
            export [ "--weights"; Path.Combine(dir, "w.safetensors"); "--output"; Path.Combine(dir, "named.safetensors") ]
            Expect.isTrue (File.Exists(Path.Combine(dir, "named.pth")) && File.Exists(Path.Combine(dir, "named.json"))) "--output x.safetensors names the export x"
            Expect.isFalse (File.Exists(Path.Combine(dir, "named.safetensors.safetensors"))) "not x.safetensors.safetensors (written once)"
            let said = exportSaying [ "--weights"; Path.Combine(dir, "w.safetensors"); "--output"; Path.Combine(dir, "named"); "--format"; "pth"; "--overwrite" ]
            Expect.stringContains said "named.safetensors, of an earlier export, is left as it was" "a file the new card does not describe is named"
            // an official full checkpoint, twice, in two processes (a Hashtable's order differs between them)
            for name in [ "a"; "b" ] do export [ "--weights"; Fixtures.path "croc_full_checkpoint.pth"; "--output"; Path.Combine(dir, name) ]
            for ext in [ ".pth"; ".safetensors"; ".json" ] do
                Expect.sequenceEqual (File.ReadAllBytes(Path.Combine(dir, "b" + ext))) (File.ReadAllBytes(Path.Combine(dir, "a" + ext))) ("the same bytes: " + ext)
            let notes = [ for n in (present (cardOf "a").["notes"]).AsArray() -> string n ]
            Expect.isGreaterThan notes.Length 1 "several notes"
            Expect.sequenceEqual notes (List.sortWith (fun x y -> System.String.CompareOrdinal(x, y)) notes) "in key order"
            Directory.Delete(dir, true)
        }

        test "bench --object-shapes fixed runs train's step in the fixed layout" {
            let config = CrOC.Host.BenchCommand.ConfigOf(CrOC.Host.BenchOptions(ObjectShapes = ObjectShapesChoice.Fixed))
            Expect.equal config.ObjectShapes ObjectShapesChoice.Fixed "passed to the step's config"
            Expect.equal (CrocSetup.Clustering config).Shapes CrOC.Math.Clustering.ObjectShapes.Fixed "and to the clustering"
            Expect.equal (CrocSetup.Clustering (CrOC.Host.BenchCommand.ConfigOf(CrOC.Host.BenchOptions()))).Shapes CrOC.Math.Clustering.ObjectShapes.Dynamic "dynamic by default"
        }

        test "eval-seg --save-predictions: names with subfolders are written there; a name leading outside the folder is refused before the work" {
            let dir = DataTests.tempDir "predictions"
            let voc = Path.Combine(dir, "voc")
            CrOC.Data.SyntheticScenes.WriteVoc(voc, 4, 2, 3L)
            for folder, ext in [ "JPEGImages", ".jpg"; "SegmentationClass", ".png" ] do
                Directory.CreateDirectory(Path.Combine(voc, folder, "sub")) |> ignore
                File.Move(Path.Combine(voc, folder, "scene_00004" + ext), Path.Combine(voc, folder, "sub", "scene_00004" + ext))
            let valList = Path.Combine(voc, "ImageSets", "Segmentation", "val.txt")
            File.WriteAllLines(valList, [ "sub/scene_00004"; "scene_00005" ])
            let weights = Path.Combine(dir, "w.safetensors")
            writeTinyBackbone weights
            let out, json = Path.Combine(dir, "out"), Path.Combine(dir, "result.json")
            let arguments = [| "eval-seg"; "--weights"; weights; "--data"; voc; "--size"; "32"; "--epochs"; "1"; "--lr"; "0.2"; "--cache-features"; "--standardize"; "--probe-seeds"; "0,1"; "--save-predictions"; out; "--json"; json |]
            let run () = TrainingTests.cli arguments
            let code, text = run ()
            Expect.equal code 0 text
            Expect.isTrue (File.Exists(Path.Combine(out, "sub", "scene_00004.png")) && File.Exists(Path.Combine(out, "scene_00005.png"))) "both masks"
            Expect.isTrue (File.Exists json) "and the JSON"
            // the real-photo suite takes the JSON as this job's result, and not another job's
            let job (arguments: string[]) = Evaluation.RealPhotos.HostJob("probe", arguments, "log")
            Expect.isFalse (Evaluation.RealPhotos.RealPhotoSuite.NotDone(job arguments)) "the JSON records the job's own settings"
            for option, other in [ "--epochs", "2"; "--lr", "0.1"; "--probe-seeds", "0" ] do
                let changed = arguments |> Array.mapi (fun i a -> if i > 0 && arguments.[i - 1] = option then other else a)
                Expect.isTrue (Evaluation.RealPhotos.RealPhotoSuite.NotDone(job changed)) (sprintf "%s %s differs from the record" option other)
            Expect.isTrue (Evaluation.RealPhotos.RealPhotoSuite.NotDone(job (arguments |> Array.filter ((<>) "--standardize")))) "without --standardize"
            File.WriteAllLines(valList, [ "../../escape" ])
            // the image and mask exist (beside the dataset), so the names' check is the one that refuses
            File.Copy(Path.Combine(voc, "JPEGImages", "scene_00005.jpg"), Path.Combine(dir, "escape.jpg"))
            File.Copy(Path.Combine(voc, "SegmentationClass", "scene_00005.png"), Path.Combine(dir, "escape.png"))
            let code, text = run ()
            Expect.equal code 2 text
            Expect.stringContains text "outside --save-predictions" "says why"
            Directory.Delete(dir, true)
        }

        test "records name a build from a tree with uncommitted changes 'HASH-dirty'" {
            Expect.equal (Runtime.GitInfo.Embedded "0.1.0+0123456789abcdef-dirty") "0123456-dirty" "dirty"
            Expect.equal (Runtime.GitInfo.Embedded "0.1.0+0123456789abcdef") "0123456" "clean"
            Expect.equal (Runtime.GitInfo.Embedded "0.1.0") "unknown" "outside git"
            Expect.equal (Runtime.GitInfo.Embedded null) "unknown" "no version"
        }

        test "the commit in records is the binary's, not that of the git repository the command runs in" {
            let dir = DataTests.tempDir "other-repo"
            let git (args: string list) =
                let info = Diagnostics.ProcessStartInfo("git", WorkingDirectory = dir, RedirectStandardOutput = true)
                for a in [ "-c"; "user.name=t"; "-c"; "user.email=t@t" ] @ args do info.ArgumentList.Add a
                use p = present (Diagnostics.Process.Start info)
                let out = p.StandardOutput.ReadToEnd().Trim()
                p.WaitForExit()
                out
            git [ "init"; "-q" ] |> ignore
            git [ "commit"; "-q"; "--allow-empty"; "-m"; "x" ] |> ignore
            let theirs = git [ "rev-parse"; "--short=7"; "HEAD" ]
            let weights = Path.Combine(dir, "w.safetensors")
            writeTinyBackbone weights
            let info = Diagnostics.ProcessStartInfo("dotnet", WorkingDirectory = dir, RedirectStandardOutput = true, RedirectStandardError = true)
            for a in [ hostDll; "export"; "--weights"; weights; "--output"; Path.Combine(dir, "card") ] do info.ArgumentList.Add a
            use p = present (Diagnostics.Process.Start info)
            p.StandardOutput.ReadToEnd() |> ignore
            p.WaitForExit()
            Expect.equal p.ExitCode 0 "exported"
            let card = present (System.Text.Json.Nodes.JsonNode.Parse(File.ReadAllText(Path.Combine(dir, "card.json"))))
            Expect.equal (string card.["export_commit"]) Runtime.GitInfo.Commit "the binary's commit"
            Expect.notEqual Runtime.GitInfo.Commit theirs "not the folder's repository's"
            Directory.Delete(dir, true)
        }

        test "hostile weights: a deeply nested pickle, a huge safetensors shape and a dtype that disagrees with its bytes are refused" {
            let dir = DataTests.tempDir "hostile"
            let zip (path: string) (entries: (string * byte[]) list) =
                use archive = new ZipArchive(File.Create path, ZipArchiveMode.Create)
                for name, bytes in entries do
                    use s = archive.CreateEntry(name, CompressionLevel.Fastest).Open()
                    s.Write(bytes, 0, bytes.Length)
            // 10⁶ nested lists: EMPTY_LIST × n, APPEND × (n − 1), STOP.
            let n = 1_000_000
            let nested = Array.concat [ [| 0x80uy; 2uy |]; Array.create n (byte ']'); Array.create (n - 1) (byte 'a'); [| byte '.' |] ]
            let deep = Path.Combine(dir, "deep.pth")
            zip deep [ "archive/data.pkl", nested ]
            let e = thrown<WeightsException> (fun () -> PthReader.Read deep |> ignore) "refused, no stack overflow"
            Expect.stringContains e.Message "nested deeper than" "says why"
            /// A safetensors file's bytes: the header's length, the header, `data` zero bytes.
            let safetensorsBytes (header: string) (data: int) =
                let json = Encoding.UTF8.GetBytes header
                Array.concat [ BitConverter.GetBytes(uint64 json.Length); json; Array.zeroCreate data ]
            let safetensors (path: string) (header: string) (data: int) = File.WriteAllBytes(path, safetensorsBytes header data)
            let huge = Path.Combine(dir, "huge.safetensors")
            safetensors huge """{"x": {"dtype": "F32", "shape": [4611686018427387904, 4], "data_offsets": [0, 16]}}""" 16
            Expect.throwsT<WeightsException> (fun () -> Safetensors.Read huge |> ignore) "a shape whose size overflows is refused"
            let mismatch = Path.Combine(dir, "mismatch.safetensors")
            safetensors mismatch """{"x": {"dtype": "F32", "shape": [4], "data_offsets": [0, 32]}}""" 32
            Expect.throwsT<WeightsException> (fun () -> Safetensors.Read mismatch |> ignore) "bytes ≠ elements × dtype size"
            // Missing or null fields are refused by name, without a NullReferenceException on the way
            // (a caught one killed AMX threads: see SignalStackTests); the stream overload does not wrap.
            for header, says in [ """{"x": {"dtype": "F32", "data_offsets": [0, 16]}}""", "no shape array"
                                  """{"x": {"dtype": "F32", "shape": [4]}}""", "no data_offsets array"
                                  """{"x": {"dtype": "F32", "shape": "4", "data_offsets": [0, 16]}}""", "no shape array"
                                  """{"x": {"dtype": "F32", "shape": [null], "data_offsets": [0, 16]}}""", "shape holds a null" ] do
                use stream = new MemoryStream(safetensorsBytes header 16)
                let e = thrown<WeightsException> (fun () -> Safetensors.Read(stream) |> ignore) header
                Expect.stringContains e.Message says header
            // A .pth whose storage holds twice the bytes its FloatStorage elements need.
            let good = Path.Combine(dir, "good.pth")
            PthWriter.Write(good, NamedTensors([ "w", torch.ones(4L) ]))
            let entries =
                use archive = ZipFile.OpenRead good
                [ for entry in archive.Entries ->
                    use s = entry.Open()
                    use m = new MemoryStream()
                    s.CopyTo m
                    entry.FullName, (if entry.FullName.EndsWith "data/0" then Array.append (m.ToArray()) (m.ToArray()) else m.ToArray()) ]
            let doubled = Path.Combine(dir, "doubled.pth")
            zip doubled entries
            let e = thrown<WeightsException> (fun () -> PthReader.Read doubled |> ignore) "refused"
            Expect.stringContains e.Message "need 16" "says what the dtype needs"
            // A .pth's pickle edited byte for byte: `edit` maps data.pkl's bytes.
            let editedPickle (name: string) (tensors: NamedTensors) (edit: byte[] -> byte[]) =
                let source = Path.Combine(dir, name + ".source.pth")
                PthWriter.Write(source, tensors)
                let parts =
                    use archive = ZipFile.OpenRead source
                    [ for entry in archive.Entries ->
                        use s = entry.Open()
                        use m = new MemoryStream()
                        s.CopyTo m
                        entry.FullName, (if entry.FullName.EndsWith "data.pkl" then edit (m.ToArray()) else m.ToArray()) ]
                let path = Path.Combine(dir, name + ".pth")
                zip path parts
                path
            let replace (find: byte[]) (by: byte[]) (bytes: byte[]) =
                let at = [ 0 .. bytes.Length - find.Length ] |> List.find (fun i -> bytes.[i .. i + find.Length - 1] = find)
                Array.concat [ bytes.[.. at - 1]; by; bytes.[at + find.Length ..] ]
            // One stored float as a (2²⁸,) tensor of stride 0: 1 GiB from 4 bytes.
            let broadcast = editedPickle "broadcast" (NamedTensors([ "w", torch.ones(1L) ])) (replace "(J\001\000\000\000t(J\001\000\000\000t"B "(J\000\000\000\016t(J\000\000\000\000t"B)
            let e = thrown<WeightsException> (fun () -> PthReader.Read broadcast |> ignore) "refused"
            Expect.stringContains e.Message "built from 1 stored ones" "says why"
            // Five tensors rebuilt from one storage (keys "1".."4" edited to "0").
            let sameStorage = editedPickle "same-storage" (NamedTensors([ for i in 0 .. 4 -> sprintf "w%d" i, torch.ones(1L) ]))
                                (fun bytes -> List.fold (fun b k -> replace (Array.append "X\001\000\000\000"B [| byte k |]) "X\001\000\000\0000"B b) bytes [ '1'; '2'; '3'; '4' ])
            let e = thrown<WeightsException> (fun () -> PthReader.Read sameStorage |> ignore) "refused"
            Expect.stringContains e.Message "more than 4× its size" "says why"
            // A file saved on a big-endian machine (torch.save writes its byte order): refused, not misread.
            let big = Path.Combine(dir, "big.pth")
            zip big [ for name, bytes in entries -> name, (if name.EndsWith "/byteorder" then "big"B else bytes) ]
            let e = thrown<WeightsException> (fun () -> PthReader.Read big |> ignore) "refused"
            Expect.stringContains e.Message "big-endian" "says why"
            // Backbone tensors of the wrong rank or an empty width: the architecture cannot be read off them.
            let vit = NamedTensors(Seq.map id (Vit.named (Vit.init (Vit.VitConfig.Tiny(8, 32) |> fun c -> { c with Depth = 1 }) (new torch.Generator(0UL)))))
            for name, shape in [ "cls_token", [||]; "cls_token", [| 1L; 1L; 0L |]; "pos_embed", [| 17L |]; "patch_embed.proj.weight", [| 192L |] ] do
                let broken = NamedTensors(vit |> Seq.map (fun kv -> kv.Key, (if kv.Key = name then torch.zeros(shape) else kv.Value)))
                let e = thrown<WeightsException> (fun () -> BackboneShape.Infer broken |> ignore) (sprintf "%s %A" name shape)
                Expect.stringContains e.Message name "names the tensor"
            // Shapes that read as an architecture that cannot be: a pos_embed of the CLS row alone (image size 0,
            // exported, then an internal error in every load once) and an MLP narrower than the width (ratio 0 once).
            for name, shape, why in [ "pos_embed", [| 1L; 1L; 192L |], "pos_embed holds 0 patch positions"; "blocks.0.mlp.fc1.weight", [| 96L; 192L |], "hidden width 96 is not a whole multiple of the width 192" ] do
                let broken = NamedTensors(vit |> Seq.map (fun kv -> kv.Key, (if kv.Key = name then torch.zeros(shape) else kv.Value)))
                let e = thrown<WeightsException> (fun () -> BackboneShape.Infer broken |> ignore) name
                Expect.stringContains e.Message why "says why"
            // One name with and without DistributedDataParallel's module. prefix: an internal error (duplicate key) once.
            let both = Path.Combine(dir, "both.safetensors")
            Safetensors.Write(both, NamedTensors(Seq.append (vit |> Seq.map (fun kv -> kv.Key, kv.Value)) [ "module.cls_token", vit.["cls_token"] ]))
            let e = thrown<WeightsException> (fun () -> CheckpointImport.Import both |> ignore) "refused"
            Expect.stringContains e.Message "'module.cls_token' and 'cls_token' are both in the file" "names them"
            // A few small tensors whose shapes describe a huge ViT (D = 2¹⁴ or 2²⁰, no attention or MLP tensors
            // but fc1's first): refused before the model is allocated (out of memory or swapping once).
            let huge (width: int64) =
                let path = Path.Combine(dir, sprintf "huge-%d.safetensors" width)
                Safetensors.Write(path, NamedTensors([ "cls_token", torch.zeros(1L, 1L, width); "pos_embed", torch.zeros(1L, 2L, width); "patch_embed.proj.weight", torch.zeros(width, 3L, 1L, 1L)
                                                       "blocks.0.norm1.weight", torch.zeros(1L); "blocks.0.mlp.fc1.weight", torch.zeros(width, 1L) ]))
                path
            let e = thrown<WeightsException> (fun () -> BackboneLoader.Load(huge 16384L) |> ignore) "strict"
            Expect.stringContains e.Message "where a ViT of D=16384, depth 1, patch 1, 2 positions read off their shapes has 1,610,924,032: tensors are missing" "says why"
            // the random baseline too: its architecture is the file's (3 GB made for a 424-byte file once)
            let e = thrown<WeightsException> (fun () -> BackboneLoader.Load(huge 16384L, randomSeed = 0) |> ignore) "--random"
            Expect.stringContains e.Message "tensors are missing" "says why"
            let e = thrown<WeightsException> (fun () -> BackboneLoader.Load(huge 1048576L, strict = false) |> ignore) "non-strict"
            Expect.stringContains e.Message "more than this machine's" "too large to make"
            // A training checkpoint without teacher.* tensors: the student stands for both, said so (not "no 'cls_token' tensor").
            let studentOnly = Path.Combine(dir, "student-only.safetensors")
            Safetensors.Write(studentOnly, vit.WithPrefix("backbone.").WithPrefix("student."))
            let imported = CheckpointImport.Import studentOnly
            Expect.isNull imported.Teacher "no teacher"
            Expect.contains imported.Notes "no teacher.* tensors: the student's weights stand for both" "noted"
            Expect.equal (BackboneLoader.Load(studentOnly).Network) "single network" "loads the student"
            // and the teacher alone likewise ("no ViT weights recognised" once, though a .pth full checkpoint was read so)
            let teacherOnly = Path.Combine(dir, "teacher-only.safetensors")
            Safetensors.Write(teacherOnly, vit.WithPrefix("backbone.").WithPrefix("teacher."))
            let imported = CheckpointImport.Import teacherOnly
            Expect.contains imported.Notes "no student.* tensors: the teacher's weights stand for both" "noted"
            Expect.equal (BackboneLoader.Load(teacherOnly, NetworkChoice.Teacher).Config.Dim) (BackboneLoader.Load(studentOnly).Config.Dim) "loads"
            Directory.Delete(dir, true)
        }
    
        test "long work reports progress with an ETA; clusters writes its picture beside the weights, not into the current folder" {
            let lines = ResizeArray<string>()
            let progress = ProgressReport("feature pass", 4L, Action<string>(lines.Add), TimeSpan.Zero)
            for _ in 1 .. 4 do progress.Advance()
            Expect.equal lines.Count 4 "a line per step with no interval"
            Expect.stringContains lines.[0] "feature pass: 1/4 (25%)" "what, how far"
            Expect.stringContains lines.[0] "ETA" "and when it will end"
            Expect.isFalse (lines.[3].Contains "ETA") "no ETA once done"
            let dir = DataTests.tempDir "clusters-output"
            let weights = Path.Combine(dir, "w.safetensors")
            BackboneExport.Write(weights, NamedTensors(Seq.map id <| Vit.named (Vit.init { Vit.VitConfig.Tiny(8, 32) with Depth = 1 } (new torch.Generator(0UL)))).WithPrefix("backbone."))
            let image = Path.Combine(dir, "scene.jpg")
            let struct (scene, _) = CrOC.Data.SyntheticScenes.Generate(1L, 0, CrOC.Data.SyntheticScenes.SceneOptions(64, 48))
            CrOC.Data.SyntheticScenes.SaveJpeg(scene, image)
            let code, message = TrainingTests.cli [| "clusters"; "--weights"; weights; "--image"; image |]
            Expect.equal code 0 message
            for name, struct (width, height) in [ "w-clusters.png", Visual.ClusterPictures.ClustersPictureSize(32, 1); "w-clusters-attention.png", Visual.ClusterPictures.AttentionPictureSize(32, 1, Vit.VitConfig.Tiny(8, 32).Heads) ] do
                let info = SixLabors.ImageSharp.Image.Identify(Path.Combine(dir, name))
                Expect.equal (int64 info.Width, int64 info.Height) (width, height) (name + ": the size the --size/--count limit is checked on")
            Expect.isTrue (File.Exists(Path.Combine(dir, "w-clusters.png")) && File.Exists(Path.Combine(dir, "w-clusters-attention.png"))) "beside the weights"
            Directory.Delete(dir, true)
        }
    ]
