module CrOC.Tests.EvaluationTests

open System
open System.IO
open Expecto
open TorchSharp
open CrOC.Math
open CrOC.Math.Tensors
open CrOC.Data
open CrOC.Host
open CrOC.Host.CommandLine
open CrOC.Host.Evaluation
open CrOC.Host.Weights
open CrOC.Host.Visual
open CrOC.Tests.TestUtil

let labelsOf (values: int list) = torch.tensor(values |> List.map int64 |> Array.ofList)

/// A tiny synthetic VOC set (64 px scenes) shared by the tests of this module.
let voc = lazy (
    let root = DataTests.tempDir "voc-eval"
    SyntheticScenes.WriteVoc(root, 24, 6, 11L, SyntheticScenes.SceneOptions(64, 64))
    root)

/// A one-block ViT (patch 8) whose blocks add nothing and whose patch embedding puts the mean
/// colour of each patch into channels 0–2, plus ±10 in channels 6–7 so that the final LayerNorm
/// keeps the colour (nearly) linearly: its patch tokens carry the class colour.
let colourBackbone () =
    let cfg = { Vit.VitConfig.Tiny(8, 32) with Depth = 1; Dim = 8; Heads = 1 }
    let p = Vit.init cfg (new torch.Generator(1UL, torch.CPU))
    use _ = torch.no_grad()
    for _, t in Vit.named p do t.zero_() |> ignore
    for c in 0 .. 2 do p.PatchEmbed.Weight.[int64 c, int64 c].fill_(scalar (1.0 / 64.0)) |> ignore
    let bias = p.PatchEmbed.Bias.Value
    bias.[6L].fill_(scalar 10.0) |> ignore
    bias.[7L].fill_(scalar -10.0) |> ignore
    for ln in [ p.Blocks.[0].Norm1; p.Blocks.[0].Norm2 ] do ln.Weight.fill_(scalar 1.0) |> ignore
    p.Norm.Weight.fill_(scalar 5.0) |> ignore // LayerNorm divides by std ≈ 5: back to the colour's scale
    p

/// Writes `text` to `path`, making its folder first (a suite's eval/ and runs/ folders).
let writeWithFolder (path: string) (text: string) =
    Directory.CreateDirectory(nonNull (Path.GetDirectoryName path)) |> ignore
    File.WriteAllText(path, text)

/// `record` (a JSON object's text) with eval-seg's numbers as the suite reads them (one probe seed, class horse) first.
let segmentationResult (record: string) =
    """{ "miou": 0.5, "runs": [{"miou": 0.5, "per_class": [{"name": "horse", "iou": 0.5}]}], """ + record.TrimStart().Substring 1

/// `record` (a JSON object's text) with eval-knn's top-1 first.
let knnResult (record: string) = """{ "top1": 0.25, """ + record.TrimStart().Substring 1

/// A real-photo suite folder with hand-written evaluations of seed 0's CrOC, random-initialisation and
/// DINO-only backbones (the same CamVid and Weizmann probe runs for each, k-NN 0.25, steps of 2 + 3.5 s,
/// a curve point of 0.3 at step 250), collected as the suite collects them; the folder is the caller's to delete.
let collectFrom (name: string) (camVidRuns: string) (horseRuns: string) =
    let output = DataTests.tempDir name
    let plan = RealPhotos.RealPhotoPlan.For(false, [| 0 |])
    let suite = RealPhotos.RealPhotoSuite(plan, "data", output, ignore)
    let croc = RealPhotos.EvaluatedBackbone("CrOC", 0, "w.safetensors", false)
    let random = RealPhotos.EvaluatedBackbone("random init", 0, "w.safetensors", true)
    let dino = RealPhotos.EvaluatedBackbone("DINO-only", 0, "w.safetensors", false)
    for b in [ croc; random; dino ] do
        writeWithFolder (suite.EvaluationJson(b, "camvid")) $"""{{"miou": 0.5, "runs": {camVidRuns}}}"""
        writeWithFolder (suite.EvaluationJson(b, "horses")) $"""{{"miou": 0.75, "runs": {horseRuns}}}"""
        writeWithFolder (suite.EvaluationJson(b, "knn")) """{"top1": 0.25}"""
    for run in [ "CrOC"; "DINO-only" ] do
        writeWithFolder (Path.Combine(suite.RunFolder(run, 0), "metrics.jsonl")) "{\"step\":1,\"step_s\":2.0}\n{\"step\":2,\"step_s\":3.5}\n"
    writeWithFolder (suite.CurveJson("CrOC", 250)) """{"miou": 0.3, "runs": [{"miou": 0.3, "per_class": [{"name": "road", "iou": 0.6}]}]}"""
    RealPhotos.RealPhotoResults.Collect(plan, [| croc; random; dino |], [| struct ("CrOC", 250, "c.safetensors") |], suite, readOnlyDict []), output

/// The error of the quick real-photo suite over a tiny data root whose CamVid has train and val
/// and copies of train named `splits`, and whose Weizmann copy names `horseLabels` in its labels.txt
/// (None: no labels.txt), changed further by `alter` (given the root), checked to come before any pre-training run.
let suiteRefusalAfter (alter: string -> unit) (splits: string list) (horseLabels: string list option) =
    let root = DataTests.tempDir "suite-data"
    for name in [ "camvid"; "weizmann-horses" ] do CrOC.Data.SyntheticScenes.WriteVoc(Path.Combine(root, name), 4, 2, 3L)
    let labels = Path.Combine(root, "weizmann-horses", "labels.txt")
    match horseLabels with
    | Some names -> File.WriteAllLines(labels, names)
    | None -> File.Delete labels
    for split in splits do File.Copy(Path.Combine(root, "camvid", "ImageSets", "Segmentation", "train.txt"), Path.Combine(root, "camvid", "ImageSets", "Segmentation", split + ".txt"))
    File.WriteAllText(Path.Combine(root, "tiny-imagenet-subset.tar"), "")
    alter root
    let output = DataTests.tempDir "suite-out"
    let e = Expect.throwsC (fun () -> RealPhotos.RealPhotoSuite(RealPhotos.RealPhotoPlan.For(true, null), root, output, ignore).Run() |> ignore) id
    Expect.isTrue (e :? DatasetException) (sprintf "a dataset error: %s" e.Message)
    Expect.isFalse (Directory.Exists(Path.Combine(output, "runs"))) "no run was started"
    Directory.Delete(root, true)
    Directory.Delete(output, true)
    e.Message

let suiteRefusalOf = suiteRefusalAfter ignore

/// The refusal of a data root whose Weizmann copy names background and horse, as ../shared/data's.
let suiteRefusal (splits: string list) = suiteRefusalOf splits (Some [ "background"; "horse" ])

