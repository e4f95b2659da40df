module CrOC.Tests.TrainingTests

open System
open System.IO
open System.Text.Json
open Expecto
open TorchSharp
open CrOC.Math
open CrOC.Math.Tensors
open CrOC.Host
open CrOC.Host.CommandLine
open CrOC.Host.Training
open CrOC.Host.Weights
open CrOC.Host.Runtime
open CrOC.Tests.TestUtil

/// A small training set shared by the tests of this module.
let scenes = lazy (DataTests.sceneFolder 48 64 64)

/// A configuration resolved exactly as the command line does (`--name value` pairs).
let configOf (pairs: (string * string) list) =
    TrainConfig.Resolve(ResizeArray [ for name, value in pairs -> struct (name, (value: string | null)) ])

/// The tiny preset shrunk further for tests (a 2-block ViT at 32 px on 48 scenes), as option pairs;
/// later pairs override earlier ones.
let tinyPairs (output: string) =
    [ "data", scenes.Force(); "output", output; "batch", "8"; "workers", "1"; "epochs", "3"; "warmup-epochs", "0"
      "image-size", "32"; "patch", "8"; "depth", "2"; "head-hidden", "64"; "head-bottleneck", "32"
      "out-dim", "256"; "out-dim-c", "128"; "checkpoint-every", "2"; "log-every", "100"; "precision", "fp32" ]

/// The tiny test configuration plus `extra` settings.
let tinyConfig (output: string) (extra: (string * string) list) = configOf (tinyPairs output @ extra)

/// The tiny test configuration's command-line words with `extra` ("--name value" words, flags too)
/// replacing its settings of those names: the command line refuses an option given twice.
let tinyArgs (output: string) (extra: string list) =
    let replaced = set [ for word in extra do if word.StartsWith "--" then yield word.Substring 2 ]
    [ for name, value in tinyPairs output do if not (replaced.Contains name) then yield "--" + name; yield value ] @ extra

let run (config: TrainConfig) =
    let trainer = Trainer(config, ignore)
    trainer.Run(CrOC.Data.ImageSources.Find(config.Data))

let metrics (output: string) =
    File.ReadAllLines(Path.Combine(output, "metrics.jsonl"))
    |> Array.map (fun line -> JsonDocument.Parse(line).RootElement)

let loss (record: JsonElement) = record.GetProperty("loss").GetDouble()

let tensorsOf (checkpoint: string) = let struct (t, _) = Safetensors.Read(checkpoint) in t

let cli (args: string[]) = withStderr (fun () -> Cli.Run args)

/// Runs 2 steps into `output`, then rewrites step 2's checkpoint with finite AdamW moments whose next
/// update overflows the weights (m = 3e38 over √v ≈ |g|); returns that checkpoint's path.
let overflowingAfterStep2 (output: string) (config: TrainConfig) =
    run (tinyConfig output [ "max-steps", "2"; "checkpoint-every", "1" ]) |> ignore
    let state = TrainingState.Fresh(config, CrocSetup.Croc(config))
    let second = Path.Combine(Checkpoints.Folder(output), "step-00000002.safetensors")
    Checkpoints.Restore(second, config, state)
    let moments = state.Optimizer.Moments |> Seq.find (fun kv -> kv.Key.Contains "qkv")
    moments.Value.M.fill_((3e38).ToScalar()) |> ignore
    moments.Value.V.zero_() |> ignore
    Checkpoints.Save(output, config, state, 10) |> ignore
    second

