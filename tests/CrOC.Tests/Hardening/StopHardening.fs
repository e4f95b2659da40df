/// Stop signals and job runners: a stop ends after a step with a checkpoint, writes in progress are
/// abandoned cleanly, a failing job stops its batch. Each test reproduces a problem found by trying
/// the tool as a user would.
module CrOC.Tests.StopHardening

open System
open System.Diagnostics
open System.IO
open Expecto
open CrOC.Host
open CrOC.Host.CommandLine
open CrOC.Host.Training
open CrOC.Host.Weights
open CrOC.Host.Runtime
open CrOC.Tests.TestUtil
open CrOC.Tests.HardeningShared

/// env's option that sets the stop signals to their default action (see hostWithDefaultSignals).
let defaultSignals = "--default-signal=INT,QUIT,HUP,TERM,USR1"

/// The start of a croc-host process with the stop signals at their default action: a background job of a
/// non-interactive shell (`dotnet run … &`) has SIGINT and SIGQUIT ignored (some shells ignore SIGQUIT in the
/// foreground too), its children inherit that, and the host keeps a signal ignored at start ignored (as nohup
/// asks): a SIGINT or Ctrl-\ test then fails for its runner's sake (the suite's SIGQUIT case did, in a session's shell).
let hostWithDefaultSignals (args: string list) =
    let info = ProcessStartInfo("env", RedirectStandardOutput = true, RedirectStandardError = true)
    for a in [ defaultSignals; "dotnet"; hostDll ] @ args do info.ArgumentList.Add a // env execs dotnet: one process, one PID
    info

/// Starts croc-host with `args` (its stop signals at their default), waits (at most 120 s) until `ready` holds for its
/// PID and its stdout so far, then `settle` ms more, sends SIG`signal` and waits at most `endWithin` ms for
/// its end: the exit code, stdout and stderr. `waiting` says what never came when the process ends first or the wait runs out.
let stoppedWhen (args: string list) (ready: int -> string -> bool) (waiting: string) (settle: int) (signal: string) (endWithin: int) =
    use p = new Process(StartInfo = hostWithDefaultSignals args)
    let out = Text.StringBuilder()
    let outSoFar () = lock out (fun () -> out.ToString())
    p.OutputDataReceived.Add(fun line -> if not (isNull line.Data) then lock out (fun () -> out.AppendLine line.Data |> ignore))
    p.Start() |> ignore
    p.BeginOutputReadLine()
    let err = p.StandardError.ReadToEndAsync()
    let watch = Stopwatch.StartNew()
    while not (ready p.Id (outSoFar ())) do
        if watch.Elapsed.TotalSeconds > 120.0 || p.HasExited then failwithf "%s: %s" waiting err.Result
        Threading.Thread.Sleep 20
    Threading.Thread.Sleep settle
    (present (Process.Start("kill", [| "-" + signal; string p.Id |]))).WaitForExit()
    if not (p.WaitForExit endWithin) then p.Kill true; failwith "did not end"
    p.WaitForExit() // the last lines of stdout handled
    p.ExitCode, outSoFar (), err.Result

/// A training job told (by ParentWatch's variable) that `suite` is its suite, which is not its parent: so it
/// watches that process's existence. Its stdout lines are gathered as they come; its stderr read to the end.
let startWatchedJob (output: string) (extra: string list) (suite: Process) =
    let info = ProcessStartInfo("dotnet", RedirectStandardOutput = true, RedirectStandardError = true)
    for a in hostDll :: trainArgs output ([ "--epochs"; "1000"; "--log-every"; "1" ] @ extra) do info.ArgumentList.Add a
    info.Environment[ParentWatch.Variable] <- string suite.Id
    let job = new Process(StartInfo = info)
    let lines = Collections.Concurrent.ConcurrentQueue<string>()
    job.OutputDataReceived.Add(fun e -> match e.Data with | null -> () | line -> lines.Enqueue line)
    job.Start() |> ignore
    job.BeginOutputReadLine()
    job, lines, job.StandardError.ReadToEndAsync()