let tests =
    testSequenced <| testList "Evaluation" [
        test "real-photo suite: a phase-time record that does not read is set aside and counted as none, not an internal error that hides the phase's outcome" {
            let dir = DataTests.tempDir "phases"
            let record = Path.Combine(dir, "phases.json")
            for content in [ "{\"pre-training\": \"1 min\"}"; "garbage"; ""; "{\"pre-training\": 1e400}"; "{\"pre-training\": -5}" ] do // 1e400 reads as ∞, which the record's next write cannot hold
                File.WriteAllText(record, content)
                let notes = Collections.Generic.List<string>()
                Expect.isEmpty (RealPhotos.RealPhotoSuite.SpentSoFar(record, Action<string> notes.Add)) (sprintf "%A counts as none" content)
                Expect.isFalse (File.Exists record) "set aside"
                Expect.equal (File.ReadAllText(Directory.GetFiles(dir, "phases.json.refused*") |> Array.exactlyOne)) content "kept, not deleted"
                Expect.stringContains notes.[0] "is no record of phase times" "and said"
                for f in Directory.GetFiles dir do File.Delete f
            File.WriteAllText(record, "{\"pre-training\": 60.5}")
            Expect.equal (RealPhotos.RealPhotoSuite.SpentSoFar(record, ignore).["pre-training"]) 60.5 "a good record reads"
            Directory.Delete(dir, true)
        }

        test "real-photo suite: the k-NN forward is bf16 only where bf16 is the faster (auto), the probes keep their float32 default" {
            let suite = RealPhotos.RealPhotoSuite(RealPhotos.RealPhotoPlan.Quick, "data", "out", ignore)
            let jobs = suite.EvaluationJobs(RealPhotos.EvaluatedBackbone("CrOC", 0, "w.pth", false)) |> Seq.toList
            let precisionOf (job: RealPhotos.HostJob) =
                job.Arguments |> Seq.pairwise |> Seq.tryPick (fun (name, value) -> if name = "--precision" then Some value else None)
            let knn = jobs |> List.find (fun j -> j.Arguments.[0] = "eval-knn")
            Expect.equal (precisionOf knn) (Some "auto") "k-NN: auto (was bf16, emulated and slow on CPUs without bf16)"
            for probe in jobs |> List.filter (fun j -> j.Arguments.[0] = "eval-seg") do
                Expect.equal (precisionOf probe) None (sprintf "%s: the default" probe.Name)
        }

        test "real-photo suite: each pre-training run reports its progress at least ten times, by a setting that is no part of the run's identity" {
            for plan in [ RealPhotos.RealPhotoPlan.Quick; RealPhotos.RealPhotoPlan.Full ] do
                let suite = RealPhotos.RealPhotoSuite(plan, "data", "out", ignore)
                for job in suite.PretrainJobs "list.txt" do
                    let pairs = job.Arguments |> Seq.skip 1 |> Seq.pairwise |> Seq.filter (fun (name, _) -> name.StartsWith "--") |> Seq.map (fun (name, value) -> struct (name.Substring 2, (value: string | null))) |> ResizeArray
                    let config = CrOC.Host.Training.TrainConfig.Resolve pairs
                    Expect.isTrue job.EchoProgress job.Name
                    Expect.isLessThanOrEqual (config.LogEvery * 10) config.MaxSteps (sprintf "%s (%s): ten progress lines or more (the first came at step 100 of 140 once)" job.Name plan.Name)
            Expect.isFalse (Array.contains "log-every" CrOC.Host.Training.TrainConfig.IdentityKeys) "a resumed run may change it"
        }

        test "real-photo suite: --seeds picks the pre-training seeds of the full suite or the try-out; none, or a seed twice, is refused" {
            let seedsOf quick seeds = (RealPhotos.RealPhotoPlan.For(quick, seeds)).Seeds
            Expect.equal (seedsOf false null, seedsOf true null) ([| 0; 1 |], [| 0 |]) "the plans' own seeds by default"
            let one = RealPhotos.RealPhotoPlan.For(false, [| 0 |])
            Expect.equal (one.Seeds, one.Steps, one.CurveEvery) ([| 0 |], 1750, 250) "one seed of the full suite: the same recipe and budget"
            let parsed = OptionSet<ExperimentOptions>.Parse([| "--suite"; "real"; "--seeds"; "1" |])
            Expect.equal (seedsOf parsed.Quick parsed.Seeds) [| 1 |] "from the command line"
            for bad in [ "0,0"; "" ] do
                Expect.throwsT<OptionException> (fun () -> OptionSet<ExperimentOptions>.Parse([| "--suite"; "real"; "--seeds"; bad |]) |> ignore) (sprintf "'%s': two runs in one folder, or nothing to run" bad)
        }

        test "real-photo suite: curve points are named by the curve's seed (a rerun with other --seeds does not reuse them); durations over a day keep their hours" {
            let curveOf seed = RealPhotos.RealPhotoSuite(RealPhotos.RealPhotoPlan.For(false, [| seed |]), "data", "out", ignore).CurveJson("CrOC", 250)
            Expect.notEqual (curveOf 0) (curveOf 1) "seed 0's point is not seed 1's"
            Expect.equal (CrOC.Host.Runtime.ProgressReport.Clock(TimeSpan.FromHours 25.5)) "25:30:00" "not 01:30:00"
            Expect.equal (CrOC.Host.Runtime.ProgressReport.Clock(TimeSpan.FromSeconds 61.0)) "00:01:01" "under an hour"
        }

        test "real-photo suite: an evaluation is done when its JSON exists and so do the predictions it was asked for (a rerun whose first seed changed), written before the JSON (not a rerun stopped midway), and it records the job's data and settings" {
            let output = DataTests.tempDir "suite-done"
            let suite = RealPhotos.RealPhotoSuite(RealPhotos.RealPhotoPlan.For(false, [| 1 |]), "data", output, ignore)
            let croc = RealPhotos.EvaluatedBackbone("CrOC", 1, "w.safetensors", false)
            let jobs = List.ofSeq (suite.EvaluationJobs croc)
            let horsesData = Path.GetFullPath(Path.Combine("data", "weizmann-horses"))
            let bank = Path.GetFullPath(Path.Combine("data", "tiny-imagenet-subset.tar")) + "#tiny-imagenet-200/train"
            for task, record in [ "camvid", segmentationResult (sprintf "{ \"data\": \"%s\" }" (Path.GetFullPath(Path.Combine("data", "camvid")))); "horses", segmentationResult (sprintf "{ \"data\": \"%s\" }" horsesData); "knn", knnResult (sprintf "{ \"bank\": \"%s\" }" bank) ] do
                writeWithFolder (suite.EvaluationJson(croc, task)) record
            let notDone = [ for j in jobs do if RealPhotos.RealPhotoSuite.NotDone j then yield j.Name ]
            Expect.equal notDone [ "croc-seed1 CamVid test probe" ] "the CamVid probe, whose predictions (seed 1 is now the first) are missing"
            let folder, camVidJson = suite.PredictionsFolder croc, suite.EvaluationJson(croc, "camvid")
            Directory.CreateDirectory folder |> ignore
            let t0 = DateTime.UtcNow
            Directory.SetLastWriteTimeUtc(folder, t0)
            File.SetLastWriteTimeUtc(camVidJson, t0.AddSeconds 1.0) // eval-seg writes the masks, then the JSON
            Expect.isFalse (jobs |> List.exists RealPhotos.RealPhotoSuite.NotDone) "all done"
            Directory.SetLastWriteTimeUtc(folder, t0.AddSeconds 2.0)
            Expect.isTrue (RealPhotos.RealPhotoSuite.NotDone jobs.[0]) "a rerun stopped while writing predictions beside an earlier run's JSON"
            File.SetLastWriteTimeUtc(camVidJson, t0.AddSeconds 3.0)
            // a result of other inputs (e.g. a run with another --data-root) is not this job's
            let horsesJson = suite.EvaluationJson(croc, "horses")
            File.WriteAllText(horsesJson, segmentationResult <| sprintf """{ "weights": "%s", "data": "%s" }""" (Path.GetFullPath "w.safetensors") (Path.GetFullPath(Path.Combine("data", "weizmann-horses"))))
            Expect.isFalse (RealPhotos.RealPhotoSuite.NotDone jobs.[1]) "the same weights and data: done"
            File.WriteAllText(horsesJson, segmentationResult <| sprintf """{ "weights": "%s", "data": "/elsewhere/weizmann-horses" }""" (Path.GetFullPath "w.safetensors"))
            Expect.isTrue (RealPhotos.RealPhotoSuite.NotDone jobs.[1]) "other data: redone"
            File.WriteAllText(horsesJson, segmentationResult <| sprintf """{ "data": "%s", "data": "%s" }""" horsesData horsesData)
            Expect.isTrue (RealPhotos.RealPhotoSuite.NotDone jobs.[1]) "a record naming a key twice is none of ours: redone (an internal error once)"
            File.WriteAllText(horsesJson, "not JSON")
            Expect.isTrue (RealPhotos.RealPhotoSuite.NotDone jobs.[1]) "an unreadable result: redone"
            Expect.equal (suite.ToRun [ jobs.[1] ]).Count 1 "to be run"
            Expect.isFalse (File.Exists horsesJson) "its old file set aside first (eval-seg --json replaces only a result of its own)"
            Expect.equal (File.ReadAllText(horsesJson + ".stale")) "not JSON" "and kept"
            File.WriteAllText(horsesJson, segmentationResult <| sprintf """{ "weights": "/moved/output/w.safetensors", "data": "%s" }""" (Path.GetFullPath(Path.Combine("data", "weizmann-horses"))))
            Expect.isFalse (RealPhotos.RealPhotoSuite.NotDone jobs.[1]) "weights from a moved output folder: still done"
            // a result of other probe settings (a plan changed since) is not this job's
            let horsesRecord (probe: string) (seeds: string) =
                sprintf """{ "weights": "w", "data": "%s", "random": false, "train_split": "train", "val_split": "val", "probe_seeds": %s,
                    "probe": { "size": 128, "feature_size": 64, "epochs": 60, "milestone": 48, "lr": 0.2, "batch": 32, "momentum": 0.9,
                               "cache_features": true, "grayscale": false, "precision": "fp32", "seed": 0, %s } }""" horsesData seeds probe
            File.WriteAllText(horsesJson, segmentationResult <| horsesRecord "\"standardize\": true" "[0, 1, 2]")
            Expect.isFalse (RealPhotos.RealPhotoSuite.NotDone jobs.[1]) "the suite's own probe settings: done"
            File.WriteAllText(horsesJson, segmentationResult <| (horsesRecord "\"standardize\": true" "[0, 1, 2]").Replace("\"epochs\": 60", "\"epochs\": 20"))
            Expect.isTrue (RealPhotos.RealPhotoSuite.NotDone jobs.[1]) "other probe epochs: redone"
            File.WriteAllText(horsesJson, segmentationResult <| horsesRecord "\"standardize\": true" "[0]")
            Expect.isTrue (RealPhotos.RealPhotoSuite.NotDone jobs.[1]) "fewer probe seeds: redone"
            File.WriteAllText(horsesJson, segmentationResult <| horsesRecord "\"standardize\": false" "[0, 1, 2]")
            Expect.isTrue (RealPhotos.RealPhotoSuite.NotDone jobs.[1]) "a flag the job gives, recorded false: redone"
            File.WriteAllText(horsesJson, segmentationResult <| (horsesRecord "\"standardize\": true" "[0, 1, 2]").Replace("\"random\": false", "\"random\": true"))
            Expect.isTrue (RealPhotos.RealPhotoSuite.NotDone jobs.[1]) "a random initialisation's result for trained weights: redone"
            File.WriteAllText(horsesJson, segmentationResult <| (horsesRecord "\"standardize\": true" "[0, 1, 2]").Replace("\"lr\": 0.2", "\"lr\": 2e-1"))
            Expect.isFalse (RealPhotos.RealPhotoSuite.NotDone jobs.[1]) "the same learning rate written otherwise: done"
            let knnJson = suite.EvaluationJson(croc, "knn")
            File.WriteAllText(knnJson, knnResult """{ "bank": "elsewhere.tar#tiny-imagenet-200/train" }""")
            Expect.isTrue (RealPhotos.RealPhotoSuite.NotDone jobs.[2]) "another k-NN bank: redone"
            File.WriteAllText(knnJson, knnResult <| sprintf """{ "bank": "%s" }""" bank)
            Expect.isFalse (RealPhotos.RealPhotoSuite.NotDone jobs.[2]) "the same bank given by its full path: done"
            File.WriteAllText(knnJson, knnResult <| sprintf """{ "bank": "%s", "size": 64, "bank_stride": 1, "query_stride": 10 }""" bank)
            Expect.isTrue (RealPhotos.RealPhotoSuite.NotDone jobs.[2]) "a tenth of the queries: redone"
            File.WriteAllText(knnJson, """{ "top1": 0.01 }""")
            Expect.isTrue (RealPhotos.RealPhotoSuite.NotDone jobs.[2]) "a record without the job's data (counted as done once)"
            File.Delete(suite.EvaluationJson(croc, "knn"))
            Expect.isTrue (RealPhotos.RealPhotoSuite.NotDone jobs.[2]) "a missing JSON"
            // A phase's time is recorded even when it is stopped or fails.
            Expect.throwsT<InvalidOperationException> (fun () -> suite.Phase("pre-training", fun () -> raise (InvalidOperationException "stopped"))) "the failure passes through"
            let phases = File.ReadAllText(Path.Combine(output, "phases.json"))
            Expect.stringContains phases "pre-training" "its time recorded"
            Directory.Delete(output, true)
        }

        test "real-photo suite: a CamVid copy whose trainval list does not make the plan's 14 batches per epoch is refused before any pre-training" {
            Expect.stringContains (suiteRefusal [ "trainval"; "test" ]) "names 4 photos: 0 batches of 32 per epoch" "says why"
        }

        test "real-photo suite: a CamVid copy without its test split is refused before any pre-training, not after it" {
            Expect.stringContains (suiteRefusal [ "trainval" ]) "test.txt" "names the missing split"
        }

        test "real-photo suite: a result with the job's data but without the numbers the suite reads is redone, not collected; a file changed after its done-check is refused naming it (a hand-written one ended the suite in an internal error once)" {
            let output = DataTests.tempDir "suite-numbers"
            let suite = RealPhotos.RealPhotoSuite(RealPhotos.RealPhotoPlan.For(false, [| 0 |]), "data", output, ignore)
            let croc = RealPhotos.EvaluatedBackbone("CrOC", 0, "w.safetensors", false)
            let horses, knn = match List.ofSeq (suite.EvaluationJobs croc) with [ _; h; k ] -> h, k | _ -> failtest "three jobs"
            let data = sprintf "\"data\": \"%s\"" (Path.GetFullPath(Path.Combine("data", "weizmann-horses")))
            let run (classes: string) = sprintf """{"miou": 0.5, "per_class": [%s]}""" classes
            let horse = """{"name": "horse", "iou": 0.5}"""
            let horsesJson = suite.EvaluationJson(croc, "horses")
            writeWithFolder horsesJson (sprintf """{ %s, "miou": 0.5, "runs": [%s, %s] }""" data (run horse) (run """{"name": "horse", "iou": null}"""))
            Expect.isFalse (RealPhotos.RealPhotoSuite.NotDone horses) "the numbers eval-seg writes (an absent class's IoU null): done"
            for numbers, what in
                [ "", "no numbers"
                  "\"miou\": 0.5", "no probe runs"
                  sprintf "\"miou\": \"0.5\", \"runs\": [%s]" (run horse), "a mIoU as text"
                  sprintf "\"miou\": 1e999, \"runs\": [%s]" (run horse), "an infinite mIoU (results.json cannot hold it)"
                  "\"miou\": 0.5, \"runs\": []", "an empty list of runs"
                  "\"miou\": 0.5, \"runs\": [1]", "a run that is no object"
                  sprintf "\"miou\": 0.5, \"runs\": [{\"per_class\": [%s]}]" horse, "a run without its mIoU"
                  "\"miou\": 0.5, \"runs\": [{\"miou\": 0.5}]", "a run without its classes"
                  sprintf "\"miou\": 0.5, \"runs\": [%s]" (run "{\"name\": \"horse\"}"), "a class without its IoU"
                  sprintf "\"miou\": 0.5, \"runs\": [%s]" (run "{\"iou\": 0.5}"), "a class without its name"
                  sprintf "\"miou\": 0.5, \"runs\": [%s]" (run (horse + ", " + horse)), "a class twice"
                  sprintf "\"miou\": 0.5, \"runs\": [%s, %s]" (run horse) (run "{\"name\": \"sky\", \"iou\": 0.5}"), "probe runs of other classes" ] do
                File.WriteAllText(horsesJson, sprintf "{ %s%s }" data (if numbers = "" then "" else ", " + numbers))
                Expect.isTrue (RealPhotos.RealPhotoSuite.NotDone horses) (what + ": redone")
            let bank = Path.GetFullPath(Path.Combine("data", "tiny-imagenet-subset.tar")) + "#tiny-imagenet-200/train"
            writeWithFolder (suite.EvaluationJson(croc, "knn")) (sprintf """{ "bank": "%s", "top1": null }""" bank)
            Expect.isTrue (RealPhotos.RealPhotoSuite.NotDone knn) "a k-NN result without its top-1: redone"
            Directory.Delete(output, true)
            let camVidRuns = """[{"miou": 0.5, "per_class": [{"name": "road", "iou": 0.5}]}]"""
            let collectRefusal horseRuns =
                let e = Expect.throwsC (fun () -> collectFrom "collect-changed" camVidRuns horseRuns |> ignore) id
                Expect.isTrue (e :? DatasetException) (sprintf "a refusal, exit 2: %s" e.Message)
                e.Message
            Expect.stringContains (collectRefusal "[]") "-horses.json' is no result of its evaluation (no probe runs)" "names the file and what it lacks"
            Expect.stringContains (collectRefusal camVidRuns) "names no class 'horse'" "a Weizmann result without the horse class"
        }

        test "real-photo suite: a Weizmann copy whose labels.txt names no class 'horse', or a CamVid labels.txt that is no list of names, is refused before any pre-training, not when its results are collected" {
            Expect.stringContains (suiteRefusalOf [ "trainval"; "test" ] (Some [ "background"; "pony" ])) "names no class 'horse'" "says why"
            Expect.stringContains (suiteRefusalOf [ "trainval"; "test" ] (Some [])) "labels.txt' names no class 'horse'" "an empty labels.txt"
            Expect.stringContains (suiteRefusalOf [ "trainval"; "test" ] None) "labels.txt' is missing" "no labels.txt (its classes would be named 'class 0', 'class 1')"
            // CamVid's, which the CamVid jobs read only after the pre-training
            let camVidLabelsFolder (root: string) =
                let labels = Path.Combine(root, "camvid", "labels.txt")
                File.Delete labels
                Directory.CreateDirectory labels |> ignore
            Expect.stringContains (suiteRefusalAfter camVidLabelsFolder [ "trainval"; "test" ] (Some [ "background"; "horse" ])) "camvid/labels.txt' is a folder" "CamVid's labels.txt a folder"
        }

        test "real-photo suite: each pre-training run's method, budget and kept checkpoints, and each random initialisation's seed, are the plan's" {
            let valueOf (job: RealPhotos.HostJob) (option: string) = job.Arguments.[Seq.findIndex ((=) option) job.Arguments + 1]
            Expect.equal (RealPhotos.RealPhotoPlan.Full.Epochs, RealPhotos.RealPhotoPlan.Quick.Epochs) (125, 10) "1,750 and 140 steps of 14 batches an epoch (the schedules' length)"
            let suite = RealPhotos.RealPhotoSuite(RealPhotos.RealPhotoPlan.Full, "data", "out", ignore)
            for job in suite.PretrainJobs "list.txt" do
                Expect.equal (valueOf job "--alpha") (if job.Name.StartsWith "CrOC" then "1" else "0") (job.Name + ": CrOC's loss on, DINO-only's off")
                Expect.equal [ for o in [ "--epochs"; "--max-steps"; "--checkpoint-every"; "--keep-every" ] -> valueOf job o ] [ "125"; "1750"; "250"; "250" ] (job.Name + ": the budget, and a checkpoint kept for each curve point")
            let random = suite.EvaluationJobs(RealPhotos.EvaluatedBackbone("random init", 1, "w.pth", true)) |> Seq.head
            Expect.equal (valueOf random "--init-seed") "1" "seed 1's random initialisation is its own, not seed 0's"
        }

        test "real-photo suite: the curve's points are the random start and every kept checkpoint of both seed-0 runs, the last one included" {
            let output = DataTests.tempDir "curve-points"
            let suite = RealPhotos.RealPhotoSuite(RealPhotos.RealPhotoPlan.Full, "data", output, ignore)
            for run in [ "CrOC"; "DINO-only" ] do
                let folder = Training.Checkpoints.Folder(suite.RunFolder(run, 0))
                Directory.CreateDirectory folder |> ignore
                for step in [ 250; 1750 ] do File.WriteAllText(Path.Combine(folder, sprintf "step-%08d.safetensors" step), "")
            let points = [ for struct (line, step, _) in suite.CurvePoints() -> line, step ]
            Expect.equal points [ "init", 0; "CrOC", 250; "CrOC", 1750; "DINO-only", 250; "DINO-only", 1750 ] "each point once"
            Directory.Delete(output, true)
        }

        test "real-photo suite: a rerun sets aside only what it redoes (its result and predictions); a result of the same tick as its predictions, queries recorded by their full paths, are done; a JSON that is no object is no result" {
            let output = DataTests.tempDir "suite-rerun"
            let suite = RealPhotos.RealPhotoSuite(RealPhotos.RealPhotoPlan.For(false, [| 0 |]), "data", output, ignore)
            let croc = RealPhotos.EvaluatedBackbone("CrOC", 0, "w.safetensors", false)
            let camVid, horses, knn = match List.ofSeq (suite.EvaluationJobs croc) with [ c; h; k ] -> c, h, k | _ -> failtest "three jobs"
            let full (relative: string) = Path.GetFullPath(Path.Combine("data", relative))
            let write task (record: string) =
                let json = suite.EvaluationJson(croc, task)
                writeWithFolder json record
                json
            let camVidJson = write "camvid" (segmentationResult <| sprintf """{ "data": "%s" }""" (full "camvid"))
            let folder = suite.PredictionsFolder croc
            Directory.CreateDirectory folder |> ignore
            let t0 = DateTime.UtcNow
            Directory.SetLastWriteTimeUtc(folder, t0)
            File.SetLastWriteTimeUtc(camVidJson, t0)
            Expect.isFalse (RealPhotos.RealPhotoSuite.NotDone camVid) "predictions and JSON of the same tick: done"
            let tar = full "tiny-imagenet-subset.tar"
            let knnJson = write "knn" (knnResult <| sprintf """{ "bank": "%s#tiny-imagenet-200/train", "queries": "%s#tiny-imagenet-200/val/images", "query_annotations": "%s#tiny-imagenet-200/val/val_annotations.txt" }""" tar tar tar)
            Expect.isFalse (RealPhotos.RealPhotoSuite.NotDone knn) "the queries and annotations recorded by their full paths: done"
            let horsesJson = write "horses" "[1]"
            Expect.isTrue (RealPhotos.RealPhotoSuite.NotDone horses) "a JSON that is no object: no result"
            Directory.SetLastWriteTimeUtc(folder, t0.AddSeconds 1.0) // stopped while writing predictions
            Expect.equal [ for j in suite.ToRun [ camVid; horses; knn ] -> j.Name ] [ camVid.Name; horses.Name ] "the k-NN is done"
            Expect.isTrue (File.Exists(camVidJson + ".stale") && Directory.Exists(folder + ".stale") && File.Exists(horsesJson + ".stale")) "the redone jobs' results and predictions set aside"
            Expect.isFalse (Directory.Exists folder) "no earlier mask beside the new ones"
            Expect.isTrue (File.Exists knnJson) "the done job's result stays"
            Directory.Delete(output, true)
        }

        test "the curve picture draws each series in its own colour, higher values higher, with a legend entry per series" {
            let dir = DataTests.tempDir "curve-picture"
            let path = Path.Combine(dir, "curve.png")
            let series (label: string) (points: (float * float) list) = struct (label, [| for x, y in points -> struct (x, y) |] :> Collections.Generic.IReadOnlyList<_>)
            CurvePicture.Write("t", "x", "y", [| series "CrOC" [ 0.0, 10.0; 100.0, 20.0 ]; series "DINO-only" [ 0.0, 12.0; 100.0, 15.0 ] |], path)
            use drawn = SixLabors.ImageSharp.Image.Load<SixLabors.ImageSharp.PixelFormats.Rgb24>(path)
            let first, second = SixLabors.ImageSharp.PixelFormats.Rgb24(230uy, 25uy, 75uy), SixLabors.ImageSharp.PixelFormats.Rgb24(0uy, 110uy, 200uy)
            // the plot spans x 80–560 and y 50–380 over 9–21 %: CrOC's (100, 20) is at (560, 78)
            Expect.equal drawn.[560, 78] first "CrOC's top point, near the plot's top"
            Expect.equal (drawn.[590, 62], drawn.[590, 88]) (first, second) "the legend's swatches, one below the other"
            Directory.Delete(dir, true)
        }

        test "prediction pictures: each method's mask in its own column beside the photo and ground truth, a legend swatch in each class's colour; a mask of another size is refused" {
            let root = DataTests.tempDir "prediction-pictures"
            let voc = Path.Combine(root, "voc")
            SyntheticScenes.WriteVoc(voc, 2, 2, 5L, SyntheticScenes.SceneOptions(64, 64))
            let set = VocSegmentation(voc, "val")
            let masks (side: int) =
                let folder = Path.Combine(root, sprintf "masks-%d" side)
                Directory.CreateDirectory folder |> ignore
                VocSegmentation.SaveMask(Array.create (side * side) 1uy, side, side, Path.Combine(folder, set.Names.[0] + ".png"))
                folder
            let draw folder = PredictionPictures.Write(set, 64, [ "a"; "b" ], [| struct ("method", folder) |], [| 0 |], Path.Combine(root, "p.png"))
            draw (masks 64)
            use drawn = SixLabors.ImageSharp.Image.Load<SixLabors.ImageSharp.PixelFormats.Rgb24>(Path.Combine(root, "p.png"))
            // 128 px cells 8 px apart from x 10, below a title line; the legend a margin below the row
            let top = 10 + (BitmapFont.Height + 3) * 2
            Expect.equal drawn.[10 + 2 * 136 + 64, top + 64] PredictionPictures.Colours.[1] "the method's mask (all class 1) in the third column"
            let legend, entry = top + 136 - 8 + 10 + 2, (drawn.Width - 20) / 4
            Expect.equal (drawn.[12, legend], drawn.[12 + entry, legend]) (PredictionPictures.Colours.[0], PredictionPictures.Colours.[1]) "the legend's swatches"
            Expect.throwsT<DatasetException> (fun () -> draw (masks 32)) "a 32 px mask for 64 px cells"
            Directory.Delete(root, true)
        }

        test "result cells: mean ± sample std (n − 1) and the values, in percent; one value alone, without a std of 0 it did not measure" {
            Expect.equal (Statistics.PercentCell [ 0.2; 0.3 ]) "25.0 ± 7.1 (20.0 / 30.0)" "two seeds: std √((25 + 25) / 1) = 7.07"
            Expect.equal (Statistics.PercentCell [ 0.247 ]) "24.7" "one seed"
        }

        test "evaluation JSON: snake_case keys throughout (records included) and enums by name" {
            let path = Path.Combine(DataTests.tempDir "json", "result.json")
            FrozenBackboneOptions.WriteJson(path, {| probe = ProbeOptions(MaxTrain = 4); top1 = 0.5 |}, "top1")
            let text = File.ReadAllText path
            let root = Text.Json.JsonDocument.Parse(text).RootElement
            Expect.equal (root.GetProperty("probe").GetProperty("max_train").GetInt32()) 4 "a record's field in snake_case"
            Expect.equal (root.GetProperty("probe").GetProperty("precision").GetString()) "fp32" "an enum by name"
            Expect.isFalse (Text.RegularExpressions.Regex.IsMatch(text, "\"[A-Z][A-Za-z]*\":")) "no PascalCase key"
            // an earlier result is replaced; a file another process put there while the evaluation ran (a run's config.json once) is kept
            FrozenBackboneOptions.WriteJson(path, {| top1 = 0.75 |}, "top1")
            Expect.stringContains (File.ReadAllText path) "0.75" "the earlier result replaced"
            File.WriteAllText(path, "{ \"output\": \"runs/x\" }")
            Expect.throwsT<OutputException> (fun () -> FrozenBackboneOptions.WriteJson(path, {| top1 = 0.5 |}, "top1")) "refused"
            Expect.equal (File.ReadAllText path) "{ \"output\": \"runs/x\" }" "kept"
            Expect.isEmpty (Directory.GetFiles(present (Path.GetDirectoryName path), "*.tmp")) "no temporary file left"
            File.Delete path
        }

        test "the synthetic experiment's line for a run says what this start ran: a finished run rerun, a resumed one, a whole one" {
            let summary steps run = Training.TrainSummary(steps, run, (if run = 0L then nan else 9.0), (if run = 0L then nan else 8.0), float run, 1.0, "c", false)
            Expect.equal (SyntheticExperiment.Described(summary 60L 0L)) "60 steps, finished earlier" "not 'loss NaN → NaN'"
            Expect.equal (SyntheticExperiment.Described(summary 60L 40L)) "steps 21–60 of 60 in 40 s (resumed), loss 9.000 → 8.000" "not '60 steps in 40 s'"
            Expect.equal (SyntheticExperiment.Described(summary 60L 60L)) "60 steps in 60 s, loss 9.000 → 8.000" "whole"
        }

        test "a picture replaces only one croc-host drew, also when another file appeared at its path while it drew (a photo was replaced once)" {
            let dir = DataTests.tempDir "picture-meanwhile"
            let path = Path.Combine(dir, "p.png")
            let draw () =
                use picture = new SixLabors.ImageSharp.Image<SixLabors.ImageSharp.PixelFormats.Rgb24>(2, 2)
                PictureFile.Write(picture, path)
            draw ()
            draw () // over its own earlier picture
            File.WriteAllBytes(path, [| 1uy; 2uy |])
            Expect.throwsT<OutputException> draw "a file put there meanwhile"
            Expect.equal (File.ReadAllBytes path) [| 1uy; 2uy |] "kept"
            Directory.Delete(dir, true)
        }

        test "pictures written together (clusters' picture and its attention maps) are replaced together or not at all" {
            let dir = DataTests.tempDir "picture-pair"
            let main, maps = Path.Combine(dir, "c.png"), Path.Combine(dir, "c-attention.png")
            let picture (side: int) = new SixLabors.ImageSharp.Image<SixLabors.ImageSharp.PixelFormats.Rgb24>(side, side)
            do
                use a = picture 2
                use b = picture 2
                PictureFile.WriteTogether([ (a :> SixLabors.ImageSharp.Image), main; (b :> SixLabors.ImageSharp.Image), maps ])
            let before = File.ReadAllBytes main, File.ReadAllBytes maps
            use fresh = picture 3
            let failing = picture 3
            failing.Dispose() // its save fails, as a full disk fails the second file's write
            Expect.throws (fun () -> PictureFile.WriteTogether([ (fresh :> SixLabors.ImageSharp.Image), main; (failing :> SixLabors.ImageSharp.Image), maps ])) "the second picture's write fails"
            Expect.equal (File.ReadAllBytes main, File.ReadAllBytes maps) before "the first picture is not replaced without the second (a new picture stood beside old maps once)"
            Expect.sequenceEqual (Directory.GetFiles dir |> Array.map Path.GetFileName |> Array.sort) [| "c-attention.png"; "c.png" |] "no temporary file left"
            Directory.Delete(dir, true)
        }

        test "weighted k-NN against a naive float64 reference (cosine, the k nearest vote exp(sim / T)); chunking changes nothing; k above the bank is clamped; nothing is left behind" {
            let rng = Random 5
            let bank, queries = (tensorOf [| 40L; 6L |] (normal rng 240)).to_type(f32), (tensorOf [| 13L; 6L |] (normal rng 78)).to_type(f32)
            let labels = labelsOf [ for i in 0 .. 39 -> (i * 7) % 4 ]
            let naive (k: int) (t: float) =
                let rows (x: torch.Tensor) = rowsOf x |> Array.map Reference.normalise
                let b, l = rows bank, labels.data<int64>().ToArray()
                [| for q in rows queries ->
                    let votes = Array.zeroCreate 4
                    let sims = b |> Array.mapi (fun i r -> Reference.dot q r, i) |> Array.sortByDescending fst
                    for s, i in sims |> Array.truncate k do votes.[int l.[i]] <- votes.[int l.[i]] + exp (s / t)
                    votes |]
            for k, t in [ 1, 0.07; 5, 0.07; 20, 0.5; 100, 1.0 ] do
                let expected = naive k t
                for chunk in [ 3; 100 ] do
                    use scores = Knn.scores k t 4 chunk bank labels queries
                    let got = valuesOf scores
                    let worst = Array.concat expected |> Array.mapi (fun i e -> abs (got.[i] - e) / max 1.0 (abs e)) |> worstError
                    Expect.isLessThan worst 1e-4 $"k = {k}, T = {t}, chunks of {chunk}: the votes of the float64 reference"
            let argmaxes = [ for v in naive 5 0.07 -> Array.findIndex ((=) (Array.max v)) v ]
            let best = labelsOf argmaxes
            do
                use scores = Knn.scores 5 0.07 4 100 bank labels queries
                Expect.floatClose Accuracy.veryHigh (Knn.top1 scores best) 1.0 "top-1 of the reference's argmax"
                let count = argmaxes.Length
                for wrong in [ 1; 5; count ] do
                    let truth = labelsOf (argmaxes |> List.mapi (fun i c -> if i < wrong then (c + 1) % 4 else c))
                    Expect.floatClose Accuracy.veryHigh (Knn.top1 scores truth) (float (count - wrong) / float count) $"{wrong} of {count} queries given another class"
            let live = liveTensors ()
            do
                use scores = Knn.scores 5 0.07 4 3 bank labels queries
                Knn.top1 scores best |> ignore
            Expect.equal torch.Tensor.TotalCount live "no tensor left behind (the normalised bank and each chunk's votes stayed once)"
        }

        test "k-NN class folders below a shard range's folder (in-{0..1}.tar#train): the classes, not 'train'" {
            let dir = DataTests.tempDir "knn-shards"
            for i in 0 .. 1 do
                TarTests.writeTar Formats.Tar.TarEntryFormat.Pax (Path.Combine(dir, sprintf "in-%d.tar" i)) [ sprintf "train/cat/c%d.jpg" i, [| 1uy |]; sprintf "train/dog/d%d.jpg" i, [| 2uy |] ] |> ignore
            let bank = LabelledImages.Find(Path.Combine(dir, "in-{0..1}.tar#train"))
            Expect.sequenceEqual bank.Classes [ "cat"; "dog" ] "two classes"
            Expect.sequenceEqual bank.Labels [| 0; 1; 0; 1 |] "by their folders"
            Directory.Delete(dir, true)
        }

        test "k-NN class folders below each folder a range or pattern names (splits/s{0..1}, splits/s*), and below a .txt list's folder: the classes, not '..'" {
            let dir = DataTests.tempDir "knn-folders"
            let image (relative: string) =
                let path = Path.Combine(dir, relative)
                Directory.CreateDirectory(nonNull (Path.GetDirectoryName path)) |> ignore
                use picture = new SixLabors.ImageSharp.Image<SixLabors.ImageSharp.PixelFormats.Rgb24>(4, 4)
                SixLabors.ImageSharp.ImageExtensions.SaveAsPng(picture, path)
            for relative in [ "splits/s0/cat/a.png"; "splits/s0/dog/b.png"; "splits/s1/cat/c.png"; "lists/bird/d.png" ] do image relative
            for root in [ "splits/s{0..1}"; "splits/s*" ] do
                let bank = LabelledImages.Find(Path.Combine(dir, root))
                Expect.sequenceEqual bank.Classes [ "cat"; "dog" ] (root + ": the folders below each matched root")
                Expect.sequenceEqual bank.Labels [| 0; 1; 0 |] (root + ": by their folders")
            File.WriteAllLines(Path.Combine(dir, "lists", "list.txt"), [ "bird/d.png" ])
            let listed = LabelledImages.Find(Path.Combine(dir, "lists", "list.txt"))
            Expect.sequenceEqual listed.Classes [ "bird" ] "a list's files count from its folder"
            File.WriteAllLines(Path.Combine(dir, "lists", "outside.txt"), [ "../splits/s0/cat/a.png" ])
            Expect.throwsT<DatasetException> (fun () -> LabelledImages.Find(Path.Combine(dir, "lists", "outside.txt")) |> ignore) "a listed file outside the list's folder has no class folder"
            // Archives under a folder root (ImageNet's train/CLASS.tar): the archive is the class folder.
            let png = File.ReadAllBytes(Path.Combine(dir, "lists", "bird", "d.png"))
            Directory.CreateDirectory(Path.Combine(dir, "tars")) |> ignore
            TarTests.writeTar Formats.Tar.TarEntryFormat.Pax (Path.Combine(dir, "tars", "cat.tar")) [ "1.png", png ] |> ignore
            TarTests.writeTar Formats.Tar.TarEntryFormat.Pax (Path.Combine(dir, "tars", "dog.tar")) [ "images/2.png", png ] |> ignore
            let archived = LabelledImages.Find(Path.Combine(dir, "tars"))
            Expect.sequenceEqual archived.Classes [ "cat"; "dog" ] "each archive's name, not its first member folder"
            Directory.Delete(dir, true)
        }

        test "k-NN annotations: a file given two classes is refused naming both; the same class twice is one; a byte-order mark is no part of a name" {
            let dir = DataTests.tempDir "knn-annotations"
            let queries = Path.Combine(dir, "val")
            Directory.CreateDirectory queries |> ignore
            use picture = new SixLabors.ImageSharp.Image<SixLabors.ImageSharp.PixelFormats.Rgb24>(4, 4)
            SixLabors.ImageSharp.ImageExtensions.SaveAsPng(picture, Path.Combine(queries, "a.png"))
            let annotations = Path.Combine(dir, "annotations.txt")
            File.WriteAllLines(annotations, [ "a.png cat"; "a.png cat" ])
            Expect.sequenceEqual (LabelledImages.Find(queries, annotations).Classes) [ "cat" ] "repeated alike: one class"
            File.WriteAllLines(annotations, [ "a.png cat"; "a.png dog" ])
            let e = Expect.throwsC (fun () -> LabelledImages.Find(queries, annotations) |> ignore) id
            Expect.stringContains e.Message "'a.png' is given two classes, 'cat' and then 'dog'" "names both (the last one won silently once)"
            File.WriteAllText(annotations, "\uFEFFa.png cat\r\n", Text.UTF8Encoding(true))
            Expect.sequenceEqual (LabelledImages.Find(queries, annotations).Classes) [ "cat" ] "a byte-order mark and CRLF, as Windows editors write them (once: 'a.png: not in the annotations file')"
            Directory.Delete(dir, true)
        }

        test "eval-knn warns of a one-class bank and of queries that are bank images too" {
            let images n = [ for i in 0 .. n - 1 -> ImageEntry.File $"/data/img{i}.jpg" ]
            let set (entries: ImageEntry list) (classes: string list) = LabelledImages(entries, Array.init entries.Length (fun i -> i % classes.Length), classes)
            let bank = set (images 6) [ "cat"; "dog" ]
            Expect.isEmpty (EvalKnnCommand.Doubts(bank, set [ ImageEntry.File "/data/other.jpg" ] [ "cat"; "dog" ])) "a separate query set of two classes: nothing to say"
            let shared = List.ofSeq (EvalKnnCommand.Doubts(bank, set (images 3 @ [ ImageEntry.File "/data/q.jpg" ]) [ "cat"; "dog" ]))
            Expect.equal shared.Length 1 "queries inside the bank"
            Expect.stringContains shared.Head "3 of the 4 queries are bank images too" "counts them"
            // the same files through a linked folder (no warning once)
            let real = DataTests.tempDir "knn-bank"
            for i in 0 .. 1 do File.WriteAllBytes(Path.Combine(real, sprintf "img%d.jpg" i), [| 1uy |])
            let linked = real + "-link"
            Directory.CreateSymbolicLink(linked, real) |> ignore
            let through (folder: string) = [ for i in 0 .. 1 -> ImageEntry.File(Path.Combine(folder, sprintf "img%d.jpg" i)) ]
            let viaLink = List.ofSeq (EvalKnnCommand.Doubts(set (through real) [ "cat"; "dog" ], set (through linked) [ "cat"; "dog" ]))
            Expect.exists viaLink (fun d -> d.Contains "2 of the 2 queries are bank images too") "seen through the link"
            Directory.Delete linked
            Directory.Delete(real, true)
            let oneClass = List.ofSeq (EvalKnnCommand.Doubts(set (images 2) [ "cat" ], set [ ImageEntry.File "/data/q.jpg" ] [ "cat" ]))
            Expect.equal oneClass.Length 1 "one class"
            Expect.stringContains oneClass.Head "one class ('cat')" "names it"
            let strided = (set (images 6) [ "cat"; "dog" ]).Every(2) // keeps images 0, 2, 4: all cats
            Expect.stringContains (Seq.head (EvalKnnCommand.Doubts(strided, set [ ImageEntry.File "/data/q.jpg" ] [ "cat" ]))) "one class ('cat')" "the classes of the images kept, not of the set before --bank-stride"
        }

        test "a bank covers the queries whose classes it holds; the first query of a class it lacks is refused, named with why" {
            let images n = [ for i in 0 .. n - 1 -> ImageEntry.File $"/data/q{i}.jpg" ]
            let classes = [ "cat"; "dog"; "fox" ]
            let bank = LabelledImages(images 2, [| 0; 0 |], classes)
            let why (label: int) = $"why {classes.[label]}"
            bank.Covers(LabelledImages(images 2, [| 0; 0 |], classes), Func<int, string> why)
            for labels, first, named in [ [| 1; 0; 2 |], 0, "dog"; [| 0; 2; 1 |], 1, "fox" ] do
                let e = Expect.throwsC (fun () -> bank.Covers(LabelledImages(images 3, labels, classes), Func<int, string> why)) id
                Expect.isTrue (e :? DatasetException) (e.GetType().Name)
                Expect.equal e.Message $"/data/q{first}.jpg: class '{named}' is not among the 1 class of the bank (why {named})" $"the first query lacking its class ({labels})"
        }

        test "mIoU from a hand-computed confusion matrix, with ignored pixels and an absent class" {
            use _ = torch.NewDisposeScope()
            // Counted pairs (truth, prediction): (0,0) (0,1) (1,1) (1,1) (2,0); the 255 pixel is ignored.
            let confusion = Segmentation.confusion 4 (labelsOf [ 0; 1; 1; 1; 2; 0 ]) (labelsOf [ 0; 0; 1; 1; 255; 2 ])
            Expect.sequenceEqual (valuesOf confusion) [| 1.; 1.; 0.; 0.;  0.; 2.; 0.; 0.;  1.; 0.; 0.; 0.;  0.; 0.; 0.; 0. |] "confusion matrix"
            let iou = Segmentation.iou confusion
            Expect.floatClose Accuracy.veryHigh iou.[0] (1.0 / 3.0) "class 0: TP 1, FP 1, FN 1"
            Expect.floatClose Accuracy.veryHigh iou.[1] (2.0 / 3.0) "class 1: TP 2, FP 1, FN 0"
            Expect.equal iou.[2] 0.0 "class 2: missed"
            Expect.isTrue (Double.IsNaN iou.[3]) "class 3 absent from truth and prediction"
            Expect.floatClose Accuracy.veryHigh (Segmentation.meanIoU iou) (1.0 / 4.0) "mean over the four classes, the absent one as 0 (spec §12.1, Leopart)"
            Expect.stringContains (nonNull (EvalSegCommand.AbsentNote [| iou |])) "1 of the 4 classes occur in neither" "eval-seg says so"
            Expect.isNull (EvalSegCommand.AbsentNote [| [| 0.5; 0.0 |] |]) "no note when every class occurs"
            // over probe seeds: a class absent for one seed is 0 there (as in the mIoU), said, and noted whichever seed it was
            let seeds = [| [| 0.5; nan |]; [| 0.5; 0.2 |] |]
            Expect.equal (EvalSegCommand.ClassCell [| nan; 0.2 |]) "10.0 (absent for 1 of 2 probe seeds: 0 there)" "the mean counting the absent seed 0 (was n/a once)"
            Expect.equal (EvalSegCommand.ClassCell [| nan; nan |]) "  n/a (absent)" "absent for every seed"
            Expect.equal (EvalSegCommand.ClassCell [| 0.5; 0.2 |]) "35.0" "present for all"
            for order in [ seeds; Array.rev seeds ] do
                Expect.stringContains (nonNull (EvalSegCommand.AbsentNote order)) "1 of the 2 classes occur in neither" "noted whichever seed it was (only the first seed's counted once)"
        }

        test "a perfect predictor scores 1, a constant one as computed by hand" {
            use _ = torch.NewDisposeScope()
            let truth = labelsOf [ 0; 1; 1; 2 ]
            Expect.equal (Segmentation.meanIoU (Segmentation.iou (Segmentation.confusion 3 truth truth))) 1.0 "perfect"
            let constant = Segmentation.iou (Segmentation.confusion 3 (labelsOf [ 0; 0; 0; 0 ]) truth)
            Expect.floatClose Accuracy.veryHigh (Segmentation.meanIoU constant) (1.0 / 12.0) "(1/4 + 0 + 0) / 3"
        }

        test "confusion matrix: a label of C or more (not only 255) is not counted, whatever is predicted there" {
            use _ = torch.NewDisposeScope()
            // Counted pairs (truth, prediction): (0,0) (2,2) (1,0); labels 3 (= C), 7 and 255 are not.
            let confusion = Segmentation.confusion 3 (labelsOf [ 0; 1; 2; 2; 0; 1 ]) (labelsOf [ 0; 3; 2; 7; 1; 255 ])
            Expect.sequenceEqual (valuesOf confusion) [| 1.; 0.; 0.;  1.; 0.; 0.;  0.; 0.; 1. |] "only the labels in [0, C) count"
        }

        test "the probe's cross-entropy is the mean over the pixels not labelled 255 (hand-computed)" {
            use _ = torch.NewDisposeScope()
            // Two classes, one row of three pixels. Pixel 0: logits (0, 0), label 0: ln 2. Pixel 1: label 255,
            // not counted (its logits would cost 50). Pixel 2: logits (ln 3, 0), label 1: −ln(1/4) = ln 4.
            let logits = torch.tensor([| 0.0; 50.0; log 3.0;  0.0; 0.0; 0.0 |], dtype = torch.float64).view(1L, 2L, 1L, 3L)
            let labels = torch.tensor([| 0L; 255L; 1L |]).view(1L, 1L, 3L)
            Expect.floatClose Accuracy.veryHigh (toFloat (Segmentation.loss logits labels)) ((log 2.0 + log 4.0) / 2.0) "(ln 2 + ln 4) / 2"
        }

        test "a probe is finite only when its weights and its bias all are (eval-seg refuses to score one that is not)" {
            use _ = torch.NewDisposeScope()
            let probeWith (weight: float32) (bias: float32) : Segmentation.Probe =
                { Weight = torch.tensor([| 0.5f; weight; -1.0f; 2.0f |]).reshape(2L, 2L, 1L, 1L); Bias = torch.tensor([| bias; 0.25f |]) }
            Expect.isTrue (Segmentation.isFinite (probeWith 1.0f 0.0f)) "all finite"
            for bad in [ nanf; infinityf; -infinityf ] do
                Expect.isFalse (Segmentation.isFinite (probeWith bad 0.0f)) (sprintf "a weight %g" bad)
                Expect.isFalse (Segmentation.isFinite (probeWith 1.0f bad)) (sprintf "only the bias %g" bad) // --lr 1e39 overflows both: this one was untested
        }

        test "the probe's logits: conv then bilinear upsampling equals upsampling then conv (linear maps, weights summing to 1); the upsampling has half-pixel centres" {
            use _ = torch.NewDisposeScope()
            let rng = Random 5
            let features = torch.tensor(normal rng (2 * 6 * 5 * 5), dtype = f32).reshape(2L, 6L, 5L, 5L)
            let probe : Segmentation.Probe = { Weight = torch.tensor(normal rng (3 * 6), dtype = f32).reshape(3L, 6L, 1L, 1L); Bias = torch.tensor([| 0.5f; -1.0f; 2.0f |]) }
            for size in [ 5; 12; 17 ] do
                let a = Segmentation.upsample size (Segmentation.probe probe features)
                let b = Segmentation.probe probe (Segmentation.upsample size features)
                Expect.isLessThan (maxAbsDiff a b) 1e-5 (sprintf "size %d" size)
            // Which linear upsampling: bilinear with half-pixel centres (align_corners = false), worked by
            // hand. Output pixel i of 4 samples input position (i + 0.5)/2 − 0.5, clamped: 0, ¼, ¾, 1.
            let upsampled = Segmentation.upsample 4 (torch.tensor([| 0.0f; 1.0f; 2.0f; 3.0f |]).reshape(1L, 1L, 2L, 2L))
            let at = [| 0.0; 0.25; 0.75; 1.0 |]
            Expect.sequenceEqual (valuesOf upsampled) [| for y in at do for x in at -> 2.0 * y + x |] "2×2 → 4×4: value 2·y + x at the sampled positions"
        }

        test "eval-seg end to end: a backbone whose tokens carry the class colour is far above chance" {
            use _ = torch.NewDisposeScope()
            let weights = Path.Combine(DataTests.tempDir "colour", "colour.safetensors")
            BackboneExport.Write(weights, NamedTensors(Vit.named (colourBackbone ())).WithPrefix("backbone."))
            let probe = ProbeOptions(Size = 128, FeatureSize = 64, Epochs = 30, Milestone = 25, Batch = 8, CacheFeatures = true, Lr = 0.1)
            let result = EvalSegCommand.Evaluate(weights, NetworkChoice.Teacher, Nullable(), Nullable 1, voc.Force(), "train", "val", 7, probe, [ 0 ], ignore).Runs.[0]
            Expect.isTrue (Double.IsFinite result.MeanIoU) "finite"
            // Chance is 1/7 ≈ 0.14 and all-background ≈ 0.09; the colour alone separates the classes.
            Expect.isGreaterThan result.MeanIoU 0.25 (sprintf "mIoU %.3f" result.MeanIoU)
            let random = EvalSegCommand.Evaluate(weights, NetworkChoice.Teacher, Nullable 0, Nullable 1, voc.Force(), "train", "val", 7, ProbeOptions(Size = 64, FeatureSize = 32, Epochs = 2, Milestone = 1, Batch = 8, CacheFeatures = true), [ 0 ], ignore).Runs.[0]
            Expect.isTrue (Double.IsFinite random.MeanIoU) "the random baseline runs too"
        }

        test "eval-seg without cached features reports the evaluation's progress (each image runs the backbone); each probe seed's tensors go with it" {
            use _ = torch.NewDisposeScope()
            let dir = DataTests.tempDir "progress"
            let weights = Path.Combine(dir, "colour.safetensors")
            BackboneExport.Write(weights, NamedTensors(Vit.named (colourBackbone ())).WithPrefix("backbone."))
            let lines = Collections.Generic.List<string>()
            let probe = ProbeOptions(Size = 64, FeatureSize = 32, Epochs = 1, Milestone = 1, Batch = 8, CacheFeatures = false)
            let liveAfter (seeds: int list) =
                let before = liveTensors ()
                EvalSegCommand.Evaluate(weights, NetworkChoice.Teacher, Nullable(), Nullable 1, voc.Force(), "train", "val", 7, probe, seeds, (fun l -> lines.Add l)) |> ignore
                torch.Tensor.TotalCount - before
            let one = liveAfter [ 3 ]
            Expect.exists lines (fun l -> l.StartsWith "probe (seed 3) evaluation images: 6/6 (100%)") (String.Join("\n", lines))
            Expect.isLessThanOrEqual (liveAfter [ 3; 4; 5 ]) one "each seed's probe, optimiser buffers and confusion go with it (1–2 MB a seed stayed once)"
            Directory.Delete(dir, true)
        }

        test "real-photo suite: the README tables and the curve from hand-made results (mean ± sample std over seeds, one seed alone, the per-class means, both curves from the random start)" {
            let classes (road: float) (sky: float) = Collections.Generic.Dictionary<string, float>(dict [ "road", road; "sky", sky ])
            let row methodName seed camVid horse horseMean knn seconds road sky =
                RealPhotos.BackboneResult(methodName, seed, camVid, [| camVid |], classes road sky, horse, horseMean, knn, seconds)
            let results =
                RealPhotos.RealPhotoResults("full",
                    [| row "random init" 0 0.10 0.20 0.30 0.01 0.0 0.1 0.2; row "random init" 1 0.10 0.20 0.30 0.01 0.0 0.1 0.2
                       row "DINO-only" 0 0.40 0.50 0.55 0.10 600.0 0.4 0.5; row "DINO-only" 1 0.40 0.50 0.55 0.10 600.0 0.4 0.5
                       row "CrOC" 0 0.45 0.60 0.75 0.20 1200.0 0.5 0.7; row "CrOC" 1 0.55 0.70 0.85 0.30 2400.0 0.7 0.9 |],
                    [| struct ("init", 0, 0.10); struct ("CrOC", 250, 0.30); struct ("DINO-only", 250, 0.20) |],
                    readOnlyDict [ "pre-training", 60.0 ])
            // CrOC: CamVid 45/55, horse IoU 60/70, Weizmann mIoU 75/85, k-NN 20/30 (std of two values a apart: a/√2)
            Expect.stringContains (results.Table()) "| CrOC | 50.0 ± 7.1 (45.0 / 55.0) | 65.0 ± 7.1 (60.0 / 70.0) | 80.0 ± 7.1 (75.0 / 85.0) | 25.0 ± 7.1 (20.0 / 30.0) | 30.0 min |" "the CrOC row, each column its own number"
            Expect.stringContains (results.Table()) "| random init | 10.0 ± 0.0 (10.0 / 10.0) | 20.0 ± 0.0 (20.0 / 20.0) | 30.0 ± 0.0 (30.0 / 30.0) | 1.0 ± 0.0 (1.0 / 1.0) | – |" "the random row, no pre-training time"
            Expect.stringContains (results.Table()) "Mean ± std over seeds 0, 1 (values per seed in brackets)" "the note under the table"
            let seed0 = RealPhotos.RealPhotoResults("quick", results.Backbones |> Seq.filter (fun b -> b.Seed = 0) |> Array.ofSeq, [||], readOnlyDict [])
            Expect.stringContains (seed0.Table()) "| CrOC | 45.0 | 60.0 | 75.0 | 20.0 | 20.0 min |" "one seed: its values"
            Expect.stringContains (seed0.Table()) "Seed 0 alone; each CamVid value" "and a note that promises no std or brackets (it did once)"
            Expect.stringContains (results.ClassTable()) "| CrOC | 60.0 | 80.0 |" "per class: the mean over the seeds (road 50/70, sky 70/90)"
            let series = results.CurveSeries() |> Seq.map (fun struct (label, points) -> label, List.ofSeq points) |> Map.ofSeq
            Expect.equal series.["CrOC"] [ struct (0.0, 10.0); struct (250.0, 30.0) ] "CrOC's curve starts at the random initialisation"
            Expect.equal series.["DINO-only"] [ struct (0.0, 10.0); struct (250.0, 20.0) ] "so does DINO-only's"
            Expect.stringContains (results.CurveTable()) "| DINO-only | 10.0 | 20.0 |" "the curve table"
        }

        test "real-photo suite: Collect reads each backbone's numbers from its evaluations (means over probe seeds) and its pre-training time from metrics.jsonl" {
            let results, output =
                collectFrom "collect"
                    """[{"miou": 0.4, "per_class": [{"name": "road", "iou": 0.6}]}, {"miou": 0.6, "per_class": [{"name": "road", "iou": 0.8}]}]"""
                    """[{"miou": 0.7, "per_class": [{"name": "background", "iou": 0.9}, {"name": "horse", "iou": 0.5}]}, {"miou": 0.8, "per_class": [{"name": "background", "iou": 0.9}, {"name": "horse", "iou": 0.7}]}]"""
            let r = results.Backbones.[0]
            Expect.equal (r.CamVid, List.ofArray r.CamVidProbeSeeds, r.CamVidClasses.["road"]) (0.5, [ 0.4; 0.6 ], 0.7) "CamVid: its mIoU, each probe seed's, road's mean over the seeds"
            Expect.floatClose Accuracy.veryHigh r.Horse 0.6 "horse IoU: the horse class's mean over the probe seeds (0.5, 0.7)"
            Expect.equal (r.HorseMeanIoU, r.Knn, r.PretrainSeconds) (0.75, 0.25, 5.5) "Weizmann mIoU, k-NN top-1, the steps' seconds summed"
            Expect.equal results.Backbones.[1].PretrainSeconds 0.0 "the random initialisation was not pre-trained"
            Expect.equal (List.ofSeq results.Curve) [ struct ("CrOC", 250, 0.3) ] "the curve point's mIoU"
            Directory.Delete(output, true)
        }

        test "real-photo suite: a class absent for some probe seeds counts 0 there, as in the mIoU and eval-seg's table; absent for all is n/a, and results.json writes it as null" {
            let results, output =
                collectFrom "absent-class"
                    """[{"miou": 0.4, "per_class": [{"name": "road", "iou": null}, {"name": "bicycle", "iou": null}]}, {"miou": 0.6, "per_class": [{"name": "road", "iou": 0.2}, {"name": "bicycle", "iou": null}]}]"""
                    """[{"miou": 0.0, "per_class": [{"name": "horse", "iou": null}]}, {"miou": 0.5, "per_class": [{"name": "horse", "iou": 0.5}]}]"""
            Expect.floatClose Accuracy.veryHigh results.Backbones.[0].CamVidClasses.["road"] 0.1 "road: (0 + 0.2) / 2"
            Expect.floatClose Accuracy.veryHigh results.Backbones.[0].Horse 0.25 "horse: (0 + 0.5) / 2"
            Expect.stringContains (results.ClassTable()) "| CrOC | 10.0 | n/a (absent) |" "road 10.0 (it was NaN); bicycle absent everywhere"
            results.Write output // JSON has no NaN: the serializer refused it at the suite's last step
            use written = Text.Json.JsonDocument.Parse(File.ReadAllText(Path.Combine(output, "results.json")))
            let classes = written.RootElement.GetProperty("backbones").[0].GetProperty("CamVidClasses")
            Expect.equal (classes.GetProperty("bicycle").ValueKind) Text.Json.JsonValueKind.Null "an absent class is null"
            Expect.floatClose Accuracy.veryHigh (classes.GetProperty("road").GetDouble()) 0.1 "road as a number"
            Directory.Delete(output, true)
        }

        test "real-photo suite: a phase's time adds to what earlier invocations recorded in phases.json, and the other phases' are kept" {
            let output = DataTests.tempDir "phase-times"
            let record = Path.Combine(output, "phases.json")
            File.WriteAllText(record, "{\"pre-training\": 50.0, \"evaluation\": 100.0}")
            let suite = RealPhotos.RealPhotoSuite(RealPhotos.RealPhotoPlan.Quick, "data", output, ignore)
            suite.Phase("evaluation", fun () -> ())
            let times = RealPhotos.RealPhotoSuite.SpentSoFar(record, ignore)
            Expect.isTrue (times.["evaluation"] >= 100.0 && times.["evaluation"] < 160.0) (sprintf "100 s earlier + this one: %g" times.["evaluation"])
            Expect.equal times.["pre-training"] 50.0 "an earlier phase is kept"
            Directory.Delete(output, true)
        }

        test "k-NN end to end over several batches with an undecodable bank image: each query, a bank image, finds itself and its class (features and labels stay aligned)" {
            use _ = torch.NewDisposeScope()
            let root = DataTests.tempDir "knn-e2e"
            let rng = Random 7
            for name in [ "cat/a0.png"; "cat/a1.png"; "cat/a2.png"; "dog/b0.png"; "dog/b1.png"; "dog/b2.png" ] do
                let path = Path.Combine(root, name)
                Directory.CreateDirectory(nonNull (Path.GetDirectoryName path)) |> ignore
                use picture = new SixLabors.ImageSharp.Image<SixLabors.ImageSharp.PixelFormats.Rgb24>(32, 32)
                for y in 0 .. 31 do
                    for x in 0 .. 31 do picture.[x, y] <- SixLabors.ImageSharp.PixelFormats.Rgb24(byte (rng.Next 256), byte (rng.Next 256), byte (rng.Next 256))
                SixLabors.ImageSharp.ImageExtensions.SaveAsPng(picture, path)
            File.WriteAllBytes(Path.Combine(root, "cat", "a0-broken.png"), "not a picture"B) // sorts first: every later image moves up a row
            let bank = LabelledImages.Find root
            Expect.equal bank.Images.Count 7 "six pictures and the broken file"
            // the queries: the same images in reverse order, so they fall into other batches than in the bank
            let queries = LabelledImages(Array.rev (Array.ofSeq bank.Images), Array.rev bank.Labels, bank.Classes)
            let vit = { Vit.VitConfig.Tiny(8, 32) with Depth = 2 }
            let backbone = Vit.init vit (new torch.Generator(3UL, torch.CPU))
            let result = KnnEvaluation(vit, backbone, KnnOptions(K = 1, Size = 32, Batch = 2), ignore).Run(bank, queries)
            Expect.equal (result.Bank, result.Queries, result.Skipped) (6, 6, 2) "the broken file skipped in both sets"
            Expect.equal result.Top1 1.0 "every query's nearest bank image is itself, with its own class"
            Directory.Delete(root, true)
        }

        test "eval-seg's confusion matrix has the truth in its rows (each row sums to that class's labelled pixels) and keeps the predictions asked for" {
            use _ = torch.NewDisposeScope()
            let dir = DataTests.tempDir "confusion"
            let weights = Path.Combine(dir, "colour.safetensors")
            BackboneExport.Write(weights, NamedTensors(Vit.named (colourBackbone ())).WithPrefix("backbone."))
            // --size 64: the 64 px masks are scored as they are (no resize)
            let probe = ProbeOptions(Size = 64, FeatureSize = 32, Epochs = 2, Milestone = 1, Batch = 8, CacheFeatures = true)
            let result = EvalSegCommand.Evaluate(weights, NetworkChoice.Teacher, Nullable(), Nullable 1, voc.Force(), "train", "val", 7, probe, [ 0 ], ignore, keepPredictions = 2).Runs.[0]
            let truth = Array.zeroCreate<int64> 7
            let validation = VocSegmentation(voc.Force(), "val")
            for i in 0 .. validation.Count - 1 do
                let struct (_, mask) = validation.Load i
                for label in mask do if label <> 255uy then truth.[int label] <- truth.[int label] + 1L
            Expect.sequenceEqual [| for r in 0 .. 6 -> Seq.sum [ for c in 0 .. 6 -> result.Confusion.[r, c] ] |] truth "row r: the pixels labelled r"
            Expect.equal result.Predictions.Count 2 "the first 2 validation images' predictions, as asked"
            Expect.equal result.Predictions.[0].Length (64 * 64) "a class map at --size"
            Directory.Delete(dir, true)
        }

        test "--standardize shifts and scales each channel by the training features' mean and sample std, the evaluation features by the same (not their own)" {
            use _ = torch.NewDisposeScope()
            // (N 2, D 2, 1 × 2): channel 0 holds 1, 2, 3, 4 (mean 2.5, std √(5/3)); channel 1 holds 10, 30, 50, 70 (mean 40, std √(2000/3))
            let train = torch.tensor([| 1.0f; 2.0f; 10.0f; 30.0f; 3.0f; 4.0f; 50.0f; 70.0f |]).reshape(2L, 2L, 1L, 2L)
            let value = torch.tensor([| 2.5f; 5.0f; 40.0f; 0.0f |]).reshape(1L, 2L, 1L, 2L)
            let labels = torch.zeros(2L, 2L, 2L, dtype = torch.int64)
            let struct (struct (standardTrain, _), struct (standardValue, _)) = LinearProbe.Standardized(struct (train, labels), struct (value, labels.narrow(0L, 0L, 1L)))
            let s0, s1 = sqrt (5.0 / 3.0), sqrt (2000.0 / 3.0)
            let expectedTrain = [| -1.5 / s0; -0.5 / s0; -30.0 / s1; -10.0 / s1; 0.5 / s0; 1.5 / s0; 10.0 / s1; 30.0 / s1 |]
            let error (actual: torch.Tensor) expected = Array.map2 (fun a b -> abs (a - b)) (valuesOf actual) expected |> TestUtil.worstError
            Expect.isLessThan (error standardTrain expectedTrain) 1e-5 "training features: per channel (x − mean) / std"
            Expect.isLessThan (error standardValue [| 0.0; 2.5 / s0; 0.0; -40.0 / s1 |]) 1e-5 "evaluation features: by the training statistics"
        }

        test "cluster pictures and captions show the asked head's clustering of each image (problems are image-major: image · heads + head)" {
            use _ = torch.NewDisposeScope()
            let vit = { Vit.VitConfig.Tiny(8, 32) with Depth = 1 }
            // 2 images × 2 heads = 4 problems of 16 tokens and 3 columns. Problems 1 and 3 (head 1 of each
            // image): every token in cluster 0, valid; problems 0 and 2 (head 0): cluster 1, pruned.
            let masks = torch.zeros(2L, 4L, 16L, 3L)
            for v in 0 .. 1 do
                for p in 0 .. 3 do
                    for t in 0 .. 15 do masks.[int64 v, int64 p, int64 t, (if p % 2 = 1 then 0L else 1L)] <- torch.tensor(0.5f)
            let clusters : Clustering.Clusters =
                { Masks = masks
                  Validity = torch.tensor([| false; false; false; true; false; false; false; false; false; true; false; false |]).reshape(4L, 3L)
                  KStar = torch.tensor([| 2L; 3L; 2L; 1L |]); Columns = 3
                  Seeds = torch.zeros(4L, 5L, dtype = torch.int64); Stages = []; ProblemsPerImage = 2 }
            Expect.equal (ClusterPictures.Caption(clusters, 0, 1)) "image 1: K* = 3, 1 matched, 2 pruned" "image 0, head 1: problem 1"
            Expect.equal (ClusterPictures.Caption(clusters, 1, 1)) "image 2: K* = 1, 1 matched, 0 pruned" "image 1, head 1: problem 3"
            Expect.equal (ClusterPictures.Caption(clusters, 1, 0)) "image 2: K* = 2, 0 matched, 2 pruned" "image 1, head 0: problem 2"
            let black = Array.init (3 * 32 * 32) (fun i -> -ColorAugment.Mean.[i / 1024] / ColorAugment.Std.[i / 1024])
            use picture = ClusterPictures.Render(vit, [ [| black; black |]; [| black; black |] ], clusters, 1)
            let scale = ClusterPictures.ScaleFor 32
            for image in 0 .. 1 do
                for view in 0 .. 1 do
                    let struct (x, y) = ClusterPictures.ViewOrigin(32, image, view)
                    let centre = picture.[x + 12 * scale, y + 12 * scale] // token 5's centre, inside cluster 0
                    Expect.notEqual centre.R centre.G $"image {image}, view {view}: head 1's matched cluster, coloured (not head 0's pruned grey)"
        }

        test "attention maps: the patch in row r, column c of a head's map shows that head's CLS attention to token r · grid + c (not its transpose)" {
            use _ = torch.NewDisposeScope()
            let dir = DataTests.tempDir "attention"
            let vit = { Vit.VitConfig.Tiny(8, 32) with Depth = 1 }
            let backbone = Vit.init vit (new torch.Generator(4UL, torch.CPU))
            do
                use _ = torch.no_grad()
                backbone.PatchEmbed.Weight.zero_() |> ignore
                backbone.PatchEmbed.Bias.Value.zero_() |> ignore
            // Without the patch embedding the tokens are the position embeddings alone: the attention is
            // the same for every image and view, and read here off a forward of a black image.
            let output = Vit.forward vit backbone { Vit.ForwardOptions.Inference with LastBlock = true } (torch.zeros(1L, 3L, 32L, 32L))
            let attention = valuesOf (Vit.clsAttention output.Last.Value) // (1, h, 16)
            let picture, maps = Path.Combine(dir, "c.png"), Path.Combine(dir, "c-attention.png")
            let image = CrOC.Data.RgbImage(32, 32)
            ClusterPictures.Write(vit, Clustering.ClusteringConfig.Official, Croc.FeatureSpace.LastBlockKeys, backbone, [ image ], 0L, picture, maps) |> ignore
            use drawn = SixLabors.ImageSharp.Image.Load<SixLabors.ImageSharp.PixelFormats.Rgb24>(maps)
            // The layout: margin 10, a title line, then view 1 and one map per head, 4 px per view pixel, 6 px apart.
            let cell, top = 32 * 4, 10 + 2 * (BitmapFont.Height + 4)
            let mutable asymmetric = 0
            for head in 0 .. vit.Heads - 1 do
                let a = attention.[head * 16 .. head * 16 + 15]
                let left = 10 + (head + 1) * (cell + 6)
                for r in 0 .. 3 do
                    for c in 0 .. 3 do
                        let expected = 255.0 * a.[r * 4 + c] / Array.max a
                        if abs (a.[r * 4 + c] - a.[c * 4 + r]) / Array.max a > 0.05 then asymmetric <- asymmetric + 1
                        let pixel = drawn.[left + (c * 8 + 4) * 4, top + (r * 8 + 4) * 4]
                        Expect.isLessThanOrEqual (abs (float pixel.R - expected)) 1.0 $"head {head}, row {r}, column {c}"
            Expect.isGreaterThan asymmetric 0 "some maps are not symmetric, so a transpose would show"
            Directory.Delete(dir, true)
        }

        test "the linear probe's defaults are spec §12.1's (Leopart) and the k-NN's DINO's (k 20, T 0.07)" {
            let p = ProbeOptions()
            Expect.equal (p.Size, p.FeatureSize, p.Batch) (448, 100, 60) "448 px input, logits at 100², batch 60"
            Expect.equal (p.Epochs, p.Milestone, p.Lr) (25, 20, 0.01) "25 epochs, lr 0.01 × 0.1 from epoch 20"
            Expect.equal (p.Momentum, p.WeightDecay) (0.9, 1e-4) "SGD momentum 0.9, wd 1e-4"
            Expect.equal (p.CacheFeatures, p.Standardize, p.Grayscale) (false, false, false) "random crops each epoch, no standardising, colour"
            let k = KnnOptions()
            Expect.equal (k.K, k.Temperature) (20, 0.07) "k 20, T 0.07"
        }

        test "cluster colours stay distinct beyond the palette's 10 (K* up to --n-centroids-max)" {
            let colours = [ for k in 0 .. 63 -> ClusterPictures.ColourOf k ]
            Expect.equal (List.distinct colours).Length 64 "64 clusters, 64 colours"
            Expect.equal colours.[3] ClusterPictures.Palette.[3] "the palette first"
        }

        test "cluster pictures: size, and a cluster has the same colour in both views" {
            use _ = torch.NewDisposeScope()
            let vit = { Vit.VitConfig.Tiny(8, 32) with Depth = 1 }
            // Two views of one image, 4×4 patches; cluster 0 holds the left half of both views, 1 the
            // right half of view 1 only (pruned), 2 the right half of view 2 only (pruned).
            let masks = torch.zeros(2L, 1L, 16L, 3L)
            for v in 0 .. 1 do
                for t in 0 .. 15 do
                    let k = if t % 4 < 2 then 0 elif v = 0 then 1 else 2
                    masks.[int64 v, 0L, int64 t, int64 k] <- torch.tensor(0.5f)
            let clusters : Clustering.Clusters =
                { Masks = masks; Validity = torch.tensor([| true; false; false |]).unsqueeze(0); KStar = torch.tensor([| 3L |]); Columns = 3
                  Seeds = torch.zeros(1L, 5L, dtype = torch.int64); Stages = []; ProblemsPerImage = 1 }
            // Black views (normalised so that the denormalised pixels are 0).
            let black = Array.init (3 * 32 * 32) (fun i -> -ColorAugment.Mean.[i / 1024] / ColorAugment.Std.[i / 1024])
            use picture = ClusterPictures.Render(vit, [ [| black; black |] ], clusters)
            let scale = ClusterPictures.ScaleFor 32
            Expect.equal scale 8 "32 px views drawn 256 px wide: 64 px per patch"
            // The centre of token t in view v.
            let at (view: int) (token: int) =
                let struct (x, y) = ClusterPictures.ViewOrigin(32, 0, view)
                picture.[x + (token % 4) * 8 * scale + 4 * scale, y + (token / 4) * 8 * scale + 4 * scale]
            Expect.equal (at 0 0) (at 1 0) "cluster 0 has one colour in both views"
            Expect.notEqual (at 0 0) (at 0 3) "other clusters look different"
            Expect.equal (at 0 3) (at 1 3) "pruned clusters are grey in either view"
            Expect.equal (at 0 3).R (at 0 3).G "pruned: grey"
            Expect.notEqual (at 0 0).R (at 0 0).G "matched: coloured"
            // An outline where cluster 0 meets the pruned half (inside cluster 0's patch, at its right edge).
            let struct (x0, y0) = ClusterPictures.ViewOrigin(32, 0, 0)
            let edge = picture.[x0 + 2 * 8 * scale - 1, y0 + 4 * scale]
            Expect.notEqual edge (at 0 0) "outlined at the boundary"
            Expect.equal picture.[x0 + 1, y0 + 4 * scale] edge "and at its left edge, the view's border"
            let struct (_, below) = ClusterPictures.ViewOrigin(32, 1, 0)
            Expect.isGreaterThan picture.Height below "room for a caption and the legend"
            let ink = seq { for x in 0 .. picture.Width - 1 do for y in below .. picture.Height - 1 -> picture.[x, y] } |> Seq.exists (fun p -> p.R = 0uy && p.G = 0uy && p.B = 0uy)
            Expect.isTrue ink "the legend is drawn in the picture"
            Expect.equal (ClusterPictures.Assignments(clusters, 1, 0)) [| for t in 0 .. 15 -> if t % 4 < 2 then 0 else 2 |] "assignments read back"
        }
    ]