let tests =
    testSequenced <| testList "Training" [
        test "one step changes every trainable student tensor, keeps frozen last layers in epoch 0, teacher = EMA, centres move" {
            use _ = torch.NewDisposeScope()
            let output = DataTests.tempDir "one-step"
            // A large step and a low momentum: the teacher moves by half the student's step (≈ 0.016
            // here), far above float rounding, so a wrong or missing EMA cannot hide in the tolerance.
            let config = tinyConfig output [ "max-steps", "1"; "lr", "1"; "momentum-teacher", "0.5" ]
            let summary = run config
            let after = tensorsOf (present summary.LastCheckpoint)
            let before = TrainingState.Fresh(config, CrocSetup.Croc(config))
            let momentum = Schedules.cosineAt (let struct (_, _, m) = CrocSetup.Schedules(config, 6) in m) 0
            Expect.equal momentum 0.5 "the momentum at step 0 is --momentum-teacher"
            for name, initial in Network.named before.Model.Student do
                let student = after.["student." + name]
                let moved = maxAbsDiff student initial > 0.0
                if name.Contains "last_layer" then Expect.isFalse moved (sprintf "%s is frozen in epoch 0" name)
                elif initial.requires_grad then Expect.isTrue moved (sprintf "%s was updated" name)
                let expectedTeacher = initial * momentum + student * (1.0 - momentum)
                Expect.isLessThan (maxAbsDiff after.["teacher." + name] expectedTeacher) 1e-6 (sprintf "teacher %s = m·θ_t + (1 − m)·θ_s" name)
                if moved then Expect.isGreaterThan (maxAbsDiff after.["teacher." + name] initial) 1e-3 (sprintf "teacher %s moved well beyond the tolerance" name)
            Expect.isGreaterThan (toFloat (after.["centre"].abs().sum())) 0.0 "image centre updated"
            Expect.isGreaterThan (toFloat (after.["centre_c"].abs().sum())) 0.0 "object centre updated"
            Directory.Delete(output, true)
        }

        test "fixed object shapes train as the dynamic ones: the same losses, object counts and weights up to float rounding" {
            use _ = torch.NewDisposeScope()
            let dynamic, fixedShapes = DataTests.tempDir "shapes-dynamic", DataTests.tempDir "shapes-fixed"
            let a = run (tinyConfig dynamic [ "max-steps", "4"; "freeze-last-layer", "0" ])
            let b = run (tinyConfig fixedShapes [ "max-steps", "4"; "freeze-last-layer", "0"; "object-shapes", "fixed" ])
            let ma, mb = metrics dynamic, metrics fixedShapes
            Expect.equal mb.Length 4 "four steps"
            for i in 0 .. 3 do
                let value (m: JsonElement[]) (name: string) = m.[i].GetProperty(name).GetDouble()
                Expect.isGreaterThan (value ma "objects_per_image") 0.0 (sprintf "step %d has objects" (i + 1))
                Expect.equal (value mb "objects_per_image") (value ma "objects_per_image") (sprintf "objects of step %d" (i + 1))
                for name in [ "loss"; "loss_obj"; "mean_k_star" ] do
                    Expect.floatClose { absolute = 1e-5; relative = 1e-5 } (value mb name) (value ma name) (sprintf "%s of step %d" name (i + 1))
            let ta, tb = tensorsOf (present a.LastCheckpoint), tensorsOf (present b.LastCheckpoint)
            // The key bias's gradient is zero in exact arithmetic (the softmax over keys ignores a shift
            // q·b_k common to all of them), so AdamW turns its rounding noise into steps of about ±lr:
            // two orders of rounding may differ there by up to 2·Σ lr (seen: 1.0e-4 on Zen 4), and
            // elsewhere stay within 1e-4.
            let rates = ma |> Array.sumBy (fun m -> m.GetProperty("lr").GetDouble())
            for KeyValue(name, t) in ta do
                if name.EndsWith "attn.qkv.bias" then
                    let third = t.shape.[0] / 3L
                    for part, start, tolerance in [ "query", 0L, 1e-4; "key", third, 2.0 * rates; "value", 2L * third, 1e-4 ] do
                        Expect.isLessThan (maxAbsDiff (tb.[name].narrow(0, start, third)) (t.narrow(0, start, third))) tolerance (sprintf "%s (%s part) after 4 steps" name part)
                else Expect.isLessThan (maxAbsDiff tb.[name] t) 1e-4 (sprintf "%s after 4 steps" name)
            Directory.Delete(dynamic, true)
            Directory.Delete(fixedShapes, true)
        }

        test "without the freeze, the last layers move in the first step" {
            use _ = torch.NewDisposeScope()
            let output = DataTests.tempDir "no-freeze"
            let config = tinyConfig output [ "max-steps", "1"; "freeze-last-layer", "0" ]
            let after = tensorsOf (present (run config).LastCheckpoint)
            let before = TrainingState.Fresh(config, CrocSetup.Croc(config))
            let v = before.Model.Student.Head.LastLayer.V
            Expect.isGreaterThan (maxAbsDiff after.["student.head.last_layer.weight_v"] v) 0.0 "last_layer moved"
            Directory.Delete(output, true)
        }

        test "--alpha 0 (image-level loss only) says so in its progress lines instead of a K* of NaN" {
            let output = DataTests.tempDir "alpha-zero"
            let lines = ResizeArray<string>()
            let config = tinyConfig output [ "max-steps", "2"; "log-every", "1"; "alpha", "0" ]
            let trainer = Trainer(config, (fun line -> lines.Add line))
            trainer.Run(CrOC.Data.ImageSources.Find(config.Data)) |> ignore
            let steps = lines |> Seq.filter (fun l -> l.StartsWith "step ") |> List.ofSeq
            Expect.hasLength steps 2 "a line per step"
            for line in steps do
                Expect.stringContains line "(image-level only: --alpha 0)" line
                Expect.isFalse (line.Contains "NaN") line // "K* NaN" once
            Directory.Delete(output, true)
        }

        test "a fresh state holds its own tensors only: no initialisation leftover waits for the GC (live_tensors fell from 572 to 254 after the first steps once)" {
            let config = tinyConfig (DataTests.tempDir "fresh-live") []
            let croc = CrocSetup.Croc config
            let before = liveTensors ()
            use state = TrainingState.Fresh(config, croc)
            let own = Seq.length state.Student + Seq.length state.Teacher + 2 // and the centres
            Expect.equal (torch.Tensor.TotalCount - before) (int64 own) "the networks' views and the centres"
            Directory.Delete(config.Output, true)
        }

        test "a run leaves no tensor behind, nor does loading a backbone keep its file's (the synthetic experiment carried each run's state into the next; evaluations held the whole checkpoint)" {
            let dir = DataTests.tempDir "run-live"
            let config = tinyConfig dir [ "max-steps", "2" ]
            run config |> ignore // the synthetic set and the JIT, before the count
            let before = liveTensors ()
            let summary = run (tinyConfig dir [ "max-steps", "4" ])
            Expect.equal summary.StepsRun 2L "resumed for two more steps"
            Expect.equal (torch.Tensor.TotalCount - before) 0L "the state, its moments and the restored file's tensors all freed"
            let before = liveTensors ()
            let loaded = BackboneLoader.Load(present summary.LastCheckpoint)
            Expect.equal (torch.Tensor.TotalCount - before) (int64 (Seq.length (Vit.named loaded.Params))) "the backbone's own tensors only"
            for _, t in Vit.named loaded.Params do t.Dispose()
            Directory.Delete(dir, true)
        }

        test "restoring a checkpoint keeps no tensor of the file: the state's own centres are replaced, AdamW holds the moments until its arenas" {
            let dir = DataTests.tempDir "restore-live"
            let config = tinyConfig dir [ "max-steps", "2" ]
            let checkpoint = present (run config).LastCheckpoint
            use _ = torch.NewDisposeScope()
            let state = TrainingState.Fresh(config, CrocSetup.Croc config)
            let before = liveTensors ()
            Checkpoints.Restore(checkpoint, config, state)
            let moments = state.Optimizer.Moments.Count
            Expect.isGreaterThan moments 0 "moments restored"
            // a checkpoint's worth (both networks, centres, moments) stayed until the GC ran once
            Expect.equal (torch.Tensor.TotalCount - before) (2L * int64 moments) "only the restored moments are new"
            Directory.Delete(dir, true)
        }

        test "interrupt and resume continues exactly as a run that never stopped; live tensors stay flat" {
            use _ = torch.NewDisposeScope()
            let straight = DataTests.tempDir "straight"
            let resumed = DataTests.tempDir "resumed"
            let whole = run (tinyConfig straight [ "max-steps", "8" ])
            run (tinyConfig resumed [ "max-steps", "3" ]) |> ignore
            // A run that died after step 3 without a checkpoint at 3 would have left a line for
            // step 3 past the checkpoint of step 2: simulate it by dropping that checkpoint.
            File.Delete(Path.Combine(Checkpoints.Folder(resumed), "step-00000003.safetensors"))
            let second = run (tinyConfig resumed [ "max-steps", "8" ])
            Expect.equal second.Steps 8L "resumed to step 8"
            let record = JsonDocument.Parse(File.ReadAllText(Path.Combine(resumed, "run.json"))).RootElement
            let starts = [ for s in record.GetProperty("starts").EnumerateArray() -> s.GetProperty("commit").GetString() ]
            Expect.equal starts [ GitInfo.Commit; GitInfo.Commit ] "run.json lists both starts with their commits"
            Expect.equal (record.GetProperty("commit").GetString()) GitInfo.Commit "and names the latest start's commit"
            let a, b = metrics straight, metrics resumed
            Expect.equal b.Length 8 "one metrics line per step across both runs"
            // Bit for bit (one process, one thread count, the same kernels): the teacher moves about 1e-6
            // a step here, so the old tolerance of 1e-6 hid a schedule or moment restarted at the resume.
            for i in 0 .. 7 do
                Expect.equal (loss b.[i]) (loss a.[i]) (sprintf "loss of step %d" (i + 1))
            let final1, final2 = tensorsOf (present whole.LastCheckpoint), tensorsOf (present second.LastCheckpoint)
            WeightsTests.bitIdentical final1 final2
            let live = a |> Array.map (fun r -> r.GetProperty("live_tensors").GetDouble())
            // No growth from the first step on: AdamW's arenas hold every moment from its first step, and
            // initialisation leaves nothing for the GC. (The count may drop when the GC finalises
            // garbage of earlier tests.)
            Expect.isLessThanOrEqual (Array.max live - live.[0]) 0.0 (sprintf "no leak per step: %A" live)
            Directory.Delete(straight, true)
            Directory.Delete(resumed, true)
        }

        test "schedules longer than an int counts are refused, not wrapped round to a short schedule" {
            let config = configOf [ "epochs", "1000000" ]
            let e = Expect.throwsC (fun () -> CrocSetup.Schedules(config, 4295) |> ignore) id
            Expect.stringContains e.Message "lower --epochs" "says what to do"
            let struct (_, _, momentum) = CrocSetup.Schedules(config, 2000)
            Expect.equal momentum.TotalIters 2_000_000_000 "2·10⁹ steps still fit"
        }

        test "metrics.jsonl keeps every value exactly: a warm-up lr of 4.2e-10 is not rounded to 0" {
            let output = DataTests.tempDir "metrics-exact"
            use log = new MetricsLog(output, 0L, false)
            log.Write(1L, readOnlyDict [ "lr", 4.2e-10; "loss", 1.0 / 3.0 ])
            // read while the log is open: each record is on disk once written (a run killed later keeps it)
            let record = JsonDocument.Parse(File.ReadAllLines(Path.Combine(output, "metrics.jsonl")).[0]).RootElement
            Expect.equal (record.GetProperty("lr").GetDouble()) 4.2e-10 "lr"
            Expect.equal (record.GetProperty("loss").GetDouble()) (1.0 / 3.0) "loss, to the last bit"
            log.Dispose()
            Directory.Delete(output, true)
        }

        test "a metrics line that is no step's record is dropped on resume and adds no training time: a step or seconds as text, no object, a key escaping a lone surrogate, a torn line (each an internal error once); seconds out of range add nothing" {
            let output = DataTests.tempDir "metrics-foreign"
            let path = Path.Combine(output, "metrics.jsonl")
            File.WriteAllText(path, "{\"step\":1,\"step_s\":2.0}\n{\"step\":\"2\",\"step_s\":5.0}\n{\"step\":2,\"step_s\":\"1 s\"}\n[3]\n{\"step\":2,\"\\ud800\":1}\n{\"step\":3,\"step_s\":1.5}\n{\"step\":3,\"step_s\":1e308}\n{\"step\":3,\"step_s\":1e308}\n{\"step\":4,\"st")
            Expect.equal (MetricsLog.TrainingSeconds output) 3.5 "steps 1 and 3's seconds; a step as text, seconds as text, no object, a lone surrogate, 1e308 (twice: ∞) and a torn line add nothing"
            let said = ResizeArray<string>()
            do
                use _ = new MetricsLog(output, 3L, false, Action<string>(said.Add))
                ()
            Expect.equal (File.ReadAllLines path) [| "{\"step\":1,\"step_s\":2.0}"; "{\"step\":2,\"step_s\":\"1 s\"}"; "{\"step\":3,\"step_s\":1.5}"; "{\"step\":3,\"step_s\":1e308}"; "{\"step\":3,\"step_s\":1e308}" |] "the records of steps 1 to 3 kept, the others dropped"
            Expect.sequenceEqual said [ "metrics.jsonl: dropped 4 lines that are no step's record" ] "said"
            // every checkpoint gone: the run starts over and its records go, said (without a word once)
            said.Clear()
            do
                use _ = new MetricsLog(output, 0L, false, Action<string>(said.Add))
                ()
            Expect.isEmpty (File.ReadAllLines path) "all dropped"
            Expect.sequenceEqual said [ "metrics.jsonl: dropped 5 records of steps after step 0 (no checkpoint to resume from: the run starts over)" ] "said"
            Directory.Delete(output, true)
        }

        test "a run's training time is read from a regular metrics.jsonl only: a FIFO there is refused, not waited for (File.ReadLines waited for a writer), a device refused, not read without end" {
            let output = DataTests.tempDir "metrics-not-regular"
            let path = Path.Combine(output, "metrics.jsonl")
            for make, says in [ (fun () -> makeFifo path), "is no regular file"
                                (fun () -> File.CreateSymbolicLink(path, "/dev/zero") |> ignore), "reads past its length"
                                // a folder is there, not missing, and the refusal gives the system's reason
                                (fun () -> Directory.CreateDirectory path |> ignore), "(Is a directory)" ] do
                make ()
                let reading = Threading.Tasks.Task.Run(fun () -> MetricsLog.TrainingSeconds output)
                let finished = try reading.Wait(TimeSpan.FromSeconds 20.0) with :? AggregateException -> true
                Expect.isTrue finished (says + ": refused at once, not waited for")
                let e = present (present reading.Exception).InnerException
                Expect.isTrue (e :? CrOC.Host.CommandLine.OutputException) (sprintf "%s: a refusal of the output, exit 2 (%O)" says e)
                Expect.stringContains e.Message says "says why"
                if Directory.Exists path then Directory.Delete path else File.Delete path
            // no file at all is said as such, not as "no regular file (a FIFO or a socket?)"
            let e = Expect.throwsC (fun () -> MetricsLog.TrainingSeconds output |> ignore) id
            Expect.isTrue (e :? FileNotFoundException) (string e)
            Directory.Delete(output, true)
        }

        test "a resume tells TensorBoard to drop the redone steps: a SessionLog START at the resumed step + 1, between the two starts' events files" {
            let output = DataTests.tempDir "tensorboard-restart"
            let events () = Directory.GetFiles(Path.Combine(output, "tensorboard")) |> Array.sort |> Array.map (Path.GetFileName >> present)
            Expect.equal (TfRecords.MaskedCrc(ReadOnlySpan<byte>(BitConverter.GetBytes 24UL))) 0x224b7fa3u "CRC-32C, masked, as TorchSharp's own first record"
            do
                use first = new MetricsLog(output, 0L)
                for step in 1L .. 3L do first.Write(step, readOnlyDict [ "loss", 1.0 ])
            Expect.equal (events ()).Length 1 "a fresh run: its writer's file only"
            use second = new MetricsLog(output, 1L)
            second.Write(2L, readOnlyDict [ "loss", 0.5 ])
            let files = events ()
            Expect.equal files.Length 3 "the first start's, the marker, the second start's"
            Expect.stringEnds files.[1] ".restart" "the marker sorts between them"
            // TFRecords: length, masked CRC of it, data, masked CRC of the data
            let recordsOf file =
                let bytes = File.ReadAllBytes(Path.Combine(output, "tensorboard", file))
                let rec records at =
                    if at >= bytes.Length then [] else
                    let length = int (BitConverter.ToUInt64(bytes, at))
                    Expect.equal (BitConverter.ToUInt32(bytes, at + 8)) (TfRecords.MaskedCrc(ReadOnlySpan<byte>(bytes, at, 8))) "length CRC"
                    let data = bytes.[at + 12 .. at + 12 + length - 1]
                    Expect.equal (BitConverter.ToUInt32(bytes, at + 12 + length)) (TfRecords.MaskedCrc(ReadOnlySpan<byte>(data))) "data CRC"
                    data :: records (at + 16 + length)
                records 0
            match recordsOf files.[1] with
            | [ version; start ] ->
                Expect.sequenceEqual version.[9 ..] (Array.append [| 0x10uy; 0uy; 0x1Auy; 13uy |] "brain.Event:2"B) "step 0, file_version"
                Expect.sequenceEqual start.[9 ..] [| 0x10uy; 2uy; 0x3Auy; 2uy; 0x08uy; 1uy |] "step 2, session_log { status: START }"
            | other -> failtestf "%d records" other.Length
            // the writer's own file: wall times in Unix seconds (its file_version's were .NET ticks, 6e17, once), one event per step
            let unixNow = (DateTime.UtcNow - DateTime.UnixEpoch).TotalSeconds
            match recordsOf files.[2] with
            | [ version; step ] ->
                for event in [ version; step ] do
                    let wall = BitConverter.ToDouble(event, 1)
                    Expect.isTrue (wall > unixNow - 600.0 && wall <= unixNow + 1.0) (sprintf "wall time %g in Unix seconds" wall)
                Expect.sequenceEqual version.[9 ..] (Array.append [| 0x10uy; 0uy; 0x1Auy; 13uy |] "brain.Event:2"B) "file_version"
                let tag = "train/loss"B
                let value = Array.concat [ [| 0x0Auy; byte tag.Length |]; tag; [| 0x15uy |]; BitConverter.GetBytes 0.5f ]
                Expect.sequenceEqual step.[9 ..] (Array.concat [ [| 0x10uy; 2uy; 0x2Auy; byte (value.Length + 2); 0x0Auy; byte value.Length |]; value ]) "step 2, summary { value { tag: train/loss, simple_value: 0.5 } }"
            | other -> failtestf "%d records in the writer's file" other.Length
            Directory.Delete(output, true)
        }

        test "a truncated checkpoint is refused and the previous good one is used; a crash while saving keeps the old file" {
            use _ = torch.NewDisposeScope()
            let output = DataTests.tempDir "corrupt"
            let config = tinyConfig output [ "max-steps", "4" ]
            run config |> ignore
            let files = Checkpoints.List(output)
            Expect.equal (files |> Seq.map Path.GetFileName |> Seq.toList) [ "step-00000002.safetensors"; "step-00000004.safetensors" ] "checkpoints every 2 steps"
            let newest = files.[1]
            let bytes = File.ReadAllBytes newest
            let cut = Random(3).Next(bytes.Length / 4, bytes.Length - 1)
            File.WriteAllBytes(newest, bytes.[.. cut])
            let reports = Collections.Generic.List<string>()
            let state = TrainingState.Fresh(config, CrocSetup.Croc(config))
            let restored = Checkpoints.TryRestore(output, config, state, Action<string>(reports.Add))
            Expect.equal (Path.GetFileName(present restored)) "step-00000002.safetensors" "fell back to step 2"
            Expect.equal state.Step 2L "state of step 2"
            Expect.exists reports (fun r -> r.Contains "refused" && r.Contains "step-00000004") "the refusal is reported"
            let older = File.ReadAllBytes files.[0]
            Expect.throws (fun () -> AtomicFile.Write(files.[0], fun stream -> stream.Write(older, 0, 100); failwith "crash while saving")) "the save fails"
            Expect.sequenceEqual (File.ReadAllBytes files.[0]) older "previous checkpoint intact"
            Expect.isEmpty (Directory.GetFiles(Checkpoints.Folder(output), "*.tmp")) "no temporary left behind"
            Directory.Delete(output, true)
        }

        test "a non-finite loss names the step it happened at: the one after the checkpoint's" {
            use _ = torch.NewDisposeScope()
            let output = DataTests.tempDir "diverged"
            let config = tinyConfig output [ "max-steps", "4" ]
            use state = TrainingState.Fresh(config, CrocSetup.Croc(config))
            state.Step <- 2L
            state.Model.Centre.fill_((3e38).ToScalar()) |> ignore // a finite centre that overflows the teacher's logits: the next loss is NaN (a NaN centre is refused at the resume)
            Checkpoints.Save(output, config, state, 1) |> ignore
            File.WriteAllText(Path.Combine(output, "config.json"), config.ToJson()) // the run's record beside its checkpoint
            let e = Expect.throwsC (fun () -> run config |> ignore) id
            Expect.stringContains e.Message "non-finite loss at step 3" "the step after the checkpoint's"
            Directory.Delete(output, true)
        }

        test "a checkpoint whose content is wrong is refused and the previous one used: NaN moments, a step other than its name's, AdamW steps beyond the step; a centre of another dtype is converted" {
            use _ = torch.NewDisposeScope()
            let output = DataTests.tempDir "wrong-content"
            let config = tinyConfig output [ "max-steps", "4" ]
            run config |> ignore
            let newest = Path.Combine(Checkpoints.Folder(output), "step-00000004.safetensors")
            let good = File.ReadAllBytes newest
            let restored () =
                let state = TrainingState.Fresh(config, CrocSetup.Croc(config))
                Checkpoints.Restore(newest, config, state)
                state
            let qkv (state: TrainingState) = state.Optimizer.Moments |> Seq.find (fun kv -> kv.Key.Contains "qkv")
            // each change written back as the run writes (a valid file, its checksum right), then resumed
            // `edit` then changes the written file's progress record (adam_steps of 0 are never written: the moment is left out)
            let refusedAfter (world: int) (change: TrainingState -> unit) (edit: Nodes.JsonObject -> unit) (says: string) =
                let state = restored ()
                change state
                let written = Checkpoints.Save(output, config, state, 10, world)
                if written <> newest then File.Move(written, newest, true)
                let struct (tensors, metadata) = CrOC.Host.Weights.Safetensors.Read newest
                let progress = (present (Nodes.JsonNode.Parse metadata.["progress"])).AsObject()
                edit progress
                metadata.["progress"] <- progress.ToJsonString()
                CrOC.Host.Weights.Safetensors.Write(newest, tensors, metadata)
                let reports = Collections.Generic.List<string>()
                let resumed = TrainingState.Fresh(config, CrocSetup.Croc(config))
                let from = Checkpoints.TryRestore(output, config, resumed, Action<string>(reports.Add))
                Expect.equal (Path.GetFileName(present from)) "step-00000002.safetensors" $"fell back to step 2 ({says})"
                Expect.exists reports (fun r -> r.Contains "step-00000004" && r.Contains says) $"the refusal says why: {says}"
                File.WriteAllBytes(newest, good)
            let refusedAs (world: int) (change: TrainingState -> unit) = refusedAfter world change ignore
            let refusedFor = refusedAs 1
            // a record of 0 processes stopped the run ("written by a run of 0 process(es)") instead of falling back
            refusedAs 0 ignore "its progress record has world 0"
            // a NaN first moment was resumed from, and its update's checkpoint became the run's "last good" one
            refusedFor (fun s -> (qkv s).Value.M.view(-1L).[0L].fill_(Double.NaN.ToScalar()) |> ignore) "holds NaN or infinite values"
            refusedFor (fun s -> (qkv s).Value.V.view(-1L).[0L].fill_((-1.0).ToScalar()) |> ignore) "holds negative values (a second moment cannot be)"
            // step 0 in step-4's record restarted the schedules and set aside steps 1-3 as refused
            refusedFor (fun s -> s.Step <- 3L) "its progress record says step 3, its name step 4"
            // 2³¹ − 1 steps overflowed AdamW's bias correction into NaN weights
            refusedFor (fun s -> (qkv s).Value.Steps <- Int32.MaxValue) "outside [1, 4]"
            // the bounds themselves: a moment kept is one of a parameter updated at least once, at most once per step
            refusedAfter 1 ignore (fun progress -> let steps = (present progress.["adam_steps"]).AsObject() in steps.[(Seq.head steps).Key] <- Nodes.JsonValue.Create 0) "= 0, outside [1, 4]"
            refusedFor (fun s -> (qkv s).Value.Steps <- 5) "= 5, outside [1, 4]"
            // a NaN anywhere, not only in the moments: a centre (which overflowed the next step's logits once)
            refusedFor (fun s -> s.Model.Centre.view(-1L).[0L].fill_(Double.NaN.ToScalar()) |> ignore) "'centre' holds NaN or infinite values"
            // an int64 centre ended every resume in an internal error; a float64 one made the losses float64
            for dtype in [ torch.int64; torch.float64 ] do
                let state = restored ()
                state.Model <- { state.Model with Centre = state.Model.Centre.``to``(dtype) }
                Checkpoints.Save(output, config, state, 10) |> ignore
                Expect.equal (restored ()).Model.Centre.dtype torch.float32 $"a {dtype} centre is restored as float32"
            // a second moment of exactly 0 (a gradient that was 0 at every step) is a moment, not a corrupt file
            let state = restored ()
            (qkv state).Value.V.view(-1L).[0L].fill_((0.0).ToScalar()) |> ignore
            Checkpoints.Save(output, config, state, 10) |> ignore
            Expect.equal (restored ()).Step 4L "a zero second moment is restored"
            // the state a run would checkpoint: a student weight made infinite is named (not only the teacher it feeds)
            let state = restored ()
            Expect.isNull (Checkpoints.Unfit state) "a finite state"
            let struct (name, weight) = Seq.head state.Student
            weight.detach().view(-1L).[0L].fill_(Double.PositiveInfinity.ToScalar()) |> ignore
            Expect.equal (Checkpoints.Unfit state) $"'student.{name}' holds NaN or infinite values" "the student's tensor named"
            Directory.Delete(output, true)
        }

        test "a state that turns non-finite after a step of finite loss is not checkpointed: the run stops naming the last good checkpoint" {
            use _ = torch.NewDisposeScope()
            let output = DataTests.tempDir "overflowed"
            let config = tinyConfig output [ "max-steps", "4"; "checkpoint-every", "1" ]
            let second = overflowingAfterStep2 output config
            let e = Expect.throwsC (fun () -> run config |> ignore) id
            Expect.stringContains e.Message "holds NaN or infinite values after step 3: no checkpoint of it is written" "says what and when"
            Expect.stringContains e.Message ("The last good checkpoint is " + second) "names the last good one"
            Expect.isFalse (File.Exists(Path.Combine(Checkpoints.Folder(output), "step-00000003.safetensors"))) "no checkpoint of the overflowed state"
            Directory.Delete(output, true)
        }

        test "a stop after a step that left the state non-finite writes a line, not a checkpoint, and the run ends as a stop" {
            use _ = torch.NewDisposeScope()
            let output = DataTests.tempDir "overflowed-stop"
            let config = tinyConfig output [ "max-steps", "40"; "checkpoint-every", "1000"; "log-every", "1" ]
            let second = overflowingAfterStep2 output config
            let logged = Collections.Generic.List<string>()
            let stop = ref ignore
            let trainer = Trainer(config, Action<string>(fun line -> logged.Add line; if line.StartsWith "step 3/" then stop.Value ()))
            stop.Value <- trainer.RequestStop // asked during step 3: the loop stops after it, with the root-only save
            let summary = trainer.Run(CrOC.Data.ImageSources.Find(config.Data))
            Expect.isTrue (summary.Interrupted && summary.Steps = 3L) $"stopped after step 3 (at {summary.Steps})"
            Expect.exists logged (fun l -> l.Contains "holds NaN or infinite values after step 3: no checkpoint of it is written" && l.Contains("The last good checkpoint is " + second)) $"a line says so: {String.Join('\n', logged)}"
            Expect.isFalse (File.Exists(Path.Combine(Checkpoints.Folder(output), "step-00000003.safetensors"))) "no checkpoint of the overflowed state"
            Expect.equal summary.LastCheckpoint second "the summary names the last good one"
            Directory.Delete(output, true)
        }

        test "a run whose records fail mid-run (train.log or metrics.jsonl: a full or read-only disk) keeps its last step in a checkpoint before it ends" {
            use _ = torch.NewDisposeScope()
            let output = DataTests.tempDir "records-fail"
            let config = tinyConfig output [ "max-steps", "40"; "checkpoint-every", "1000"; "log-every", "1" ]
            let trainer = Trainer(config, Action<string>(fun line -> if line.StartsWith "step 3/" then raise (IOException "No space left on device")))
            let e = Expect.throwsC (fun () -> trainer.Run(CrOC.Data.ImageSources.Find(config.Data)) |> ignore) id
            Expect.equal e.Message "No space left on device" "the records' failure ends the run"
            Expect.isTrue (File.Exists(Path.Combine(Checkpoints.Folder(output), "step-00000003.safetensors"))) "step 3 kept (the steps since the last checkpoint were lost once)"
            Directory.Delete(output, true)
        }

        test "a checkpoint of another architecture is refused with the reason" {
            use _ = torch.NewDisposeScope()
            let output = DataTests.tempDir "mismatch"
            run (tinyConfig output [ "max-steps", "2" ]) |> ignore
            let other = tinyConfig output [ "depth", "3"; "max-steps", "2" ]
            let reports = Collections.Generic.List<string>()
            let restored = Checkpoints.TryRestore(output, other, TrainingState.Fresh(other, CrocSetup.Croc(other)), Action<string>(reports.Add))
            Expect.isNull restored "nothing fits"
            Expect.exists reports (fun r -> r.Contains "depth") "names the mismatch"
            Directory.Delete(output, true)
        }

        test "bench-block times each operation of a block and the attention's forward + backward, in both precisions" {
            for precision in [ "fp32"; "bf16" ] do
                let (code, _), text = withStdout (fun () -> cli [| "bench-block"; "--arch"; "tiny"; "--size"; "32"; "--images"; "2"; "--repeats"; "1"; "--precision"; precision |])
                Expect.equal code 0 precision
                for line in [ "LayerNorm (float32) ×2"; "GELU"; "sum (a block's forward, op by op)"; "attention forward + backward (graph)" ] do
                    Expect.stringContains text line (sprintf "%s: %s" precision line)
                if precision = "bf16" then Expect.stringContains text "softmax (bf16, rows of T)" "the bf16 attention's steps"
                // the operations' rows: name (" ×2" when a block runs it twice), median ms, share %
                let rows = [ for m in Text.RegularExpressions.Regex.Matches(text, @"(?m)^(\S.*?)( ×2)?\s+(\d+\.\d{3})\s+(\d+\.\d)%$") ->
                                (if m.Groups.[2].Success then 2.0 else 1.0), float m.Groups.[3].Value, float m.Groups.[4].Value ]
                Expect.equal (rows |> List.map (fun (uses, _, _) -> uses)) [ 2.0; 2.0; 1.0; 1.0; 1.0; 1.0; 2.0; 1.0; 1.0; 1.0 ] (sprintf "%s: ten operations, three run twice:\n%s" precision text)
                Expect.isFalse (text.Contains "×1") (sprintf "%s: an operation run once has no count" precision)
                let sum = Text.RegularExpressions.Regex.Match(text, @"sum \(a block's forward, op by op\)\s+(\d+\.\d{3})").Groups.[1].Value |> float
                Expect.floatClose { absolute = 0.0075; relative = 0.0 } sum (rows |> List.sumBy (fun (uses, ms, _) -> uses * ms)) (sprintf "%s: the sum counts each operation as often as a block runs it (to 0.001 ms each)" precision)
                Expect.floatClose { absolute = 0.55; relative = 0.0 } (rows |> List.sumBy (fun (_, _, share) -> share)) 100.0 (sprintf "%s: the shares (uses × median over the sum) make 100%%" precision)
        }

        test "bench timings are the median of the timed runs, the warm-ups left out; an even count's median is the mean of the middle two" {
            Expect.equal (Timing.MedianOf [ 5.0; 1.0; 3.0 ]) 3.0 "odd count"
            Expect.equal (Timing.MedianOf [ 4.0; 1.0; 3.0; 2.0 ]) 2.5 "even count"
            let heard = ResizeArray<int * float>()
            let times = Timing.TimedRuns(2, 3, Func<string>(fun () -> ""), Action<int, float, string>(fun i ms _ -> heard.Add((i, ms))))
            Expect.sequenceEqual (Seq.map fst heard) [ 0 .. 4 ] "every run is reported, the warm-ups first"
            Expect.sequenceEqual times (heard |> Seq.filter (fun (i, _) -> i >= 2) |> Seq.map snd) "the times are the three runs after the two warm-ups"
        }

        test "CLI: --help for each command exits 0; bad options exit 2 with a message" {
            for command in [ "train"; "export"; "eval-seg"; "clusters"; "experiment"; "bench"; "bench-clustering"; "bench-vit"; "bench-block"; "bench-data"; "bench-allreduce" ] do
                let code, _ = cli [| command; "--help" |]
                Expect.equal code 0 (sprintf "%s --help" command)
            Expect.equal (fst (cli [| "--help" |])) 0 "croc-host --help"
            let code, message = cli [| "train"; "--no-such-option"; "3" |]
            Expect.equal code 2 "unknown option"
            Expect.stringContains message "unknown option --no-such-option" "says which"
            let code, message = cli [| "train"; "--batch"; "many" |]
            Expect.equal code 2 "bad value"
            Expect.stringContains message "--batch needs an integer" "says why"
            let code, message = cli [| "train"; "--n-centroids-max"; "7" |]
            Expect.equal code 2 "contradictory settings"
            Expect.stringContains message "--n-centroids-max" "names the setting"
            Expect.equal (fst (cli [| "frobnicate" |])) 2 "unknown command"
        }

        test "--device: cpu works, an unknown name and an absent GPU are refused with the reason (exit 2)" {
            Expect.equal (Devices.Resolve "cpu").``type`` DeviceType.CPU "cpu"
            Expect.throwsT<OptionException> (fun () -> Devices.Resolve "gpu" |> ignore) "unknown device: a usage error"
            for args in [ [| "bench"; "--device"; "gpu" |]; [| "eval-knn"; "--device"; "gpu"; "--bank"; "b"; "--queries"; "q"; "--weights"; "w" |] ] do
                let command = args.[0]
                let code, message = cli args
                Expect.equal code 2 $"{command} --device gpu: bad input"
                Expect.stringContains message "--device must be cpu, cuda or cuda:N" $"{command}: the device is what is refused"
                Expect.stringContains message $"Run `croc-host {command} --help`" $"{command}: points at its help, as train does"
            for malformed in [ "cuda:-1"; "cuda:"; "cudax"; "cuda:+1"; "cuda: 1" ] do
                let message = try Devices.Resolve malformed |> ignore; "" with :? OptionException as e -> e.Message
                Expect.stringContains message "must be cpu, cuda or cuda:N" $"{malformed}: the format is named, whether or not CUDA is there"
                let refused = try configOf [ "device", malformed ] |> ignore; "" with :? ConfigException as e -> e.Message
                Expect.stringContains refused "must be cpu, cuda or cuda:N" $"{malformed}: train's config check is the same rule"
            if not (torch.cuda.is_available()) then
                let output = DataTests.tempDir "no-cuda"
                for args in [ [| "train"; "--device"; "cuda"; "--output"; output |]; [| "bench"; "--device"; "cuda:0" |]
                              [| "eval-seg"; "--weights"; "absent.safetensors"; "--device"; "cuda" |] ] do
                    let code, message = cli args
                    Expect.equal code 2 (sprintf "%s: exit code" args.[0])
                    Expect.stringContains message "CUDA is not available" (sprintf "%s: says why" args.[0])
        }

        test "--precision auto resolves to bf16 exactly where bf16 is faster than fp32 (CUDA, AMX, AVX512-BF16 on AMD)" {
            let faster = CpuBf16.OfThisCpu = CpuBf16.Rate.FasterThanFp32
            Expect.equal (configOf []).Precision (if faster then PrecisionChoice.Bf16 else PrecisionChoice.Fp32) "the default"
            // read apart from the code: AMX always means bf16, no bf16 flag at all always fp32
            let flags = IO.File.ReadLines("/proc/cpuinfo") |> Seq.tryFind (fun l -> l.StartsWith "flags") |> Option.defaultValue ""
            if flags.Contains " amx_bf16" then Expect.isTrue faster "an AMX CPU"
            if not (flags.Contains " avx512_bf16" || flags.Contains " amx_bf16") then Expect.isFalse faster "a CPU without bf16 instructions"
            Expect.equal (configOf [ "precision", "auto"; "device", "cuda" ]).Precision PrecisionChoice.Bf16 "CUDA"
            Expect.equal (configOf [ "precision", "fp32" ]).Precision PrecisionChoice.Fp32 "as asked"
            Expect.equal (configOf [ "precision", "BF16" ]).Precision PrecisionChoice.Bf16 "any case"
            Expect.throwsT<OptionException> (fun () -> configOf [ "precision", "1" ] |> ignore) "a number is not a choice"
            Expect.stringContains ((configOf [ "precision", "bf16" ]).ToJson()) "\"precision\": \"bf16\"" "stored as the word"
        }

        test "a CPU's bf16 rate: AMX, or AVX512-BF16 on AMD, outruns fp32; Intel's AVX512-BF16 without AMX does not (an Emerald Rapids guest: bf16 step 4.95 s, fp32 3.07 s); no bf16 flags: emulated" {
            let rate (flags: string) (vendor: string | null) = CpuBf16.Of(Collections.Generic.HashSet<string>(flags.Split ' '), vendor)
            Expect.equal (rate "avx512f avx512_bf16 amx_tile amx_bf16" "GenuineIntel") CpuBf16.Rate.FasterThanFp32 "Sapphire Rapids with AMX"
            Expect.equal (rate "avx512f avx512_bf16 avx512_fp16" "GenuineIntel") CpuBf16.Rate.NoFasterThanFp32 "an Intel CPU whose AMX is hidden, or Cooper Lake"
            Expect.equal (rate "avx512f avx512_bf16" "AuthenticAMD") CpuBf16.Rate.FasterThanFp32 "Zen 4 / Zen 5"
            Expect.equal (rate "avx512f avx512_bf16" null) CpuBf16.Rate.NoFasterThanFp32 "vendor unknown: not assumed faster"
            Expect.equal (rate "avx2 fma" "AuthenticAMD") CpuBf16.Rate.Emulated "Zen 3"
            Expect.equal (rate "avx512f avx512_vnni" "GenuineIntel") CpuBf16.Rate.Emulated "Ice Lake"
            let cpuinfo =
                [ "processor\t: 0"; "vendor_id\t: AuthenticAMD"; "model name\t: AMD EPYC 9R14"
                  "flags\t\t: fpu vme avx512f avx512_bf16 avx512_vnni"; "vmx flags\t: amx_bf16 ept"; ""
                  "processor\t: 1"; "vendor_id\t: GenuineIntel"; "flags\t\t: fpu amx_bf16" ]
            let struct (flags, vendor) = CpuBf16.Describe cpuinfo
            Expect.equal (Set.ofSeq flags) (set [ "fpu"; "vme"; "avx512f"; "avx512_bf16"; "avx512_vnni" ]) "the first CPU's flags, not vmx flags' nor the next CPU's"
            Expect.equal (string vendor) "AuthenticAMD" "the first CPU's vendor"
            Expect.equal (CpuBf16.Of(flags, vendor)) CpuBf16.Rate.FasterThanFp32 "read from the text: Zen 4"
            let struct (none, unknown) = CpuBf16.Describe [ "Processor\t: AArch64"; "Features\t: fp asimd" ]
            Expect.equal (none.Count, isNull unknown) (0, true) "no x86 lines: no flags, no vendor"
            Expect.isTrue (isNull (Precisions.SlowerThanFp32Note CpuBf16.Rate.FasterThanFp32)) "bf16 asked where it is faster: no note"
            for slower in [ CpuBf16.Rate.Emulated; CpuBf16.Rate.NoFasterThanFp32 ] do
                match Precisions.SlowerThanFp32Note slower with
                | null -> failtestf "%A: no note" slower
                | note -> Expect.stringContains note "(auto picks fp32" (sprintf "%A: says what auto does" slower)
        }

        test "--precision auto is bf16 on any CUDA device (cuda:1 too); a CPU's 'vmx flags' line is never read as its flags, wherever it comes" {
            Expect.equal (configOf [ "precision", "auto"; "device", "cuda:1" ]).Precision PrecisionChoice.Bf16 "cuda:1"
            let struct (flags, vendor) = CpuBf16.Describe [ "vmx flags\t: amx_bf16 ept"; "vendor_id\t: GenuineIntel"; "flags\t\t: fpu avx512_bf16" ]
            Expect.equal (Set.ofSeq flags) (set [ "fpu"; "avx512_bf16" ]) "the flags line's, not the vmx flags'"
            Expect.equal (CpuBf16.Of(flags, vendor)) CpuBf16.Rate.NoFasterThanFp32 "so no AMX"
        }

        test "options: --name=value carries a value that starts with --; seed 0 is a seed" {
            let pairs = Arguments.Pairs([| "--train-args=--epochs 16"; "--seeds"; "0,1" |])
            Expect.equal (List.ofSeq pairs) [ struct ("train-args", "--epochs 16"); struct ("seeds", "0,1") ] "the value after =, then the next argument"
            let parsed = OptionSet<Evaluation.ExperimentOptions>.Parse([| "--train-args=--epochs 16"; "--seeds"; "0,1" |])
            Expect.equal (parsed.TrainArgs, parsed.Seeds) ("--epochs 16", [| 0; 1 |]) "typed"
            // Seed 0 is a seed (eval-seg --seed 0 was refused as "not a positive integer").
            Expect.equal (OptionSet<Evaluation.EvalSegOptions>.Parse([| "--weights"; "w"; "--probe-seeds"; "0" |])).ProbeSeeds [| 0 |] "seed 0"
            Expect.throwsT<OptionException> (fun () -> OptionSet<Evaluation.EvalSegOptions>.Parse([| "--weights"; "w"; "--probe-seeds"; "-1" |]) |> ignore) "negative"
            let code, message = cli [| "eval-seg"; "--weights"; "absent.safetensors"; "--probe-seeds"; "0"; "--data"; DataTests.tempDir "no-voc" |]
            Expect.equal code 2 "eval-seg --probe-seeds 0 gets past the options (then misses the weights: bad input)"
            Expect.stringContains message "absent.safetensors: no such file" "and says what is missing"
        }

        test "settings that cannot work are refused, those that do less than they seem are said: temperatures below 0.001, one output, a linear Sinkhorn past float32's exp, drop-path on one block" {
            // a NaN loss from --teacher-temp 1e-39, 'loss 12876628063000985600' from --student-temp 1e-20, a loss of exactly 0 from --out-dim 1 once
            for name, value in [ "teacher-temp", "1e-39"; "student-temp", "1e-20"; "warmup-teacher-temp-c", "0.0009"; "out-dim", "1"; "out-dim-c", "1" ] do
                Expect.throwsT<ConfigException> (fun () -> configOf [ name, value ] |> ignore) (sprintf "--%s %s" name value)
            Expect.equal (configOf [ "teacher-temp", "0.001" ]).TeacherTemp 0.001 "the bound itself"
            Expect.isEmpty (List.ofSeq ((configOf []).Warnings())) "the defaults run as they seem"
            Expect.exists ((configOf [ "sinkhorn-lambda", "200" ]).Warnings()) (fun w -> w.Contains "--sinkhorn-solver log stays finite") "a linear solver past exp's range"
            Expect.isEmpty (List.ofSeq ((configOf [ "sinkhorn-lambda", "200"; "sinkhorn-solver", "log" ]).Warnings())) "the log solver is finite"
            Expect.exists ((configOf [ "depth", "1"; "drop-path", "0.5" ]).Warnings()) (fun w -> w.Contains "drops nothing with --depth 1") "drop-path on one block"
            // a warm-up longer than the run: accepted silently once
            let warm = configOf [ "epochs", "4"; "warmup-epochs", "1"; "warmup-teacher-temp-epochs", "10"; "teacher-temp", "0.07" ]
            Expect.exists (warm.Warnings()) (fun w -> w.Contains "the teacher temperatures end at 0.05 / 0.04, short of --teacher-temp 0.07") (sprintf "a temperature warm-up past the last epoch: %A" (List.ofSeq (warm.Warnings())))
            Expect.isEmpty (List.ofSeq ((configOf [ "epochs", "4"; "warmup-epochs", "1"; "warmup-teacher-temp-epochs", "10" ]).Warnings())) "nothing to warm up: nothing said"
        }

        test "a range's open end is refused and its closed end taken: --lr in (0, 10], --drop-path in [0, 1)" {
            for name, value in [ "lr", "0"; "drop-path", "1" ] do
                Expect.throwsT<ConfigException> (fun () -> configOf [ name, value ] |> ignore) (sprintf "--%s %s" name value)
            Expect.equal (configOf [ "lr", "10"; "drop-path", "0" ] |> fun c -> c.Lr, c.DropPath) (10.0, 0.0) "the closed ends"
        }

        test "the rules between settings hold at their bounds: each accepts its limit and refuses one past it" {
            for limit, past in
                [ [ "n-tokens", "5"; "n-centroids-max", "5" ], [ "n-tokens", "5"; "n-centroids-max", "6" ]
                  [ "n-tokens", "5"; "cluster-k", "5" ], [ "n-tokens", "5"; "cluster-k", "6" ]
                  [ "image-size", "8"; "n-tokens", "2"; "n-centroids-max", "2" ], [ "image-size", "8"; "n-tokens", "3"; "n-centroids-max", "2" ] // two views of one 8 px patch: 2 patches
                  [ "epochs", "4"; "warmup-epochs", "3" ], [ "epochs", "4"; "warmup-epochs", "4" ] ] do
                configOf limit |> ignore
                Expect.throwsT<ConfigException> (fun () -> configOf past |> ignore) (sprintf "%A is refused" past)
        }

        test "a config file sets values and the command line overrides them" {
            let file = Path.Combine(DataTests.tempDir "config", "run.json")
            File.WriteAllText(file, """{ "preset": "official", "batch": 4, "alpha": 0.5 }""")
            let config = configOf [ "config", file; "alpha", "0" ]
            Expect.equal config.Arch Arch.Small "the file's preset"
            Expect.equal config.Batch 4 "from the file"
            Expect.equal config.Alpha 0.0 "command line wins"
            let toml = Path.Combine(present (Path.GetDirectoryName(file)), "run.toml")
            File.WriteAllText(toml, "preset = \"official\"\nbatch = 6\ndata = [\"a\", \"b\"]\nresume = false\n")
            let fromToml = configOf [ "config", toml ]
            Expect.equal (fromToml.Arch, fromToml.Batch, fromToml.Data, fromToml.Resume) (Arch.Small, 6, [| "a"; "b" |], false) "TOML works the same"
            File.WriteAllText(file, """{ "arch": "huge" }""")
            Expect.throwsT<ConfigException> (fun () -> configOf [ "config", file ] |> ignore) "an unknown word in a file is refused"
            File.WriteAllText(toml, "batch = [")
            Expect.throwsT<ConfigException> (fun () -> configOf [ "config", toml ] |> ignore) "a broken file is a clear error"
            // broken JSON is said in our words, with its place (the parser's own text, "… when isFinalBlock is true. LineNumber: 0 …", once)
            for text, says in [ "", "--config '" + file + "': the file is empty"
                                "{\n  \"lr\": 0.1,\n}", "the text stops being JSON at line 3, byte 1"
                                "lr = 0.1", "not a JSON object of options (a name ending in .toml is read as TOML): the text stops being JSON at line 1, byte 1" ] do
                File.WriteAllText(file, text)
                let e = Expect.throwsC (fun () -> configOf [ "config", file ] |> ignore) id
                Expect.isTrue (e :? ConfigException) (string e)
                Expect.stringContains e.Message says (sprintf "%A" text)
                Expect.isFalse (e.Message.Contains "isFinalBlock" || e.Message.Contains "LineNumber") e.Message
            // a list as one comma-separated string, as on the command line
            File.WriteAllText(toml, "data = \"a, b\"\n")
            Expect.sequenceEqual (configOf [ "config", toml ]).Data [| "a"; "b" |] "TOML string list"
            File.WriteAllText(file, """{ "data": "c" }""")
            Expect.sequenceEqual (configOf [ "config", file ]).Data [| "c" |] "JSON string list"
            // a leading ~/ of a path is the home folder, in a config file and after --name= (no shell expands those): a folder named '~' once
            let home = present (Environment.GetEnvironmentVariable "HOME")
            File.WriteAllText(file, """{ "output": "~/runs/x" }""")
            Expect.equal (configOf [ "config", file ]).Output (Path.Combine(home, "runs/x")) "config file"
            Expect.equal (configOf [ "output", "~/runs/y" ]).Output (Path.Combine(home, "runs/y")) "--output=~/runs/y"
            let inHome = Path.Combine(home, sprintf "croc-config-%s.json" (Guid.NewGuid().ToString("N")))
            File.WriteAllText(inHome, """{ "batch": 3 }""")
            Expect.equal (configOf [ "config", "~/" + Path.GetFileName inHome ]).Batch 3 "--config=~/file"
            File.Delete inHome
            Expect.throwsC (fun () -> configOf [ "config", "" ] |> ignore) (fun e -> Expect.stringContains e.Message "--config needs a value" "not \"'' not found\"")
            let export = OptionSet<ExportOptions>.Parse([| "--weights=~/w.pth"; "--output=~/e" |])
            Expect.equal (export.Weights, present export.Output) (Path.Combine(home, "w.pth"), Path.Combine(home, "e")) "any path option"
            let empty = Expect.throwsC (fun () -> OptionSet<ExportOptions>.Parse([| "--weights=" |]) |> ignore)
            empty (fun e -> Expect.stringContains e.Message "--weights needs a value (FILE), got ''" "an empty path is a missing value, not a missing option")
            File.WriteAllText(file, """{ "data": " , " }""")
            Expect.throwsT<ConfigException> (fun () -> configOf [ "config", file ] |> ignore) "an empty list string is refused (not the synthetic scenes)"
            File.WriteAllText(file, """{ "data": "a,,b" }""")
            let message = try configOf [ "config", file ] |> ignore; "accepted" with :? ConfigException as e -> e.Message
            Expect.stringContains message "'data' has an empty item (number 2 of 3)" "an empty item is refused (read as a,b once)"
            // a value of the wrong type names the setting and what it takes, not .NET's types
            File.WriteAllText(file, """{ "batch": "2" }""")
            let message = try configOf [ "config", file ] |> ignore; "accepted" with :? ConfigException as e -> e.Message
            Expect.stringContains message "'batch' must be an integer, got \"2\"" "refused, saying what batch takes"
            Expect.isFalse (message.Contains "System.") "no .NET type names"
            File.WriteAllText(file, """{ "batch": 3000000000 }""")
            let message = try configOf [ "config", file ] |> ignore; "accepted" with :? ConfigException as e -> e.Message
            Expect.stringContains message "'batch' must be an integer in [1, 65536], got 3000000000" "an integer beyond the range names the option's range"
            File.WriteAllText(file, """{ "epochs": 2.5 }""")
            let message = try configOf [ "config", file ] |> ignore; "accepted" with :? ConfigException as e -> e.Message
            Expect.stringContains message "'epochs' must be an integer in [1, 1000000], got 2.5" "the option's range, not int's ([-2147483648, 2147483647] once)"
            // a value out of its range names the file, unless the command line replaces it
            File.WriteAllText(file, """{ "lr": 99 }""")
            let message = try configOf [ "config", file ] |> ignore; "accepted" with :? ConfigException as e -> e.Message
            Expect.stringContains message ("--config '" + file + "': --lr must be in (0, 10], got 99") "the file named (not once)"
            Expect.equal (configOf [ "config", file; "lr", "0.1" ]).Lr 0.1 "the command line's value replaces it"
            File.WriteAllText(file, """{ "device": "gpu" }""")
            let message = try configOf [ "config", file ] |> ignore; "accepted" with :? ConfigException as e -> e.Message
            Expect.stringContains message ("--config '" + file + "': --device must be cpu, cuda or cuda:N") "a malformed device names the file too"
            Expect.equal (configOf [ "config", file; "device", "cpu" ]).Device "cpu" "the command line's device replaces it"
            File.WriteAllText(file, """{ "move-aside": true }""")
            let message = try configOf [ "config", file ] |> ignore; "accepted" with :? ConfigException as e -> e.Message
            Expect.stringContains message "'move-aside' is the command line's alone" "said why (\"unknown setting\" once)"
            File.WriteAllText(file, "{ \"batch\": {\n  \"a\": 1,\n  \"b\": [1, 2]\n} }")
            let message = try configOf [ "config", file ] |> ignore; "accepted" with :? ConfigException as e -> e.Message
            Expect.stringContains message "'batch' must be an integer, got {\"a\":1,\"b\":[1,2]}" "a nested value on one line"
            File.WriteAllText(toml, "[batch]\nname = \"" + String('x', 200) + "\"\n")
            let message = try configOf [ "config", toml ] |> ignore; "accepted" with :? ConfigException as e -> e.Message
            Expect.isTrue (message.Length < 200 && not (message.Contains "\n")) (sprintf "a long value cut, one line: %s" message)
        }

        test "metrics.jsonl's lr, wd, momentum and teacher temperatures are spec §10's schedules (computed here in float64): linear lr warm-up from 0, cosines after it, the temperatures per epoch" {
            use _ = torch.NewDisposeScope()
            let output = DataTests.tempDir "schedules"
            let temperatures = [ "warmup-teacher-temp", "0.02"; "teacher-temp", "0.06"; "warmup-teacher-temp-c", "0.03"; "teacher-temp-c", "0.07"; "warmup-teacher-temp-epochs", "3" ]
            run (tinyConfig output ([ "warmup-epochs", "1"; "max-steps", "9"; "checkpoint-every", "1000" ] @ temperatures)) |> ignore
            // 48 scenes in batches of 8: 6 steps an epoch, 18 over the 3 epochs; 6 of warm-up. The line
            // of step s holds the values of iteration s − 1.
            let n, w, peak, minLr = 18.0, 6.0, 5e-3 * 8.0 / 256.0, 1e-5
            let cosine start final (j: float) (span: float) = final + 0.5 * (start - final) * (1.0 + Math.Cos(Math.PI * j / span))
            let lines = metrics output
            Expect.equal lines.Length 9 "one line a step"
            for record in lines do
                let it = float (record.GetProperty("step").GetInt64() - 1L)
                let expectedLr = if it < w then peak * it / (w - 1.0) else cosine peak minLr (it - w) (n - w)
                let at (key: string) = record.GetProperty(key).GetDouble()
                Expect.floatClose Accuracy.veryHigh (at "lr") expectedLr $"lr of iteration {it}"
                Expect.floatClose Accuracy.veryHigh (at "wd") (cosine 0.04 0.4 it n) $"wd of iteration {it}: 0.04 → 0.4"
                Expect.floatClose Accuracy.veryHigh (at "momentum") (cosine 0.99 1.0 it n) $"teacher momentum of iteration {it}: 0.99 → 1"
                // linspace(start, final, 3) at the step's epoch (steps 1–6 epoch 0, 7–9 epoch 1): the trainer passes the current epoch
                let epoch = floor (it / 6.0)
                Expect.floatClose Accuracy.veryHigh (at "teacher_temp") (0.02 + 0.04 * epoch / 2.0) $"image-level teacher temperature of iteration {it}"
                Expect.floatClose Accuracy.veryHigh (at "teacher_temp_c") (0.03 + 0.04 * epoch / 2.0) $"object-level teacher temperature of iteration {it}"
            Directory.Delete(output, true)
        }

        test "the teacher temperatures of epoch 0 are the warm-up's start: a warm-up run's first steps equal a run held at that temperature" {
            use _ = torch.NewDisposeScope()
            let lossesWith (name: string) (temps: (string * string) list) =
                let output = DataTests.tempDir name
                run (tinyConfig output ([ "max-steps", "2"; "checkpoint-every", "1000" ] @ temps)) |> ignore
                let losses = metrics output |> Array.map loss
                Directory.Delete(output, true)
                losses
            // linspace(0.02, 0.06, 3) gives 0.02 in epoch 0 (and 0.03 → 0.07 at the object level: 0.03)
            let warming = lossesWith "temps-warm" [ "warmup-teacher-temp", "0.02"; "teacher-temp", "0.06"; "warmup-teacher-temp-c", "0.03"; "teacher-temp-c", "0.07"; "warmup-teacher-temp-epochs", "3" ]
            let held = lossesWith "temps-held" [ "warmup-teacher-temp", "0.02"; "teacher-temp", "0.02"; "warmup-teacher-temp-c", "0.03"; "teacher-temp-c", "0.03" ]
            Expect.sequenceEqual warming held "the two first steps (epoch 0) bit for bit"
        }

        test "teacher temperatures warm up per epoch as linspace(start, final, warm-up epochs), each level from its own start; ≤ 2 epochs have no warm-up" {
            let config = configOf [ "epochs", "10"; "warmup-teacher-temp", "0.02"; "teacher-temp", "0.06"; "warmup-teacher-temp-c", "0.03"; "teacher-temp-c", "0.07"; "warmup-teacher-temp-epochs", "5" ]
            for epoch, image, objects in [ 0, 0.02, 0.03; 1, 0.03, 0.04; 2, 0.04, 0.05; 4, 0.06, 0.07; 5, 0.06, 0.07; 9, 0.06, 0.07 ] do
                let struct (t, tc) = CrocSetup.TeacherTemperatures(config, epoch)
                Expect.floatClose Accuracy.veryHigh t image $"image level at epoch {epoch}"
                Expect.floatClose Accuracy.veryHigh tc objects $"object level at epoch {epoch}"
            let short = configOf [ "epochs", "2"; "warmup-teacher-temp", "0.02"; "teacher-temp", "0.06"; "warmup-teacher-temp-epochs", "2" ]
            let struct (t, _) = CrocSetup.TeacherTemperatures(short, 0)
            Expect.equal t 0.06 "epochs ≤ 2: the final temperature from the start (the official rule)"
        }

        test "a resume inside an epoch with --accum 2 continues with the batches it stopped at, as a run that never stopped" {
            use _ = torch.NewDisposeScope()
            let straight = DataTests.tempDir "accum-straight"
            let resumed = DataTests.tempDir "accum-resumed"
            // 6 batches of 8 an epoch, 2 a step: 3 steps an epoch; the resume at step 2 is inside epoch 0
            let accum = [ "accum", "2"; "checkpoint-every", "2" ]
            run (tinyConfig straight (accum @ [ "max-steps", "5" ])) |> ignore
            run (tinyConfig resumed (accum @ [ "max-steps", "2" ])) |> ignore
            run (tinyConfig resumed (accum @ [ "max-steps", "5" ])) |> ignore
            let a, b = metrics straight |> Array.map loss, metrics resumed |> Array.map loss
            Expect.equal b.Length 5 "one line a step"
            Expect.sequenceEqual b a "every step's loss bit for bit (the resumed epoch read its batches from 2 · step on)"
            Directory.Delete(straight, true)
            Directory.Delete(resumed, true)
        }

        test "the official preset is spec §10's recipe, and the host hands the math library its clustering and loss settings" {
            let o = TrainConfig.Official
            Expect.equal (o.Arch, o.Patch, o.ImageSize, o.Depth) (Arch.Small, 16, 224, 12) "ViT-S/16 at 224 px"
            Expect.equal (o.Epochs, o.Batch, o.Workers, o.Seed) (300, 16, 4, 0) "300 epochs, 16 a GPU, 4 workers, seed 0"
            Expect.equal (o.Lr, o.MinLr, o.WarmupEpochs) (5e-4, 1e-6, 10) "lr 5e-4 per 256, to 1e-6, 10 warm-up epochs"
            Expect.equal (o.WeightDecay, o.WeightDecayEnd, o.ClipGrad, o.FreezeLastLayer) (0.04, 0.4, 3.0, 1) "wd 0.04 → 0.4, clip 3, last layer frozen 1 epoch"
            Expect.equal (o.MomentumTeacher, o.DropPath, o.OutDim, o.OutDimC, o.NormLastLayer) (0.996, 0.1, 65536, 8192, true) "teacher momentum, drop path, heads"
            Expect.equal (o.StudentTemp, o.StudentTempC, o.TeacherTemp, o.TeacherTempC, o.WarmupTeacherTemp, o.WarmupTeacherTempC) (0.1, 0.1, 0.04, 0.04, 0.04, 0.04) "temperatures, no warm-up"
            Expect.equal (o.CentreMomentum, o.Alpha, o.Features, o.UniformMarginals) (0.9, 1.0, ClusteredFeatures.Keys, false) "centres, L_obj weight, keys, CLS marginals"
            Expect.equal (o.NTokens, o.NCentroidsMax, o.SinkhornLambda, o.SinkhornIterations, o.PosAlpha) (5, 4, 20.0, 5, 4.0) "clustering"
            for config in [ configOf [ "preset", "official" ]; configOf [] ] do
                let croc = CrocSetup.Croc config
                let c = croc.Clustering
                Expect.equal (c.K0, c.Selection, c.SinkhornLambda, c.SinkhornIterations, c.LambdaPos) (5, Clustering.KSelection.MinTransportCost 4, 20.0, 5, 4.0) "K0, K* ≤ 4, λ, iterations, λ_pos"
                Expect.equal c.Marginals (Clustering.Marginals.ClsSimilarity(2.0, 2.0)) "CLS-similarity marginals, τ_r = τ_c = 2"
                Expect.equal (croc.Alpha, croc.StudentTemp, croc.StudentTempC, croc.CentreMomentum, croc.DropPath) (1.0, 0.1, 0.1, 0.9, 0.1) "loss settings"
            Expect.equal (CrocSetup.Croc(configOf [ "uniform-marginals", "true" ])).Clustering.Marginals Clustering.Marginals.Uniform "--uniform-marginals: the poster's"
        }

        test "TensorBoard events carry the step as a protobuf varint (7 bits a byte, low first, the high bit for more)" {
            for step, varint in [ 0L, [| 0uy |]; 127L, [| 0x7Fuy |]; 128L, [| 0x80uy; 0x01uy |]; 300L, [| 0xACuy; 0x02uy |]; 1L <<< 35, [| 0x80uy; 0x80uy; 0x80uy; 0x80uy; 0x80uy; 0x01uy |] ] do
                let event = TfRecords.Event(1.5, step, [||])
                Expect.sequenceEqual event (Array.concat [ [| 0x09uy |]; BitConverter.GetBytes 1.5; [| 0x10uy |]; varint ]) $"step {step}: wall_time (1, double), step (2, varint)"
        }

        test "a run's training time is the sum of every metrics line's step time, not the last one's" {
            let output = DataTests.tempDir "training-seconds"
            File.WriteAllLines(Path.Combine(output, "metrics.jsonl"), [ "{\"step\":1,\"step_s\":1.5}"; "{\"step\":2,\"step_s\":2.25}"; "{\"step\":3,\"step_s\":0.25}" ])
            Expect.equal (MetricsLog.TrainingSeconds output) 4.0 "1.5 + 2.25 + 0.25"
            Directory.Delete(output, true)
        }

        test "a short run of the default recipe lowers the loss" {
            use _ = torch.NewDisposeScope()
            let output = DataTests.tempDir "falling"
            let config = tinyConfig output [ "epochs", "4"; "checkpoint-every", "1000" ]
            let summary = run config
            let losses = metrics output |> Array.map loss
            let first, last = Array.average losses.[.. 2], Array.average losses.[losses.Length - 3 ..]
            Expect.isLessThan last first (sprintf "mean loss of the last 3 steps below the first 3 (%A)" losses)
            Expect.equal summary.Steps 24L "4 epochs of 6 steps"
            Directory.Delete(output, true)
        }
    ]