/// A quick real-photo suite over small synthetic copies of its datasets: its data root, its --output, the
/// training jobs it runs now, and its arguments.
let quickRealSuite () =
    let root = DataTests.tempDir "suite-hangup"
    for name, train in [ "camvid", 448; "weizmann-horses", 4 ] do CrOC.Data.SyntheticScenes.WriteVoc(Path.Combine(root, name), train, 2, 3L) // the plan's 14 batches of 32
    let splits = Path.Combine(root, "camvid", "ImageSets", "Segmentation")
    for split in [ "trainval"; "test" ] do File.Copy(Path.Combine(splits, "train.txt"), Path.Combine(splits, split + ".txt"))
    File.WriteAllLines(Path.Combine(root, "weizmann-horses", "labels.txt"), [ "background"; "horse" ])
    File.WriteAllText(Path.Combine(root, "tiny-imagenet-subset.tar"), "")
    let output = DataTests.tempDir "suite-hangup-out"
    let jobsOf () = Process.GetProcesses() |> Array.filter (fun p -> try File.ReadAllText($"/proc/{p.Id}/cmdline").Contains(output + "/runs") with _ -> false)
    root, output, jobsOf, [ "experiment"; "--suite"; "real"; "--quick"; "--data-root"; root; "--output"; output ]

