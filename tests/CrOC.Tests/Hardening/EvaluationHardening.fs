/// The evaluation commands and the real-photo suite: their data checked before the work, their
/// outputs replaced only when theirs. Each test reproduces a problem found by trying the tool as a
/// user would.
module CrOC.Tests.EvaluationHardening

open System
open System.Diagnostics
open System.IO
open Expecto
open TorchSharp
open CrOC.Math
open CrOC.Host
open CrOC.Host.CommandLine
open CrOC.Host.Training
open CrOC.Host.Weights
open CrOC.Host.Runtime
open CrOC.Tests.TestUtil
open CrOC.Tests.HardeningShared

let tests =
    testList "evaluations" [
        test "the real-photo suite refuses bad data before pre-training: a split's missing mask, a damaged archive, a result file that is a folder; a job's bad input is the suite's exit 2" {
            // each was found by its evaluation after the whole pre-training (exit 1) once
            let root = DataTests.tempDir "real-root"
            let camVid, horses = Path.Combine(root, "camvid"), Path.Combine(root, "weizmann-horses")
            CrOC.Data.SyntheticScenes.WriteVoc(camVid, 6, 2, 1L)
            let splits = Path.Combine(camVid, "ImageSets", "Segmentation")
            for name in [ "trainval"; "test" ] do File.Copy(Path.Combine(splits, "train.txt"), Path.Combine(splits, name + ".txt"))
            CrOC.Data.SyntheticScenes.WriteVoc(horses, 4, 2, 2L)
            File.WriteAllLines(Path.Combine(horses, "labels.txt"), [ "background"; "horse" ]) // the class the suite reports
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

        test "an evaluation's JSON replaces an earlier result of its kind only (another file that appeared there during the work is kept, the result refused); it ends with its newline" {
            let dir = DataTests.tempDir "json-result"
            let path = Path.Combine(dir, "result.json")
            File.WriteAllText(path, "{\"top1\": 0.5}\n")
            Evaluation.FrozenBackboneOptions.WriteJson(path, {| top1 = 0.75 |}, "top1")
            let written = File.ReadAllText path
            Expect.equal (Text.Json.JsonDocument.Parse(written).RootElement.GetProperty("top1").GetDouble()) 0.75 "an earlier result replaced"
            Expect.stringEnds written "}\n" "a text file's last line ends with its newline"
            let foreign = "{\"miou\": 0.5}\n" // another command's result
            File.WriteAllText(path, foreign)
            let e = Expect.throwsC (fun () -> Evaluation.FrozenBackboneOptions.WriteJson(path, {| top1 = 0.25 |}, "top1")) id
            Expect.isTrue (e :? OutputException) (string e)
            Expect.equal (File.ReadAllText path) foreign "kept"
            Expect.equal (Directory.GetFiles dir |> Array.map Path.GetFileName) [| "result.json" |] "no temporary file left"
            Directory.Delete(dir, true)
        }

        test "an existing --json or picture path that is a FIFO or an endless device is no earlier result, told at once (no hang, no endless read); a result is read up to 1 MiB" {
            let dir = DataTests.tempDir "fifo"
            let fifo = Path.Combine(dir, "result.json")
            makeFifo fifo
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

        test "eval-seg says when its evaluation images are training images too (another split file of the same names), when a split lists names twice, and when --classes differs from labels.txt" {
            let dir = DataTests.tempDir "seg-overlap"
            let voc = Path.Combine(dir, "voc")
            CrOC.Data.SyntheticScenes.WriteVoc(voc, 4, 2, 3L)
            let splits = Path.Combine(voc, "ImageSets", "Segmentation")
            let train = File.ReadAllLines(Path.Combine(splits, "train.txt"))
            File.WriteAllLines(Path.Combine(splits, "again.txt"), Array.append train [| train.[0]; train.[0]; train.[0]; train.[1] |])
            let weights = Path.Combine(dir, "w.safetensors")
            writeTinyBackbone weights
            let names = File.ReadAllLines(Path.Combine(voc, "labels.txt")).Length
            let code, out, err = croc 120 [ "eval-seg"; "--weights"; weights; "--data"; voc; "--val-split"; "again"; "--size"; "32"; "--epochs"; "1"; "--classes"; string (names + 3) ]
            Expect.equal code 0 err
            Expect.stringContains out "note: 4 of the 4 evaluation images ('again') are in the training split ('train') too" "the overlap, though the split names differ"
            // names, not listings: one name listed four times was "3 name(s) more than once"
            Expect.stringContains out "note: 'again' lists 2 name(s) more than once (4 extra listing(s))" "the repeated names"
            // --classes 255 over Weizmann's two names was scored over 255 classes without a word
            let labels = Path.Combine(voc, "labels.txt")
            Expect.stringContains out $"note: --classes {names + 3}, where '{labels}' names {names}: classes {names}..{names + 2} are named 'class i'" "--classes against labels.txt"
            Directory.Delete(dir, true)
        }

        test "eval-seg's labels.txt: a folder or binary bytes there are refused, an empty one is said (each gave 21 classes, or 22, without a word once)" {
            let root = DataTests.tempDir "labels"
            let labels = Path.Combine(root, "labels.txt")
            let notes = ResizeArray<string>()
            Expect.equal (Evaluation.EvalSegCommand.ClassNames(root, Nullable(), Action<string>(notes.Add))).Length 21 "none: Pascal VOC's 21"
            Expect.isEmpty notes "nothing to say without one"
            File.WriteAllText(labels, "")
            Expect.equal (Evaluation.EvalSegCommand.ClassNames(root, Nullable(), Action<string>(notes.Add))).Length 21 "an empty one: 21 still"
            Expect.exists notes (fun n -> n.Contains "names no class: 21 classes assumed") "said"
            File.WriteAllBytes(labels, [| 0x89uy; 0x50uy; 0x4euy; 0x47uy; 0x0duy; 0x0auy; 0x1auy; 0x0auy; 0uy; 0uy; 0uy; 13uy |]) // a PNG's first bytes
            Expect.stringContains (thrown<CrOC.Data.DatasetException> (fun () -> Evaluation.EvalSegCommand.ClassNames(root, Nullable(), ignore) |> ignore) "binary").Message "holds control characters" "binary refused"
            File.Delete labels
            Directory.CreateDirectory labels |> ignore
            Expect.stringContains (thrown<CrOC.Data.DatasetException> (fun () -> Evaluation.EvalSegCommand.ClassNames(root, Nullable 2, ignore) |> ignore) "a folder").Message "is a folder, not the class names" "a folder refused"
            Directory.Delete(root, true)
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

        test "eval-seg: a training mask all void (255) is a batch skipped, not 'diverged, use a smaller --lr'; all void is refused as the data's (an evaluation split all void before the probe trains); --standardize with one feature per channel centres only" {
            let dir, voc, weights = vocWithBackbone "seg-void" 2 1 3L
            let train = File.ReadAllLines(Path.Combine(voc, "ImageSets", "Segmentation", "train.txt"))
            let allVoid name =
                let mask = Path.Combine(voc, "SegmentationClass", name + ".png")
                let info = SixLabors.ImageSharp.Image.Identify(mask)
                use image = new SixLabors.ImageSharp.Image<SixLabors.ImageSharp.PixelFormats.L8>(info.Width, info.Height, SixLabors.ImageSharp.PixelFormats.L8(255uy))
                SixLabors.ImageSharp.ImageExtensions.SaveAsPng(image, mask)
            // the evaluation mask's top half void (as VOC's borders are): it has labels to score
            let valNames = File.ReadAllLines(Path.Combine(voc, "ImageSets", "Segmentation", "val.txt"))
            let valMask = Path.Combine(voc, "SegmentationClass", valNames.[0] + ".png")
            let labels, width, height = CrOC.Data.VocSegmentation.LoadMask valMask
            Array.fill labels 0 (width * height / 2) 255uy
            CrOC.Data.VocSegmentation.SaveMask(labels, width, height, valMask)
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
            // an evaluation split all void was refused only after the probe had trained
            for name in File.ReadAllLines(Path.Combine(voc, "ImageSets", "Segmentation", "val.txt")) do allVoid name
            let code, out, err = croc 120 [ "eval-seg"; "--weights"; weights; "--data"; voc; "--size"; "32"; "--epochs"; "1"; "--batch"; "1" ]
            Expect.equal code 2 err
            Expect.stringContains err "validation image(s) has a class label (all are 255, ignored): there is nothing to score" "refused"
            Expect.isFalse (out.Contains "training batches") (sprintf "before the probe trains:\n%s" out)
            let code, out, err = croc 120 [ "eval-seg"; "--weights"; weights; "--data"; voc; "--size"; "32"; "--epochs"; "1"; "--batch"; "1"; "--cache-features" ]
            Expect.equal code 2 err
            Expect.stringContains err "validation image(s) has a class label (all are 255, ignored): there is nothing to score" "refused with --cache-features too"
            Expect.isFalse (out.Contains "frozen features of") (sprintf "before any feature pass:\n%s" out)
            Directory.Delete(dir, true)
            let dir, voc, weights = vocWithBackbone "seg-one-feature" 1 1 3L
            let code, _, err = croc 120 [ "eval-seg"; "--weights"; weights; "--data"; voc; "--size"; "8"; "--feature-size"; "1"; "--epochs"; "1"; "--cache-features"; "--standardize" ]
            Expect.equal code 0 err // NaN once: the unbiased std of one value, and libtorch's warning line
            Expect.isFalse (err.Contains "degrees of freedom") err
            Directory.Delete(dir, true)
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
            // The masks and the JSON are one write: a file put at the last mask's path while the probe trains (after the
            // check before the work) refuses the write, and leaves the first mask and the JSON as they were (the masks
            // before it in the split were replaced once; a stop between the masks and the JSON left the two mismatched).
            let valNames = File.ReadAllLines(Path.Combine(voc, "ImageSets", "Segmentation", "val.txt"))
            let firstMask, lastMask = Path.Combine(predictions, valNames.[0] + ".png"), Path.Combine(predictions, Array.last valNames + ".png")
            Expect.notEqual firstMask lastMask "two evaluation images"
            File.Delete firstMask
            let code, _, err = croc 120 evalArgs
            Expect.equal code 0 err
            let long = DateTime(2000, 1, 1, 0, 0, 0, DateTimeKind.Utc)
            File.SetLastWriteTimeUtc(firstMask, long)
            File.Delete lastMask
            let json = Path.Combine(dir, "seg.json")
            let info = ProcessStartInfo("dotnet", RedirectStandardOutput = true, RedirectStandardError = true)
            for a in hostDll :: (evalArgs |> List.map (fun a -> if a = "1" then "200" else a)) @ [ "--json"; json ] do info.ArgumentList.Add a // 200 epochs
            use p = present (Process.Start info)
            let err = p.StandardError.ReadToEndAsync()
            let rec untilEpoch () =
                match p.StandardOutput.ReadLine() with
                | null -> false
                | line when line.Contains "epoch 40/200" -> true
                | _ -> untilEpoch ()
            Expect.isTrue (untilEpoch ()) "the probe trained"
            (present (Process.Start("kill", [| "-STOP"; string p.Id |]))).WaitForExit() // held while the file is put there: its epochs take milliseconds
            File.Copy(mask, lastMask) // the ground truth, meanwhile
            (present (Process.Start("kill", [| "-CONT"; string p.Id |]))).WaitForExit()
            p.StandardOutput.ReadToEnd() |> ignore
            if not (p.WaitForExit 120_000) then p.Kill true; failtest "eval-seg did not end"
            Expect.equal p.ExitCode 2 err.Result
            Expect.stringContains err.Result "was written by another process while this one worked" "the file put there meanwhile is kept"
            Expect.equal (File.GetLastWriteTimeUtc firstMask) long "the first mask left as it was"
            Expect.isFalse (File.Exists json) "no JSON"
            File.Delete lastMask
            // a split naming an image twice is one mask of the one write (its second rename was refused as another process's file once)
            File.WriteAllLines(Path.Combine(voc, "ImageSets", "Segmentation", "twice.txt"), [ valNames.[0]; valNames.[0] ])
            File.Delete firstMask // absent: its two renames would not replace (a present one was replaced twice, unseen)
            let code, _, err = croc 120 (evalArgs @ [ "--val-split"; "twice"; "--json"; json ])
            Expect.equal code 0 err
            Expect.isTrue (File.Exists json) "the JSON written"
            // a killed run's temporaries (its one write held up to --save-count) are removed at the next start; a live
            // writer's and any other *.tmp stay
            let deadPid = (use ended = present (Process.Start("true")) in ended.WaitForExit(); ended.Id)
            let guid = Guid.NewGuid().ToString("N")
            let dead, live, other = Path.Combine(predictions, sprintf "a.png.%d.%s.tmp" deadPid guid), Path.Combine(predictions, sprintf "b.png.%d.%s.tmp" Environment.ProcessId guid), Path.Combine(predictions, "notes.tmp")
            for file in [ dead; live; other ] do File.WriteAllText(file, "x")
            let code, _, err = croc 120 evalArgs
            Expect.equal code 0 err
            Expect.equal [ File.Exists dead; File.Exists live; File.Exists other ] [ false; true; true ] "only the dead writer's removed"
            for file in [ live; other ] do File.Delete file
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

        test "eval-seg removes a killed run's temporary files in --save-predictions' subfolders too (a split may name its images in subfolders)" {
            let dir, voc, weights = vocWithBackbone "predictions-leftovers" 4 2 5L
            let predictions = Path.Combine(dir, "predictions")
            let sub = Directory.CreateDirectory(Path.Combine(predictions, "sub")).FullName
            let dead = Path.Combine(sub, sprintf "a.png.2147483000.%s.tmp" (Guid.NewGuid().ToString("N")))
            File.WriteAllText(dead, "x")
            let code, _, err = croc 120 [ "eval-seg"; "--weights"; weights; "--data"; voc; "--size"; "32"; "--epochs"; "1"; "--cache-features"; "--save-predictions"; predictions ]
            Expect.equal code 0 err
            Expect.isFalse (File.Exists dead) "the dead writer's temporary file in a subfolder removed"
            Directory.Delete(dir, true)
        }

        test "eval-knn warns when the undecodable images it skipped leave the bank one class" {
            let dir = DataTests.tempDir "knn-skipped-class"
            let weights = Path.Combine(dir, "w.safetensors")
            writeTinyBackbone weights
            for name in [ "one"; "two" ] do writeBlankPng (Path.Combine(dir, "bank", "cat", name + ".png"))
            Directory.CreateDirectory(Path.Combine(dir, "bank", "dog")) |> ignore
            File.WriteAllText(Path.Combine(dir, "bank", "dog", "broken\nnews.png"), "not a picture") // a line break in its name
            let code, text, err = croc 120 [ "eval-knn"; "--weights"; weights; "--bank"; Path.Combine(dir, "bank"); "--queries"; Path.Combine(dir, "bank") ]
            Expect.equal code 0 err
            Expect.stringContains text "2 undecodable images skipped" "the broken dog skipped (in the bank and among the queries)"
            Expect.stringContains text "dog/broken\\nnews.png: " "a skipped file's name is said escaped, on its line"
            Expect.stringContains text "with the undecodable images skipped, the bank has one class ('cat')" "and the one class it leaves said (the check before the run saw two)"
            Directory.Delete(dir, true)
        }

        test "eval-knn refuses queries of a class that --bank-stride or undecodable images leave the bank without, as it refuses one of an empty class folder (scored, never right, without a word once)" {
            let dir = DataTests.tempDir "knn-lost-class"
            let weights = Path.Combine(dir, "w.safetensors")
            writeTinyBackbone weights
            for name in [ "bank/cat/a.png"; "bank/cat/b.png"; "bank/cat/c.png"; "bank/dog/d.png"; "queries/cat/q.png"; "queries/dog/q.png" ] do writeBlankPng (Path.Combine(dir, name))
            let knn (extra: string list) = croc 120 ([ "eval-knn"; "--weights"; weights; "--bank"; Path.Combine(dir, "bank"); "--queries"; Path.Combine(dir, "queries"); "--size"; "32" ] @ extra)
            let code, out, err = knn [ "--bank-stride"; "2" ] // keeps a.png and c.png
            Expect.equal code 2 err
            Expect.stringContains err "dog/q.png: class 'dog' is not among the 1 class of the bank (--bank-stride 2 keeps none of its 1 image)" "refused, saying why"
            Expect.isFalse (out.Contains "k-NN:") "before the run (known from the names)"
            File.WriteAllText(Path.Combine(dir, "bank", "dog", "d.png"), "not a picture")
            let code, _, err = knn []
            Expect.equal code 2 err
            Expect.stringContains err "dog/q.png: class 'dog' is not among the 1 class of the bank (none of its 1 bank image decodes)" "refused, saying why"
            Directory.Delete(dir, true)
        }

        test "a checkpoint lacking one network: eval-knn, export and clusters say which one stands for it and record the one used (the teacher as 'student' once, the student silently)" {
            let dir = DataTests.tempDir "lacking-network"
            let only name = Path.Combine(dir, name + "-only.safetensors")
            for name in [ "teacher"; "student" ] do Safetensors.Write(only name, tinyBackbone().WithPrefix(name + "."))
            for name in [ "cat/a.png"; "cat/b.png"; "dog/c.png"; "dog/d.png" ] do writeBlankPng (Path.Combine(dir, "bank", name))
            let knn (weights: string) (extra: string list) =
                let json = Path.Combine(dir, weights + ".json")
                let code, out, err = croc 120 ([ "eval-knn"; "--weights"; weights; "--bank"; Path.Combine(dir, "bank"); "--queries"; Path.Combine(dir, "bank"); "--size"; "32"; "--json"; json ] @ extra)
                Expect.equal code 0 err
                out, Text.Json.JsonDocument.Parse(File.ReadAllText json).RootElement
            let out, record = knn (only "teacher") [ "--backbone"; "student" ]
            let note = "note: no student.* tensors: the teacher's weights stand for both"
            Expect.stringContains out note "the import's note said"
            Expect.stringContains out "; teacher, input 32 px" "the network evaluated named"
            Expect.equal (nonNull (record.GetProperty("backbone").GetString())) "teacher" "and recorded"
            Expect.contains [ for w in record.GetProperty("warnings").EnumerateArray() -> nonNull (w.GetString()) ] note "the note kept with the warnings"
            let out, record = knn (only "student") []
            Expect.stringContains out "note: no teacher.* tensors: the student's weights stand for both" "said"
            Expect.stringContains out "; student, input 32 px" "the student evaluated, named (\"single network\" once)"
            Expect.equal (nonNull (record.GetProperty("backbone").GetString())) "student" "and recorded"
            let code, out, err = croc 120 [ "export"; "--weights"; only "teacher"; "--network"; "student"; "--output"; Path.Combine(dir, "e") ]
            Expect.equal code 0 err
            Expect.stringContains out "(teacher)" "the network loaded"
            let card = Text.Json.JsonDocument.Parse(File.ReadAllText(Path.Combine(dir, "e.json"))).RootElement
            Expect.equal (nonNull (card.GetProperty("network").GetString())) "teacher" "the card names the network exported"
            let code, out, err = croc 120 [ "clusters"; "--weights"; only "student"; "--image"; Path.Combine(dir, "bank", "cat", "a.png"); "--output"; Path.Combine(dir, "c.png") ]
            Expect.equal code 0 err
            Expect.stringContains out "note: no teacher.* tensors: the student's weights stand for both" "clusters says which network it draws"
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
            Expect.stringContains out ("wrote " + json "teacher.json") "the result's file is named"
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
            let record = Text.Json.JsonDocument.Parse(File.ReadAllText json).RootElement
            let seeds = [ for r in record.GetProperty("runs").EnumerateArray() -> r.GetProperty("miou").GetDouble() ]
            let mean = List.average seeds
            Expect.notEqual seeds.[0] seeds.[1] "the probe seeds' mIoUs differ (else any std formula gives 0)"
            Expect.floatClose Accuracy.high (record.GetProperty("miou").GetDouble()) mean "the mean over the probe seeds"
            Expect.floatClose Accuracy.high (record.GetProperty("miou_std").GetDouble()) (sqrt ((seeds |> List.sumBy (fun x -> (x - mean) ** 2.0)) / 1.0)) "and their sample std (printed only, once)"
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

        test "long work reports progress with an ETA; clusters writes its picture beside the weights, not into the current folder" {
            let lines = ResizeArray<string>()
            let progress = ProgressReport("feature pass", 4L, Action<string>(lines.Add), TimeSpan.Zero)
            for _ in 1 .. 4 do progress.Advance()
            Expect.equal lines.Count 4 "a line per step with no interval"
            Expect.stringContains lines.[0] "feature pass: 1/4 (25%)" "what, how far"
            Expect.stringContains lines.[0] "ETA" "and when it will end"
            Expect.isFalse (lines.[3].Contains "ETA") "no ETA once done"
            // the last line comes within the interval too
            let quiet = ResizeArray<string>()
            let progress = ProgressReport("feature pass", 4L, Action<string>(quiet.Add), TimeSpan.FromHours 1.0)
            for _ in 1 .. 4 do progress.Advance()
            Expect.equal (quiet |> Seq.map (fun l -> l.Split(',').[0]) |> List.ofSeq) [ "feature pass: 4/4 (100%)" ] "one line, the last"
            // 999 of 1000 done after e ≥ 1.1 s: the one left takes e/999 at that rate (under a second
            // unless e passes 16 minutes), where the whole work's time would be e·1000/999 ≥ 1 s
            let timed = ResizeArray<string>()
            let progress = ProgressReport("feature pass", 1000L, Action<string>(timed.Add), TimeSpan.Zero)
            Threading.Thread.Sleep 1100
            progress.Advance 999L
            Expect.stringContains timed.[0] "elapsed, ETA 00:00:00" "the remaining work's time"
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
            // an undecodable image of --data is said by its name, escaped (a line break in it), on its line
            let data = Directory.CreateDirectory(Path.Combine(dir, "data")).FullName
            File.Copy(image, Path.Combine(data, "scene.jpg"))
            File.WriteAllText(Path.Combine(data, "broken\nnews.png"), "not a picture")
            let code, out, err = croc 120 [ "clusters"; "--weights"; weights; "--data"; data ]
            Expect.equal code 0 err
            Expect.stringContains out "skipped " "said"
            Expect.stringContains out "data/broken\\nnews.png: " "the skipped file's name escaped"
            // a default output inside --data is refused by its path
            let code, _, err = croc 120 [ "clusters"; "--weights"; weights; "--data"; dir ]
            Expect.equal code 2 err
            Expect.stringContains err $"""--output '{Path.Combine(dir, "w-clusters.png")}' lies inside --data '{dir}'""" "the default output's path"
            // a default output refused is named as the default (--output '…' was said with no --output given, once)
            File.WriteAllText(Path.Combine(dir, "w-clusters.png"), "a user's file")
            let code, _, err = croc 120 [ "clusters"; "--weights"; weights; "--image"; image ]
            Expect.equal code 2 err
            Expect.stringContains err "--output (by default beside --weights) '" "the default named as such"
            Directory.Delete(dir, true)
        }

        test "eval-knn's peak memory grows with the bank by its features, not by every image's tokens (the CLS views kept the whole (B, 1 + N, D) storage once)" {
            let dir = DataTests.tempDir "knn-peak"
            let weights = Path.Combine(dir, "w.safetensors")
            writeTinyBackbone weights
            for i in 0 .. 999 do // 1,000 distinct 8 px photos in two classes
                let folder = Directory.CreateDirectory(Path.Combine(dir, "bank", (if i % 2 = 0 then "a" else "b"))).FullName
                use image = new SixLabors.ImageSharp.Image<SixLabors.ImageSharp.PixelFormats.Rgb24>(8, 8, SixLabors.ImageSharp.PixelFormats.Rgb24(byte i, byte (i / 256), 7uy))
                SixLabors.ImageSharp.ImageExtensions.SaveAsPng(image, Path.Combine(folder, sprintf "%04d.png" i))
            // The most memory (VmHWM) `eval-knn --bank-stride stride` held, in MB: 257 tokens an image at 128 px.
            let peakMb (stride: int) =
                let info = ProcessStartInfo("dotnet", RedirectStandardOutput = true, RedirectStandardError = true)
                for a in [ hostDll; "eval-knn"; "--weights"; weights; "--bank"; Path.Combine(dir, "bank"); "--queries"; Path.Combine(dir, "bank"); "--query-stride"; "100"
                           "--bank-stride"; string stride; "--size"; "128"; "--batch"; "25"; "--threads"; "1" ] do info.ArgumentList.Add a
                use p = present (Process.Start info)
                let out, err = p.StandardOutput.ReadToEndAsync(), p.StandardError.ReadToEndAsync()
                let mutable peak = 0L
                let watch = Stopwatch.StartNew()
                while not (p.WaitForExit 50) do
                    if watch.Elapsed.TotalSeconds > 300.0 then p.Kill true; failtest "eval-knn did not end within 300 s"
                    try p.Refresh(); peak <- max peak p.PeakWorkingSet64 with :? InvalidOperationException -> () // it ended meanwhile
                p.WaitForExit()
                Expect.equal p.ExitCode 0 (out.Result + err.Result)
                float peak / 1e6
            let few, all = peakMb 10, peakMb 1
            // 900 more images: 0.7 MB of features; their tokens would be 900 × 257 × 192 × 4 B = 178 MB (+269 MB measured
            // before the fix, +15 MB after). Batches of 25: larger ones fragment the heap, a growth that levels off
            // (100: +240 MB at 2 batches, +460 MB at 10), not one per image
            Expect.isLessThan (all - few) 150.0 (sprintf "peak of 100 images %.0f MB, of 1,000 %.0f MB" few all) // room for another machine's GC budgets
            Directory.Delete(dir, true)
        }
    ]
