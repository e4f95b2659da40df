/// Run folders and checkpoints: a run never loses or overwrites what another left; refused
/// checkpoints are set aside, not deleted. Each test reproduces a problem found by trying the tool
/// as a user would.
module CrOC.Tests.RunFolderHardening

open System
open System.Diagnostics
open System.IO
open System.Text
open Expecto
open CrOC.Host.CommandLine
open CrOC.Host.Training
open CrOC.Host.Weights
open CrOC.Tests.TestUtil
open CrOC.Tests.HardeningShared

let tests =
    testList "run folders and checkpoints" [
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
            refused [ "--epochs"; "4"; "--max-steps"; "8" ] "made with epochs = 3, this run has 4" // the schedules span the epochs
            refused [ "--accum"; "2"; "--max-steps"; "8" ] "made with accum = 1, this run has 2" // the data order and the lr scaling depend on it
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

        test "pruning keeps a step on a multiple of this start's --keep-every though it was written without one, and sets a checkpoint over another dataset aside" {
            let output = DataTests.tempDir "prune"
            let config = TrainingTests.tinyConfig output []
            let saveAt (step: int64) (keepEvery: int) (dataset: DatasetIdentity) =
                use state = TrainingState.Fresh(config, CrocSetup.Croc(config))
                state.Step <- step
                Checkpoints.Save(output, config, state, 1, keepEvery = keepEvery, dataset = dataset) |> ignore
            let scenes, renamed = DatasetIdentity(48, 1u), DatasetIdentity(48, 2u)
            saveAt 1L 0 renamed
            saveAt 2L 0 scenes
            Expect.equal (checkpointNames output) [ "step-00000002.safetensors" ] "the newest kept alone"
            Expect.isTrue (File.Exists(Path.Combine(Checkpoints.Folder output, "step-00000001.safetensors.refused"))) "another dataset's checkpoint set aside, not deleted"
            saveAt 3L 2 scenes
            saveAt 5L 2 scenes
            Expect.equal (checkpointNames output) [ "step-00000002.safetensors"; "step-00000005.safetensors" ] "step 2 kept by this start's --keep-every 2, step 3 pruned"
            Directory.Delete(output, true)
        }

        test "a checkpoint whose progress record has another format, a negative step or a key twice is refused, and the state is left as it was" {
            let output = DataTests.tempDir "progress"
            let config = TrainingTests.tinyConfig output []
            use state = TrainingState.Fresh(config, CrocSetup.Croc(config))
            state.Step <- 4L
            state.Model.Centre.copy_(TorchSharp.torch.ones_like state.Model.Centre) |> ignore // a value a restore would copy
            let path = Checkpoints.Save(output, config, state, 1)
            let withRecord (change: string -> string) =
                let struct (tensors, metadata) = Safetensors.Read path
                metadata.["progress"] <- change metadata.["progress"]
                Safetensors.Write(path, tensors, metadata)
            let withProgress (field: string) (json: string) =
                withRecord (fun record ->
                    let progress = (present (Text.Json.Nodes.JsonNode.Parse record)).AsObject()
                    progress.[field] <- Text.Json.Nodes.JsonNode.Parse json
                    progress.ToJsonString())
            use fresh = TrainingState.Fresh(config, CrocSetup.Croc(config))
            let centreBefore = fresh.Model.Centre.clone()
            withProgress "format" "\"crocnet-checkpoint-v0\""
            Expect.stringContains (thrown<WeightsException> (fun () -> Checkpoints.Restore(path, config, fresh)) "another format").Message "not a crocnet-checkpoint-v1 file" "the format named"
            withProgress "format" (sprintf "\"%s\"" Checkpoints.Format)
            withProgress "step" "-4"
            Expect.stringContains (thrown<WeightsException> (fun () -> Checkpoints.Restore(path, config, fresh)) "a negative step").Message "step -4" "the step named"
            // under a name that gives no step (a checkpoint copied elsewhere), refused for the step itself
            let renamed = Path.Combine(Checkpoints.Folder output, "copied.safetensors")
            File.Copy(path, renamed)
            Expect.stringContains (thrown<WeightsException> (fun () -> Checkpoints.Restore(renamed, config, fresh)) "a negative step, renamed").Message "its progress record has step -4" "the step refused as such"
            File.Delete renamed
            withProgress "step" "4"
            withRecord (fun record -> sprintf "{\"format\": \"%s\", %s" Checkpoints.Format record.[1..])
            Expect.stringContains (thrown<WeightsException> (fun () -> Checkpoints.Restore(path, config, fresh)) "a key twice").Message "its progress record is not JSON" "not read (an internal error once)"
            Expect.equal fresh.Step 0L "no step restored"
            Expect.equal (maxAbsDiff fresh.Model.Centre centreBefore) 0.0 "no tensor restored: the checks come first"
            // a record without "world" (written before runs recorded it) is of one process, not refused
            Checkpoints.Save(output, config, state, 1) |> ignore // the record whole again
            withRecord (fun record -> let progress = (present (Text.Json.Nodes.JsonNode.Parse record)).AsObject() in progress.Remove "world" |> ignore; progress.ToJsonString())
            use older = TrainingState.Fresh(config, CrocSetup.Croc(config))
            Checkpoints.Restore(path, config, older, 1)
            Expect.equal older.Step 4L "restored as a run of one process"
            Directory.Delete(output, true)
        }

        test "a newest checkpoint that is no readable file (a dangling link, a FIFO, a folder) is refused and set aside; the run resumes from the previous one" {
            let output = DataTests.tempDir "dangling"
            Expect.equal (fst (TrainingTests.cli (List.toArray (trainArgs output [ "--max-steps"; "2" ])))) 0 "first run"
            let dangling = Path.Combine(Checkpoints.Folder output, "step-00000003.safetensors")
            let fifo = Path.Combine(Checkpoints.Folder output, "step-00000004.safetensors")
            let folder = Path.Combine(Checkpoints.Folder output, "step-00000005.safetensors")
            File.CreateSymbolicLink(dangling, Path.Combine(output, "gone", "step-00000003.safetensors")) |> ignore
            makeFifo fifo
            // a folder was left out of the checkpoints: every resume then failed at its step's checkpoint ("Is a directory", exit 1)
            File.WriteAllText(Path.Combine(Directory.CreateDirectory(folder).FullName, "someone's.txt"), "kept")
            let code, text = TrainingTests.cli (List.toArray (trainArgs output [ "--max-steps"; "5" ])) // was exit 1 ("Could not find file") or a hang
            Expect.equal code 0 text
            Expect.sequenceEqual [ for l in lines output "metrics.jsonl" -> Text.Json.JsonDocument.Parse(l).RootElement.GetProperty("step").GetInt32() ] [ 1 .. 5 ] "resumed from step 2"
            Expect.stringContains (File.ReadAllText(Path.Combine(output, "train.log"))) "not a readable file" "the reason is logged"
            for aside in [ dangling; fifo ] do
                let kept = FileInfo(aside + ".refused")
                Expect.isTrue (kept.Exists || kept.LinkTarget <> null) (sprintf "%s set aside, not deleted" aside)
            Expect.equal (File.ReadAllText(Path.Combine(folder + ".refused", "someone's.txt"))) "kept" "the folder set aside with its contents"
            Expect.isTrue (File.Exists folder) "step 5's checkpoint written in its place"
            Directory.Delete(output, true)
        }

        test "a metrics.jsonl whose last line lost its newline (a write cut short) gets the next record on a line of its own" {
            let output = DataTests.tempDir "metrics-newline"
            Expect.equal (fst (TrainingTests.cli (List.toArray (trainArgs output [ "--max-steps"; "2" ])))) 0 "first run"
            let metrics = Path.Combine(output, "metrics.jsonl")
            let bytes = File.ReadAllBytes metrics
            File.WriteAllBytes(metrics, bytes.[.. bytes.Length - 2]) // without the final "\n"
            for steps in [ "4"; "6" ] do
                // a record past the checkpoint (of a run that stopped before its next one) is dropped, and said
                if steps = "6" then File.AppendAllText(metrics, "{\"step\":9,\"loss\":1.0}\n")
                let code, text = TrainingTests.cli (List.toArray (trainArgs output [ "--max-steps"; steps ]))
                Expect.equal code 0 text
                if steps = "6" then Expect.stringContains (File.ReadAllText(Path.Combine(output, "train.log"))) "metrics.jsonl: dropped 1 record of steps after step 4 (those steps are run again)" "what the resume dropped is said"
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

        test "a folder holding another run is refused with advice the caller can follow: train offers --move-aside, the synthetic suite (which has none) does not" {
            let output = DataTests.tempDir "refusal-advice"
            TrainingTests.run (TrainingTests.tinyConfig output [ "max-steps", "1" ]) |> ignore
            let other = TrainingTests.tinyConfig output [ "max-steps", "1"; "depth", "3" ]
            let forTrain = thrown<OutputException> (fun () -> (RunFolder.Claim(output, other, false)).Dispose()) "another run's folder"
            Expect.stringContains forTrain.Message "add --move-aside to move that run" "train's"
            let forSuite = thrown<OutputException> (fun () -> (RunFolder.Claim(output, other, false, false)).Dispose()) "another run's folder"
            Expect.stringContains forSuite.Message "move that run's folder away yourself (this command has no --move-aside)" "the suite's"
            Expect.isFalse (forSuite.Message.Contains "add --move-aside") "not an option the suite refuses (it advised one once)"
            // and what the run says later (every checkpoint refused) follows its claim
            let fresh = DataTests.tempDir "refusal-advice-fresh"
            use claimed = RunFolder.Claim(fresh, TrainingTests.tinyConfig fresh [], false, false)
            Expect.stringContains claimed.StartAnew "this command has no --move-aside" "the suite's claim"
            claimed.Dispose()
            Directory.Delete(fresh, true)
            Directory.Delete(output, true)
        }

        test "the synthetic suite, refused a run folder that holds something else, advises moving it away, not --move-aside (an option it refuses)" {
            let home = DataTests.tempDir "suite-advice"
            let output = Path.Combine(home, "suite")
            Directory.CreateDirectory(Path.Combine(output, "croc-seed0")) |> ignore
            File.WriteAllText(Path.Combine(output, "croc-seed0", "config.json"), """{ "model_type": "bert" }""") // a model folder's own config
            let trainArgsText = String.Join(" ", [ for name, value in TrainingTests.tinyPairs "x" do if not (List.contains name [ "output"; "data"; "epochs" ]) then yield sprintf "--%s %s" name value ]) + " --max-steps 1"
            let code, err = crocInShell "true" "" [ "CROC_DATA_HOME", home ] [ "experiment"; "--seeds"; "0"; "--output"; output; "--train-args=" + trainArgsText ]
            Expect.equal code 2 err
            Expect.stringContains err "move that run's folder away yourself (this command has no --move-aside)" "advice the suite's user can follow"
            Expect.isFalse (err.Contains "add --move-aside") "not an option the suite refuses"
            Directory.Delete(home, true)
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
            // a pattern matching the run's folder: its rerun trained on the run's clusters.png, once
            for output, root in [ Path.Combine(data, "run-c"), Path.Combine(data, "*"); Path.Combine(data, "run-d", "deep"), Path.Combine(data, "run-?") ] do
                let code, message = TrainingTests.cli (List.toArray (trainArgs output [ "--data"; root; "--max-steps"; "1" ]))
                Expect.equal code 2 message
                Expect.stringContains message "lies inside the training data" (sprintf "--data %s --output %s" root output)
            Directory.Delete(home, true)
        }

        test "a run.lock that cannot be opened (a link loop, a link into no folder) is said to be so, not taken for another run holding it" {
            for target in [ "run.lock"; "/nonexistent/folder/run.lock" ] do // "run.lock" → itself: a loop
                let output = DataTests.tempDir "lock-link"
                File.CreateSymbolicLink(Path.Combine(output, RunFolder.LockName), target) |> ignore
                let code, message = TrainingTests.cli (List.toArray (trainArgs output [ "--max-steps"; "1" ]))
                Expect.equal code 2 message
                Expect.stringContains message "its run.lock cannot be opened" (target + ": says why")
                Expect.isFalse (message.Contains "in use by another run") (target + ": no other run named (once)")
                Directory.Delete(output, true)
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
            for file, text in [ "config.json", "{\"model_type\": \"vit\", \"hidden_size\": 384}"; "config.json", "{\"arch\": \"tiny\","; "run.json", "[1, 2]"; "run.json", "{\"started\": \"2026-01-01\"}"
                                // a key twice: an internal error once
                                "run.json", "{\"commit\": \"a\", \"commit\": \"b\"}"
                                // a lone surrogate: its start copied into the new record could not be written (an internal error once)
                                "run.json", "{\"commit\": \"\\ud800\", \"starts\": [{\"commit\": \"\\ud800\"}]}" ] do
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

        test "a train.log or metrics.jsonl that cannot be appended to (immutable) is refused before any work, exit 2, nothing changed ('permission denied', exit 1, once the folder was claimed, once)" {
            for file in [ "train.log"; "metrics.jsonl" ] do
                let output = DataTests.tempDir "not-appendable"
                let code, _, err = croc 120 (trainArgs output [ "--max-steps"; "1" ])
                Expect.equal code 0 err
                let path = Path.Combine(output, file)
                let before = File.ReadAllBytes path
                let chattr (flag: string) =
                    use p = present (Process.Start(ProcessStartInfo("chattr", [| flag; path |], RedirectStandardError = true)))
                    p.StandardError.ReadToEnd() |> ignore
                    p.WaitForExit()
                    p.ExitCode
                // immutable (root), else read-only (which root writes anyway)
                let mode = File.GetUnixFileMode path
                let release =
                    if chattr "+i" = 0 then fun () -> chattr "-i" |> ignore
                    else
                        File.SetUnixFileMode(path, UnixFileMode.UserRead)
                        fun () -> File.SetUnixFileMode(path, mode)
                let writable = try (new FileStream(path, FileMode.Open, FileAccess.Write)).Dispose(); true with _ -> false
                if writable then
                    release ()
                    skiptest "neither chattr +i nor a read-only mode keeps this user from writing a file"
                try
                    let code, _, err = croc 120 (trainArgs output [ "--max-steps"; "2" ])
                    Expect.equal code 2 err
                    Expect.stringContains err (sprintf "holds a %s that cannot be appended to" file) "says which and why"
                    Expect.equal (File.ReadAllBytes path) before "unchanged"
                    Expect.equal (checkpointNames output) [ "step-00000001.safetensors" ] "no step run"
                    // --move-aside only renames the folder: it starts anew beside it (the check refused it once)
                    let code, _, err = croc 120 (trainArgs output [ "--max-steps"; "1"; "--move-aside" ])
                    Expect.equal code 0 err
                    let moved = Directory.GetDirectories(present (Path.GetDirectoryName output), present (Path.GetFileName output) + ".old-*") |> Array.exactlyOne
                    Expect.equal (File.ReadAllBytes(Path.Combine(moved, file))) before "the old run's file moved with it, unchanged"
                    Expect.equal (checkpointNames output) [ "step-00000001.safetensors" ] "the new run's"
                    Directory.Delete(output, true)
                    Directory.Move(moved, output)
                finally release ()
                Directory.Delete(output, true)
        }

        test "an experiment suite's lock of its --output: a second is refused naming the holder; a folder or a FIFO at its files is refused, not waited for; released, its files go (the lock file only from an otherwise empty folder)" {
            let output = DataTests.tempDir "suite-lock"
            let files () = Directory.GetFiles output |> Array.map (Path.GetFileName >> present) |> Array.sort
            do
                use _ = RunFolder.LockSuite output
                Expect.equal (files ()) [| "suite.lock"; "suite.owner" |] "held"
                let e = thrown<OutputException> (fun () -> RunFolder.LockSuite output |> ignore) "a second suite"
                Expect.stringContains e.Message $"is in use by another experiment suite (process {Environment.ProcessId} on " "names the holder"
            Expect.isEmpty (files ()) "released from an otherwise empty folder: both go (a failed suite's made --output is removed then)"
            File.WriteAllText(Path.Combine(output, "results.json"), "{}")
            do
                use _ = RunFolder.LockSuite output
                ()
            Expect.equal (files ()) [| "results.json"; "suite.lock" |] "with results beside it the lock file stays (removing it while another suite opens it would let a third in)"
            makeFifo (Path.Combine(output, "suite.owner")) // its write waited for a reader forever
            Expect.stringContains (thrown<OutputException> (fun () -> RunFolder.LockSuite output |> ignore) "a FIFO owner").Message "holds a suite.owner that a suite cannot use: not a regular file" "refused"
            File.Delete(Path.Combine(output, "suite.owner"))
            File.Delete(Path.Combine(output, "suite.lock"))
            Directory.CreateDirectory(Path.Combine(output, "suite.lock")) |> ignore
            Expect.stringContains (thrown<OutputException> (fun () -> RunFolder.LockSuite output |> ignore) "a folder").Message "holds a folder named suite.lock" "refused"
            Directory.Delete(output, true)
        }

        test "an experiment suite's lock released twice (the suite's end and a signal's handler) removes its files once: a later suite's lock and owner stay, and a third suite is still refused" {
            let output = DataTests.tempDir "suite-lock-twice"
            let first = RunFolder.LockSuite output
            first.Dispose()
            let second = RunFolder.LockSuite output
            first.Dispose()
            Expect.sequenceEqual (Directory.GetFiles output |> Array.map Path.GetFileName |> Array.sort) [| "suite.lock"; "suite.owner" |] "the second suite's files stay"
            thrown<OutputException> (fun () -> RunFolder.LockSuite output |> ignore) "a third suite while the second holds the lock" |> ignore
            second.Dispose()
            Directory.Delete(output, true)
        }

        test "a FIFO or a device where a run's record, log or metrics belong is refused, never waited for or read without end (a FIFO config.json, run.json, metrics.jsonl, train.log or run.owner hung the start until killed; metrics.jsonl linked to /dev/zero ran out of memory)" {
            let fifo = makeFifo
            let zero (path: string) = File.CreateSymbolicLink(path, "/dev/zero") |> ignore
            for file, make, expected in [ "config.json", fifo, "holds a config.json that is not a croc-host run's"
                                          "run.json", fifo, "holds a run.json that is not a croc-host run's"
                                          "metrics.jsonl", fifo, "metrics.jsonl' is no regular file"
                                          "metrics.jsonl", zero, "metrics.jsonl' reads past its length"
                                          "train.log", fifo, "holds a train.log that a run cannot use: not a regular file (a FIFO, a socket or a terminal?)" // appended to: hung with no output once
                                          "run.owner", fifo, "holds a run.owner that a run cannot use: not a regular file" ] do
                let output = DataTests.tempDir "not-regular"
                if file = "metrics.jsonl" then // a run's, resumed: its records read, then its metrics
                    let code, _, err = croc 120 (trainArgs output [ "--max-steps"; "1" ])
                    Expect.equal code 0 err
                    File.Delete(Path.Combine(output, file))
                make (Path.Combine(output, file))
                let code, _, err = croc 120 (trainArgs output [ "--max-steps"; "2" ])
                Expect.equal code 2 (sprintf "%s: refused, not waited for (exit 124 or 137: killed at the limit): %s" file err)
                Expect.stringContains err expected (file + ": says why")
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

        test "--move-aside moves a run only: a folder that holds none (a user's notes) stays where it is" {
            let output = DataTests.tempDir "aside-none"
            let notes = Path.Combine(output, "notes.txt")
            File.WriteAllText(notes, "a user's")
            using (RunFolder.Claim(output, TrainingTests.tinyConfig output [], true)) (fun folder -> Expect.isNull folder.MovedTo "nothing moved")
            Expect.equal (File.ReadAllText notes) "a user's" "the notes stay in the folder"
            Expect.isEmpty (Directory.GetDirectories(present (Path.GetDirectoryName output), DirectoryInfo(output).Name + ".old-*")) "no DIR.old-<time>"
            Directory.Delete(output, true)
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

        test "atomic writes: a full disk keeps the previous file and says what was needed; files written together, short temporary names and which are abandoned; which failures are expected (no crash file)" {
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
            Expect.isTrue (ExitCodes.IsExpected(IOException "Input/output error")) "an I/O error says all: no crash file either"
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
            Expect.isFalse (AtomicFile.IsAbandoned(Path.Combine(dir, sprintf "a.json.%d.%s.tmp" Environment.ProcessId (Guid.NewGuid().ToString("N"))))) "a running writer's (this process's) is not abandoned"
            AtomicFile.WriteTogether([ content first ok; content second ok ])
            Expect.equal [ File.ReadAllText first; File.ReadAllText second ] [ "A"; "A" ] "both written when both succeed"
            // only a target present at the check may be replaced: one that appears before its rename is kept (the check's answer was asked again once)
            File.Delete second
            let appears (_: string) = File.WriteAllText(second, "theirs"); true
            thrown<OutputException> (fun () -> AtomicFile.WriteTogether([ content first ok; content second ok ], true, Func<string, bool>(appears))) "refused" |> ignore
            Expect.equal (File.ReadAllText second) "theirs" "kept"
            Directory.Delete(dir, true)
        }

        test "atomic writes: a target named twice (a, ./a) is written once, with its first content; only a dead writer's temporary files are removed, a subfolder's only when asked" {
            let dir = DataTests.tempDir "atomic-twice"
            let content (p: string) (text: string) = AtomicFile.Content(p, Action<IO.Stream>(fun s -> s.Write(Text.Encoding.UTF8.GetBytes text)))
            let target = Path.Combine(dir, "a.png")
            let twice = [ content target "first"; content (Path.Combine(dir, ".", "a.png")) "second" ]
            AtomicFile.WriteTogether(twice, false) // its second rename was refused as another process's file once (eval-seg, a split naming an image twice)
            Expect.equal (File.ReadAllText target) "first" "written once, with the first content"
            File.Delete target
            AtomicFile.WriteTogether(twice)
            Expect.equal (File.ReadAllText target) "first" "replacing too: the first content"
            Expect.sequenceEqual (Directory.GetFiles dir |> Array.map Path.GetFileName) [| "a.png" |] "no temporary file left"
            let sub = Directory.CreateDirectory(Path.Combine(dir, "sub")).FullName
            let temporary (folder: string) (pid: int) = Path.Combine(folder, sprintf "m.png.%d.%s.tmp" pid (Guid.NewGuid().ToString("N")))
            let dead, live, other, deadBelow = temporary dir 2147483000, temporary dir Environment.ProcessId, Path.Combine(dir, "notes.tmp"), temporary sub 2147483000
            for file in [ dead; live; other; deadBelow ] do File.WriteAllText(file, "x")
            AtomicFile.RemoveAbandoned(dir)
            Expect.equal [ for file in [ dead; live; other; deadBelow ] -> File.Exists file ] [ false; true; true; true ] "the dead writer's alone; not a live writer's (this process's), another *.tmp, or one in a subfolder"
            AtomicFile.RemoveAbandoned(dir, true)
            Expect.equal [ for file in [ live; other; deadBelow ] -> File.Exists file ] [ true; true; false ] "recursive: the subfolder's too, the others still kept"
            Directory.Delete(dir, true)
        }
    ]