let tests =
    testList "stops and jobs" [
        test "the synthetic experiment: a run that fails ends its own train.log with the failure line, as train's does" {
            let experiment = DataTests.tempDir "experiment-fails"
            let trainArgsText = String.Join(" ", [ for name, value in TrainingTests.tinyPairs "x" do if not (List.contains name [ "output"; "data"; "epochs" ]) then yield sprintf "--%s %s" name value ]) + " --max-steps 2"
            let code, err = crocWithFileLimit 256L [] [ "experiment"; "--seeds"; "0"; "--output"; experiment; "--train-args=" + trainArgsText ] // the first checkpoint fails
            Expect.equal code 1 err
            let runLog = File.ReadAllLines(Path.Combine(experiment, "croc-seed0", "train.log"))
            Expect.stringContains (Array.last runLog) "croc-host experiment: a file grew past the largest this process may write" "the last line says why (on stderr alone once)"
            Directory.Delete(experiment, true)
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
            // the handlers that outlive the command (the runtime's shutdown): the signal the trainer took is its second
            // (they took it once more, so only a third ended the process), another's first is still taken
            Expect.isFalse (SignalStop().TakeUnlessTakenBefore "SIGTERM") "the signal the trainer took: left to its default action"
            Expect.isTrue (SignalStop().TakeUnlessTakenBefore "SIGTEST-never-sent") "a signal no command took: taken"
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

        test "signals: SIGHUP stops a run cleanly (unless ignored, as under nohup); the synthetic experiment's runs stop with a checkpoint too" {
            let output = DataTests.tempDir "hangup"
            let started (shell: string) (args: string list) =
                // bash keeps a signal ignored at its start ignored: the stop signals at their default first, as hostWithDefaultSignals
                let info = ProcessStartInfo("env", RedirectStandardOutput = true, RedirectStandardError = true)
                for a in [ defaultSignals; "bash"; "-c"; shell + " exec dotnet \"$@\""; "croc"; hostDll ] @ args do info.ArgumentList.Add a
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

        test "a stop signal just after a command's work (its last line printed) ends it with its own code, or in one line: never 128+N unsaid" {
            // the command's handlers were gone for the runtime's ~0.1 s of shutdown: a finished export ended 143 with no line once
            let dir = DataTests.tempDir "signal-after-done"
            let weights = Path.Combine(dir, "tiny.safetensors")
            writeTinyBackbone weights
            for signal, code in [ "TERM", 143; "INT", 130; "HUP", 129 ] do
                let output = Path.Combine(dir, "m-" + signal)
                let ended, out, err = stoppedWhen [ "export"; "--weights"; weights; "--output"; output ] (fun _ out -> out.Contains "wrote ") "export never finished" 10 signal 30000
                if ended = code then Expect.stringContains err "before it finished" $"SIG{signal} inside the work: said ({out})"
                else Expect.equal ended 0 $"SIG{signal} after the work: its code ({out}{err})"
                Expect.isTrue (File.Exists(output + ".safetensors")) "the export is whole"
            Directory.Delete(dir, true)
        }

        test "the synthetic experiment stopped outside its runs (a probe) ends in one line with the signal's code (it ended silently once)" {
            let experiment = DataTests.tempDir "experiment-probe-stop"
            let trainArgsText = String.Join(" ", [ for name, value in TrainingTests.tinyPairs "x" do if not (List.contains name [ "output"; "data"; "epochs" ]) then yield sprintf "--%s %s" name value ]) + " --max-steps 2"
            // the run's summary line comes after the trainer's handlers are gone; the probe's 1000 epochs outlast the wait
            let code, out, err = stoppedWhen [ "experiment"; "--seeds"; "0"; "--output"; experiment; "--probe-epochs"; "1000"; "--train-args=" + trainArgsText ]
                                             (fun _ out -> Text.RegularExpressions.Regex.IsMatch(out, "(?m)^   2 steps in [0-9]+ s")) "CrOC's run never finished" 300 "INT" 30000
            Expect.equal code 130 (out + err)
            Expect.stringContains err "croc-host experiment: stopped by SIGINT before it finished (exit 130)" "one line says so"
            Expect.isFalse (out.Contains "DINO-only") "stopped before the next run"
            Expect.isFalse (File.Exists(Path.Combine(experiment, "suite.owner"))) "the suite lock's owner file goes with it (it stayed, once)"
            Directory.Delete(experiment, true)
        }

        test "a stop signal while the synthetic scenes are being generated ends the generation: exit 0 at once, the half-built copy removed (train and experiment)" {
            // train: "interrupt: stopping (no step is running)", then the generation went on (for hours at the largest --synthetic-train) once;
            // experiment: it ended with 130 and left the half-built copy until the next start
            let home = DataTests.tempDir "stop-generating"
            let data = Path.Combine(home, "data")
            let sizes = [ "--synthetic-train"; "100000"; "--synthetic-val"; "1"; "--max-steps"; "1" ]
            for command in [ "train" :: "--output" :: Path.Combine(home, "run") :: sizes
                             [ "experiment"; "--seeds"; "0"; "--output"; Path.Combine(home, "experiment"); "--train-args=" + String.Join(" ", sizes) ] ] do
                let info = hostWithDefaultSignals command
                info.Environment.["CROC_DATA_HOME"] <- data
                use p = present (Process.Start info)
                let out, err = p.StandardOutput.ReadToEndAsync(), p.StandardError.ReadToEndAsync()
                let watch = Stopwatch.StartNew()
                while not (Directory.Exists data && Directory.GetDirectories(data, "*.partial").Length > 0) do
                    if watch.Elapsed.TotalSeconds > 120.0 || p.HasExited then failwithf "%s: the generation did not start: %s" command.Head err.Result
                    Threading.Thread.Sleep 50
                Threading.Thread.Sleep 500
                if command.Head = "experiment" then // its --output is locked before the generation: a second suite was refused only after it, once
                    let code, err = crocInShell ":" "" [ "CROC_DATA_HOME", data ] command
                    Expect.equal code 2 err
                    Expect.stringContains err "is in use by another experiment suite (process " "refused at once, naming the first"
                (present (Process.Start("kill", [| "-INT"; string p.Id |]))).WaitForExit()
                let stopped = Stopwatch.StartNew()
                if not (p.WaitForExit 30_000) then
                    p.Kill true
                    failtestf "%s: still generating 30 s after the signal" command.Head
                Expect.equal p.ExitCode 0 (out.Result + err.Result)
                Expect.isLessThan stopped.Elapsed.TotalSeconds 15.0 $"{command.Head}: at once, not after the 100,000 scenes"
                Expect.stringContains out.Result "stopped while generating the synthetic scenes" $"{command.Head}: said"
                Expect.isEmpty (Directory.GetFileSystemEntries data) $"{command.Head}: the half-built copy removed"
                if command.Head = "experiment" then Expect.isFalse (Directory.Exists(Path.Combine(home, "experiment"))) "its --output, made before the generation and left with its lock's files alone, removed"
            Directory.Delete(home, true)
        }

        test "train and experiment stopped by a signal before a trainer's handlers (waiting for a --config FIFO's writer) say so in one line and end as the signal does (silently once)" {
            let dir = DataTests.tempDir "stopped-start"
            let fifo = Path.Combine(dir, "config.json")
            makeFifo fifo
            // the main thread blocked in open(2) until a writer comes: the kernel's wait_for_partner (the
            // runtime's debugger thread waits so on its own pipe from the start; a kernel may add a suffix)
            let waitingForWriter (pid: int) =
                try File.ReadAllText(sprintf "/proc/%d/wchan" pid).StartsWith "wait_for_partner" with :? IOException | :? UnauthorizedAccessException -> false
            for signal, expected in [ "INT", 130; "TERM", 143 ] do
                for command in [ [ "train"; "--config"; fifo; "--output"; Path.Combine(dir, "run") ]
                                 [ "experiment"; "--output"; Path.Combine(dir, "run"); "--train-args=--config " + fifo ] ] do // experiment: silent once
                    let code, out, err = stoppedWhen command (fun pid _ -> waitingForWriter pid) "never waited for the FIFO" 0 signal 30_000
                    Expect.equal code expected (sprintf "SIG%s ends it as the signal does:\n%s%s" signal out err)
                    Expect.stringContains err (sprintf "croc-host %s: stopped by SIG%s before it finished (exit %d)" command.[0] signal expected) "said in one line"
                    Expect.isFalse (Directory.Exists(Path.Combine(dir, "run"))) "no run folder"
            Directory.Delete(dir, true)
        }

        test "an evaluation stopped by a signal (Ctrl-C, SIGTERM, the suite's SIGUSR1) leaves no empty output folder behind, as a failed one does" {
            let dir, voc, weights = vocWithBackbone "stopped-eval" 64 2 5L
            for signal, expected in [ "INT", 130; "TERM", 143; "USR1", 138 ] do // USR1: the real-photo suite's stop
                let made = Path.Combine(dir, "out-" + signal)
                let args = [ "eval-knn"; "--weights"; weights; "--bank"; voc; "--queries"; voc; "--size"; "512"; "--batch"; "2"; "--json"; Path.Combine(made, "sub", "knn.json") ]
                // the folder is made before any work, which takes tens of seconds at 512 px: signalled 1 s into it
                let code, out, err = stoppedWhen args (fun _ _ -> Directory.Exists(Path.Combine(made, "sub"))) "the folder was not made" 1000 signal 120_000
                Expect.equal code expected (sprintf "SIG%s ends it as the signal does:\n%s%s" signal out err)
                Expect.isFalse (Directory.Exists made) (sprintf "SIG%s: the folders it made and left empty are gone (were left once)" signal)
                Expect.stringContains err (sprintf "croc-host eval-knn: stopped by SIG%s before it finished (exit %d)" signal expected) "said in one line (nothing was said once)"
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
                let written = ref false
                Expect.throwsT<StoppedBySignalException> (fun () -> AtomicFile.Write(Path.Combine(dir, "later.json"), fun s -> written.Value <- true; s.Write([| 3uy |]))) "a write begun after the cleanup leaves no temporary file either"
                Expect.isFalse written.Value "and is refused before its content is written: the process is ending"
                Expect.equal (File.ReadAllText target) "the earlier export" "the target as it was"
                Expect.isFalse (File.Exists other) "nothing new at the other target"
                Expect.sequenceEqual (Directory.GetFiles dir |> Array.map Path.GetFileName) [| "a.safetensors" |] "nothing else"
            finally
                AtomicFile.ResumeAfterAbandon()
            Directory.Delete(dir, true)
        }

        test "a suite's jobs do not inherit the MPI launcher's variables (under mpirun -np 1 each job after the first failed MPI_Init as a second copy of rank 0)" {
            let output = DataTests.tempDir "jobs-launcher"
            let job = Evaluation.RealPhotos.HostJob("bench-vit", [| "bench-vit"; "--arch"; "tiny"; "--size"; "32"; "--batch"; "1"; "--repeats"; "1" |], output + ".log")
            // as an mpirun of two would start the suite (refused there); a job that saw it would be refused as a second copy
            let launcher = [ "OMPI_COMM_WORLD_SIZE", "2"; "OMPI_COMM_WORLD_RANK", "0"; "PMIX_RANK", "0" ]
            for name, value in launcher do Environment.SetEnvironmentVariable(name, value)
            try Evaluation.RealPhotos.HostJobs.Run([| job |], 1, ignore)
            finally for name, _ in launcher do Environment.SetEnvironmentVariable(name, null)
            Expect.stringContains (File.ReadAllText(output + ".log")) "ViT-tiny/16" "the job ran as one process"
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

        test "the real-photo suite stopped by SIGHUP or Ctrl-\\ passes the stop to its jobs and ends 0 in one line (it died at once with 129, its jobs training on as orphans, once); a second suite into its --output meanwhile is refused; the jobs of a suite killed outright stop" {
            for signal in [ "HUP"; "QUIT"; "KILL" ] do
                let root, output, jobsOf, suite = quickRealSuite ()
                // a second suite into the same --output while the first runs (it ran the first one's jobs beside them once)
                let mutable second = None
                let started _ _ =
                    let running = jobsOf().Length > 0
                    if running && second.IsNone then second <- Some(croc 120 suite)
                    running
                try
                    let code, out, err = stoppedWhen suite started "no job started" 500 signal 120000
                    if signal = "KILL" then
                        // no handler runs: the jobs see their suite gone (their parent changed) and stop as it would have asked
                        Expect.equal code 137 "killed"
                        let watch = Stopwatch.StartNew()
                        while jobsOf().Length > 0 && watch.Elapsed.TotalSeconds < 60.0 do Threading.Thread.Sleep 200
                        Expect.isEmpty (jobsOf ()) "the orphaned jobs stopped (they trained on beside the rerun's once)"
                    else
                        Expect.equal code 0 (sprintf "SIG%s: a clean stop (%s%s)" signal out err)
                        Expect.stringContains out ((if signal = "HUP" then "SIGHUP" else "interrupt") + ": asked the running jobs to end") "the signal said when taken (it was silent until its jobs ended, once)"
                        Expect.stringContains out "stopped: the running jobs were asked to end" "said"
                        Expect.isEmpty (jobsOf ()) "no job left running"
                    match second with
                    | Some(secondCode, _, secondErr) ->
                        Expect.equal secondCode 2 secondErr
                        Expect.stringContains secondErr $"--output '{output}' is in use by another experiment suite (process " "refused, naming the holder"
                    | None -> failtest "no second suite was started"
                    if signal <> "KILL" then Expect.isFalse (File.Exists(Path.Combine(output, "suite.owner"))) "the owner file goes with the suite"
                finally
                    for job in jobsOf () do try job.Kill true with _ -> () // a failed check leaves no job training on beside the next tests
                Directory.Delete(root, true)
                Directory.Delete(output, true)
        }

        test "the real-photo suite's stop signal sent again ends the suite at once with the signal's code, its jobs not yet ended (the second was taken as the first, once)" {
            let root, output, jobsOf, suite = quickRealSuite ()
            let mutable held = [||]
            // its jobs held (SIGSTOP): only the second SIGHUP can end the suite
            let firstTaken (pid: int) (out: string) =
                if held.Length = 0 && jobsOf().Length > 0 then
                    held <- jobsOf ()
                    for job in held do (Process.Start("kill", [| "-STOP"; string job.Id |])).WaitForExit()
                    (Process.Start("kill", [| "-HUP"; string pid |])).WaitForExit()
                out.Contains "SIGHUP: asked the running jobs to end"
            try
                let code, out, err = stoppedWhen suite firstTaken "the first SIGHUP taken" 0 "HUP" 20000
                Expect.equal code 129 (sprintf "ended by the second SIGHUP (%s%s)" out err)
            finally
                for job in jobsOf () do try job.Kill true with _ -> ()
            Directory.Delete(root, true)
            Directory.Delete(output, true)
        }

        test "a job whose suite stopped it and then died (a Ctrl-C, then a kill -9 of the suite) ends after its checkpoint: its watch does not send the stop again (a second SIGUSR1 ends a training job at once, without its checkpoint)" {
            let output = DataTests.tempDir "watch-after-stop"
            use suite = Process.Start("sleep", "600") // the suite: not the job's parent, so watched by its existence
            // steps of about a second: the job is still in its last step when its watch sees the suite gone
            let job, lines, err = startWatchedJob output [ "--batch"; "16"; "--image-size"; "96"; "--depth"; "4" ] suite
            use _ = job
            let waitFor (start: string) =
                let watch = Stopwatch.StartNew()
                while not (Seq.exists (fun (l: string) -> l.StartsWith start) lines) do
                    if watch.Elapsed.TotalSeconds > 120.0 || job.HasExited then job.Kill true; failwithf "no '%s' line: %s" start err.Result
                    Threading.Thread.Sleep 10
            try
                waitFor "step 2/" // a step has just begun
                (Process.Start("kill", [| "-USR1"; string job.Id |])).WaitForExit() // the suite's stop
                waitFor "SIGUSR1: finishing the current step"
                // then the suite is gone, while the job is held: once it goes on, its watch's next look (every 0.5 s) comes at
                // once, well inside its step (it came after the job had ended now and then, and the test passed without the fix)
                let send (signal: string) = (Process.Start("kill", [| signal; string job.Id |])).WaitForExit()
                send "-STOP"
                suite.Kill()
                suite.WaitForExit()
                Threading.Thread.Sleep 1000
                send "-CONT"
                Expect.isTrue (job.WaitForExit 120000) "the job ended"
                job.WaitForExit()
                Expect.equal job.ExitCode 0 (sprintf "a clean stop, not 138 (a second SIGUSR1): %s" err.Result)
                Expect.exists lines (fun l -> l.StartsWith "stopped at step") "after its checkpoint"
            finally
                if not job.HasExited then
                    (Process.Start("kill", [| "-CONT"; string job.Id |])).WaitForExit()
                    job.Kill true
                if not suite.HasExited then suite.Kill()
            Directory.Delete(output, true)
        }

        test "a job whose suite is not its parent (a `dotnet` wrapper forked it) stops after its checkpoint once that suite no longer exists" {
            let output = DataTests.tempDir "watch-gone"
            use suite = Process.Start("sleep", "600") // the suite: not the job's parent, so watched by its existence
            let job, lines, err = startWatchedJob output [] suite
            use _ = job
            try
                let watch = Stopwatch.StartNew()
                while not (Seq.exists (fun (l: string) -> l.StartsWith "step 1/") lines) do
                    if watch.Elapsed.TotalSeconds > 120.0 || job.HasExited then failwithf "no first step: %s" err.Result
                    Threading.Thread.Sleep 10
                suite.Kill()
                suite.WaitForExit()
                Expect.isTrue (job.WaitForExit 60000) "the job ended once its suite was gone"
                job.WaitForExit()
                Expect.equal job.ExitCode 0 (sprintf "a clean stop: %s" err.Result)
                Expect.exists lines (fun l -> l.StartsWith "stopped at step") "after its checkpoint"
            finally
                if not job.HasExited then job.Kill true
                if not suite.HasExited then suite.Kill()
            Directory.Delete(output, true)
        }

        test "a failed job is quoted by its failure line, from its last run's lines only (its last five lines were 700-900 characters of step lines before the reason, once)" {
            let dir = DataTests.tempDir "job-log"
            let log = Path.Combine(dir, "job.log")
            let steps n = [ for i in 1 .. n -> sprintf "step %d/100 loss 9.0000 (img 4.5, obj 4.5) objects/img 11.0 K* 3.70 H(t) 1.80 lr 1.00E-004 9.9 img/s ETA 00:01:00" i ]
            let write (lines: string list) = File.WriteAllLines(log, lines)
            Expect.equal (Evaluation.RealPhotos.JobLog.Ending log) "" "no log"
            let header = Evaluation.RealPhotos.JobLog.Header [ "train"; "--output"; "x" ]
            write ([ header; "croc-host train, commit abc, 2026-12-07 10:00:00Z, 1 process(es), 2 threads each" ] @ steps 7 @ [ "croc-host train: No space left on device (disk full)"; "" ])
            Expect.equal (Evaluation.RealPhotos.JobLog.Ending log) "croc-host train: No space left on device (disk full)" "the failure line alone, not train's header line"
            write ([ header; "croc-host [1]: no word from rank 0 for 600 s; exiting (code 3)"; "croc-host train [rank 1]: SIGTERM: finishing" ])
            Expect.equal (Evaluation.RealPhotos.JobLog.Ending log) "croc-host [1]: no word from rank 0 for 600 s; exiting (code 3)" "a rank's watchdog line; not a rank's warning"
            // a rerun appends: the first run's failure is not the second's, which died without a line (a native abort)
            write ([ header; "croc-host eval-seg: it diverged at lr 1E+30"; header ] @ steps 7 @ [ "Fatal error. 0xC0000005" ])
            Expect.equal (Evaluation.RealPhotos.JobLog.Ending log) (String.Join("\n  ", steps 7 |> List.skip 3) + "\n  Fatal error. 0xC0000005") "the last run's last five lines"
            write ([ header; "croc-host eval-seg: it diverged at lr 1E+30"; header; "only line" ])
            Expect.equal (Evaluation.RealPhotos.JobLog.Ending log) "only line" "never an earlier run's lines"
            Directory.Delete(dir, true)
        }

        test "a job log's ending is the last failure line of its last run, of a command whose name has a hyphen too (eval-seg, bench-data)" {
            let dir = DataTests.tempDir "job-log-last"
            let log = Path.Combine(dir, "job.log")
            let header = Evaluation.RealPhotos.JobLog.Header [ "eval-seg"; "--weights"; "w.safetensors" ]
            File.WriteAllLines(log, [ header; "croc-host eval-seg: 2 images of the split are unreadable"; "probe (seed 0) epoch 1/10: loss 2.0000"
                                      "croc-host eval-seg: it diverged at --lr 1E+30; use a smaller --lr"; "a"; "b"; "c"; "d"; "e" ])
            Expect.equal (Evaluation.RealPhotos.JobLog.Ending log) "croc-host eval-seg: it diverged at --lr 1E+30; use a smaller --lr" "the last failure line, not the first one nor the last five lines"
            Directory.Delete(dir, true)
        }

        test "a stop signal is taken once per kind (its second coming has its default action), and one a command took is known process-wide: after the command its next is the second" {
            let stop = SignalStop()
            Expect.isTrue (stop.Take "test-signal-a") "the first is taken"
            Expect.isTrue stop.Requested "and the stop requested"
            Expect.isFalse (stop.Take "test-signal-a") "the second is not"
            Expect.isTrue (stop.Take "test-signal-b") "another kind's first is"
            Expect.isTrue (SignalStop.TakenInProcess "test-signal-a") "known in the whole process"
            Expect.isFalse (SignalStop().TakeUnlessTakenBefore "test-signal-a") "the post-work handlers leave a signal the command took to its default action"
            Expect.isTrue (SignalStop().TakeUnlessTakenBefore "test-signal-c") "and take one it did not"
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

        test "a job that fails with exit 1 ends the job runner with exit 1 and its failure line, and a rerun appends to its log; a training job's step lines, and only those, are echoed" {
            let dir, voc, weights = vocWithBackbone "jobs-log" 4 2 3L
            let log = Path.Combine(dir, "diverged.log")
            let diverging = Evaluation.RealPhotos.HostJob("diverged", [| "eval-seg"; "--weights"; weights; "--data"; voc; "--size"; "32"; "--epochs"; "3"; "--batch"; "1"; "--lr"; "1e30" |], log)
            for _ in 1 .. 2 do
                let e = thrown<exn> (fun () -> Evaluation.RealPhotos.HostJobs.Run([| diverging |], 1, Action<string>(ignore))) "the job fails"
                Expect.equal (ExitCodes.For e) 1 "a failure, not bad input (exit 2)"
                Expect.stringContains e.Message "it diverged at lr 1E+30" "its failure line"
            Expect.equal (File.ReadLines log |> Seq.filter (fun l -> l.StartsWith "# croc-host eval-seg") |> Seq.length) 2 "both runs in the log"
            let lines = Collections.Concurrent.ConcurrentQueue<string>()
            let train = Evaluation.RealPhotos.HostJob("train", List.toArray (trainArgs (Path.Combine(dir, "run")) [ "--max-steps"; "2"; "--log-every"; "1" ]), Path.Combine(dir, "train.log"), EchoProgress = true)
            Evaluation.RealPhotos.HostJobs.Run([| train |], 1, Action<string>(lines.Enqueue))
            let echoed = [ for l in lines do if not (l.StartsWith "[train] started" || l.StartsWith "[train] done") then yield l ]
            Expect.isNonEmpty echoed "progress echoed"
            Expect.all echoed (fun l -> l.StartsWith "[train] step ") (String.Join("\n", echoed))
            Directory.Delete(dir, true)
        }

        test "a configuration error that may be one rank's alone (its dataset gives no step) ends every rank at once; one from the options is met by all" {
            let output = DataTests.tempDir "rank-local"
            let config = TrainingTests.tinyConfig output [ "accum", "8" ] // 48 images: 6 batches of 8 per epoch, no step of 8
            let e = thrown<ConfigException> (fun () -> TrainingTests.run config |> ignore) "no optimiser step per epoch"
            Expect.isFalse (TrainCommand.MetByEveryRank e) "this rank's dataset: the others may wait in a collective, so all are aborted"
            Expect.isTrue (TrainCommand.MetByEveryRank(ConfigException "--lr must be in (0, 10]")) "an option's error is every rank's"
            // every rank sees the same mean loss and meets the same agreement checks: none aborts the others
            Expect.isTrue (TrainCommand.MetByEveryRank(DivergedException "non-finite loss at step 3")) "a divergence is every rank's"
            Expect.isTrue (TrainCommand.MetByEveryRank(CrOC.Host.Distributed.RanksDisagreeException "the processes disagree on the setting(s) lr")) "so is a disagreement between the ranks"
            Directory.Delete(output, true)
        }
    ]
