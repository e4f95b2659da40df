/// Bad input: options, config files, environment and sizes end with one line and a documented exit
/// code. Each test reproduces a problem found by trying the tool as a user would.
module CrOC.Tests.InputHardening

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
open CrOC.Tests.HardeningShared

/// This process's open-files limit (RLIMIT_NOFILE), to run out of descriptors for a moment (the tests run one at a time).
module private OpenFilesLimit =
    [<Struct; Runtime.InteropServices.StructLayout(Runtime.InteropServices.LayoutKind.Sequential)>]
    type Limit =
        val mutable Current: uint64
        val mutable Maximum: uint64

    [<Runtime.InteropServices.DllImport("libc", SetLastError = true)>]
    extern int getrlimit(int resource, Limit& limit)

    [<Runtime.InteropServices.DllImport("libc", SetLastError = true)>]
    extern int setrlimit(int resource, Limit& limit)

    /// `f ()` with the soft limit at the lowest descriptor number free now: every open in it fails with EMFILE.
    let exhausted (f: unit -> 'a) : 'a =
        let mutable saved = Limit()
        if getrlimit (7, &saved) <> 0 then failwith "getrlimit"
        let lowestFree = // an open takes the lowest free number
            use probe = File.OpenHandle "/dev/null"
            int (probe.DangerousGetHandle())
        let mutable low = Limit(Current = uint64 lowestFree, Maximum = saved.Maximum)
        if setrlimit (7, &low) <> 0 then failwith "setrlimit"
        try f ()
        finally setrlimit (7, &saved) |> ignore

/// Asserts Timing.Median's lines for `label` in `text`: `warmups` runs marked warm-up, then `repeats`
/// timed ones, and a summary of the timed runs alone (their count, min and max; for an odd count the
/// median is the middle one, all as printed). Returns the printed median (ms).
let private expectTimedRuns (label: string) (warmups: int) (repeats: int) (text: string) =
    let escaped = Text.RegularExpressions.Regex.Escape label
    let runs =
        [ for m in Text.RegularExpressions.Regex.Matches(text, sprintf @"(?m)^  %s run \d+( \(warm-up\))?: ([\d.]+) ms" escaped) ->
            m.Groups.[1].Success, float m.Groups.[2].Value ]
    Expect.equal (List.map fst runs) (List.init (warmups + repeats) (fun i -> i < warmups)) (sprintf "%s: %d runs marked warm-up, then %d timed:\n%s" label warmups repeats text)
    let summary = Text.RegularExpressions.Regex.Match(text, sprintf @"(?m)^%s: median ([\d.]+) ms over (\d+) runs \(min ([\d.]+), max ([\d.]+)\)" escaped)
    Expect.isTrue summary.Success (sprintf "%s: a summary line" label)
    let timed = runs |> List.filter (fst >> not) |> List.map snd |> List.sort
    let median = float summary.Groups.[1].Value
    Expect.equal (int summary.Groups.[2].Value, float summary.Groups.[3].Value, float summary.Groups.[4].Value) (repeats, List.head timed, List.last timed) (sprintf "%s: over the timed runs, their min and max" label)
    if repeats % 2 = 1 then Expect.equal median timed.[repeats / 2] (sprintf "%s: the median is the middle timed run" label)
    median

/// The bounds of the rate of `items` done in a time printed to 0.1 ms (`ms`): items/s at ms ± 0.05.
let private rateBounds (items: float) (ms: float) = 1e3 * items / (ms + 0.05), 1e3 * items / max 1e-9 (ms - 0.05)

let tests =
    testList "input" [
        test "bench-data reports a skipped file once, not once per run and worker count; it times --batches past one epoch; its rates are the timed runs' images over their seconds" {
            let dir = DataTests.sceneFolder 8 64 48
            File.WriteAllText(Path.Combine(dir, "broken.jpg"), "not an image")
            let more = DataTests.sceneFolder 2 64 48
            let code, out, err = croc 120 [ "bench-data"; "--data"; dir + "," + more; "--size"; "32"; "--patch"; "8"; "--batch"; "4"; "--batches"; "2"; "--workers"; "0,1" ]
            Expect.equal code 0 (out + err)
            Expect.stringContains out "11 images from" "two roots, comma-separated as train's --data ('does not exist' once)"
            let skips = err.Split('\n') |> Array.filter (fun l -> l.Contains "skipped" && l.Contains "broken.jpg")
            Expect.equal skips.Length 1 (sprintf "one line (8 once: 4 runs × 2 worker counts): %s" err)
            let code, out, err = croc 120 [ "bench-data"; "--data"; more; "--size"; "32"; "--patch"; "8"; "--batch"; "2"; "--batches"; "5"; "--workers"; "1" ]
            Expect.equal code 0 (out + err)
            Expect.stringContains out "runs of 10 images" "five batches over five epochs of one batch (one epoch's batch only once)"
            // each run printed (images, milliseconds); the summary's median, min and max are of the 3 timed runs' rates
            for label in [ "32px views, 1 worker(s)"; "synthetic scenes (96px views of 128px scenes), 1 worker(s)" ] do
                let escaped = Text.RegularExpressions.Regex.Escape label
                let runs =
                    [ for m in Text.RegularExpressions.Regex.Matches(out, sprintf @"(?m)^  %s run (\d+)( \(warm-up\))?: (\d+) images in ([\d.]+) ms$" escaped) ->
                        int m.Groups.[1].Value, m.Groups.[2].Success, float m.Groups.[3].Value, float m.Groups.[4].Value ]
                Expect.equal [ for run, warm, _, _ in runs -> run, warm ] [ 1, true; 2, false; 3, false; 4, false ] (sprintf "%s: a warm-up, then 3 timed runs:\n%s" label out)
                // the k-th smallest rate lies between the k-th smallest lower and upper bounds
                let bounds = [ for _, warm, images, ms in runs do if not warm then rateBounds images ms ]
                let low, high = List.sort (List.map fst bounds), List.sort (List.map snd bounds)
                let summary = Text.RegularExpressions.Regex.Match(out, sprintf @"(?m)^%s: ([\d.]+) images/s \(median of 3 runs of 10 images; min ([\d.]+), max ([\d.]+)\)" escaped)
                Expect.isTrue summary.Success (sprintf "%s: its summary" label)
                for group, k in [ 1, 1; 2, 0; 3, 2 ] do
                    let printed = float summary.Groups.[group].Value // to 0.1 images/s
                    Expect.isTrue (printed >= low.[k] - 0.05 && printed <= high.[k] + 0.05) (sprintf "%s: %g images/s is timed run rate %d of 3 (%g to %g)" label printed (k + 1) low.[k] high.[k])
            for d in [ dir; more ] do Directory.Delete(d, true)
            // its own scenes go to a temporary folder, removed also when they cannot be written
            let temp = DataTests.tempDir "bench-data-temp"
            let code, err = crocWithFileLimit 8L [ "TMPDIR", temp ] [ "bench-data"; "--size"; "32"; "--patch"; "8"; "--batch"; "4"; "--batches"; "1"; "--workers"; "0" ]
            Expect.equal code 1 err
            Expect.stringContains err "a file grew past the largest this process may write" "the limit named"
            Expect.isEmpty (Directory.GetFileSystemEntries temp) "no half-written scenes left in TMPDIR" // left behind once
            Directory.Delete(temp, true)
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

        test "Timing.Median prints every run, the warm-ups marked, and the median, min and max of the timed runs alone" {
            // warm-ups of 30 ms, then 40, 15 and 1 ms: the median is neither the mean, the first (the max) nor the last (the min)
            let sleeps = Collections.Generic.Queue [ 30; 30; 40; 15; 1 ]
            let median, out = withStdout (fun () -> Timing.Median("probe", 2, 3, Func<string>(fun () -> Threading.Thread.Sleep(sleeps.Dequeue()); "")))
            Expect.equal (expectTimedRuns "probe" 2 3 out) (float (median.ToString("F1", Globalization.CultureInfo.InvariantCulture))) "returns the median it prints"
        }

        test "bench-vit and bench-clustering time --repeats runs after 2 warm-ups; bench-vit's images/s are --batch over each median; bench-clustering takes 4 tokens (8 in two views for its 5 clusters)" {
            let code, out, err = croc 120 [ "bench-vit"; "--arch"; "tiny"; "--size"; "32"; "--patch"; "8"; "--batch"; "4"; "--repeats"; "3" ]
            Expect.equal code 0 err
            let medians = [ for label in [ "forward (no grad)"; "forward+backward" ] -> expectTimedRuns label 2 3 out ]
            let rates = Text.RegularExpressions.Regex.Match(out, @"images/s: forward ([\d.]+), forward\+backward ([\d.]+)")
            for median, group in List.zip medians [ 1; 2 ] do
                let rate = float rates.Groups.[group].Value
                // the rate printed to 0.1 images/s
                let low, high = rateBounds 4.0 median
                Expect.isTrue (rate >= low - 0.05 && rate <= high + 0.05) (sprintf "%g images/s: 4 images in %g ms" rate median)
            let code, out, err = croc 120 [ "bench-clustering"; "--batch"; "1"; "--heads"; "1"; "--tokens"; "4"; "--dim"; "4"; "--repeats"; "2" ]
            Expect.equal code 0 err
            expectTimedRuns "clustering" 2 2 out |> ignore
        }

        test "bench reports the median of its timed steps (the warm-ups left out), and the images/s, MFU, phase shares and JSON follow from it; the JSON holds the raw times" {
            let code, out, err = croc 300 [ "bench"; "--preset"; "tiny"; "--batch"; "2"; "--repeats"; "4"; "--no-data"; "--precision"; "fp32"; "--json" ]
            Expect.equal code 0 err
            let steps = [ for m in Text.RegularExpressions.Regex.Matches(out, @"(?m)^  step (\d+)( \(warm-up\))?: ([\d.]+) s$") -> int m.Groups.[1].Value, m.Groups.[2].Success, float m.Groups.[3].Value ]
            Expect.equal [ for i, warm, _ in steps -> i, warm ] [ 1, true; 2, true; 3, false; 4, false; 5, false; 6, false ] "2 warm-ups, then --repeats timed steps"
            use json = Text.Json.JsonDocument.Parse(out.Trim().Split('\n') |> Array.last)
            let field (name: string) = json.RootElement.GetProperty(name).GetDouble()
            let numbers (e: Text.Json.JsonElement) = [ for v in e.EnumerateArray() -> v.GetDouble() ]
            // an even count: the mean of the middle two, which is neither the mean of all nor the last
            let median4 (xs: float list) = Expect.equal xs.Length 4 "a time per timed step"; let s = List.sort xs in (s.[1] + s.[2]) / 2.0
            let stepS, threads, raw = field "step_s", field "threads", numbers (json.RootElement.GetProperty "step_times_s")
            for printed, s in List.zip [ for _, warm, s in steps do if not warm then s ] raw do
                Expect.isLessThanOrEqual (abs (printed - s)) 0.0051 "step_times_s: the timed steps as printed (to 0.01 s), in order"
            Expect.equal stepS (median4 raw) "step_s: the median of the timed steps, not their mean or the last"
            let summary = Text.RegularExpressions.Regex.Match(out, @"step: ([\d.]+) s median over (\d+), ([\d.]+) images/s")
            Expect.equal (int summary.Groups.[2].Value) 4 "a median over the timed steps"
            Expect.floatClose { absolute = 0.0051; relative = 0.0 } (float summary.Groups.[3].Value) (2.0 / stepS) "images/s: the batch over the median step"
            Expect.floatClose Accuracy.veryHigh (field "images_per_s") (2.0 / stepS) "JSON images/s: the batch over the median step"
            // FLOPs of one image's forward, 2 per multiply-add: the patch embedding; per block the qkv, proj and MLP matmuls, q·kᵀ and the weights·v
            let vit = (CrocSetup.Network(BenchCommand.ConfigOf(BenchOptions(Preset = Preset.Tiny, Batch = 2)))).Vit
            let t, d, r = float (vit.Tokens + 1), float vit.Dim, float vit.MlpRatio
            let forward = 2.0 * float vit.Tokens * float (3 * vit.Patch * vit.Patch) * d + float vit.Depth * (2.0 * t * d * d * (3.0 + 1.0 + 2.0 * r) + 2.0 * 2.0 * t * t * d)
            Expect.floatClose Accuracy.veryHigh (field "vit_gflops_per_step") (4.0 * 2.0 * 2.0 * forward / 1e9) "teacher forward + student forward and backward: 4 forwards of the 2 views of 2 images"
            Expect.floatClose Accuracy.veryHigh (field "mfu") (field "vit_gflops_per_step" / stepS / field "matmul_gflops") "MFU: the ViT's FLOP/s at the median step over the matmul's"
            Expect.isGreaterThanOrEqual threads 1.0 "--threads 0: the cores, not 0 threads"
            let phases = [ for p in json.RootElement.GetProperty("phases").EnumerateObject() -> p.Name, p.Value.GetDouble() ] |> Map.ofList
            Expect.floatClose Accuracy.veryHigh (field "clustering_share") (phases.["clustering"] / stepS) "the clustering's share of the median step"
            // per timed step, its phases' times
            let stepPhases = [ for step in json.RootElement.GetProperty("phase_times_s").EnumerateArray() -> [ for p in step.EnumerateObject() -> p.Name, p.Value.GetDouble() ] |> Map.ofList ]
            for KeyValue(phase, median) in phases do
                Expect.equal median (median4 [ for step in stepPhases -> step.[phase] ]) (sprintf "%s: the median of its timed steps' times" phase)
            // the phases of a step partition it up to its last mark: they add up to at most the step
            for i, step in List.indexed stepPhases do
                Expect.isLessThanOrEqual (Seq.sum step.Values) (raw.[i] + 1e-9) (sprintf "timed step %d: its phases within it" (i + 1))
            let table = [ for m in Text.RegularExpressions.Regex.Matches(out, @"(?m)^(\S.*?)\s+\d+\.\d{3}\s+(\d+\.\d)%$") -> m.Groups.[1].Value, float m.Groups.[2].Value ]
            Expect.equal (set (List.map fst table)) (set phases.Keys) "the table lists the JSON's phases"
            for phase, share in table do
                Expect.floatClose { absolute = 0.051; relative = 0.0 } share (100.0 * phases.[phase] / stepS) (sprintf "%s: its share of the median step" phase)
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
            makeFifo fifoWeights
            let recordsAsFolders = Path.Combine(dir, "records-as-folders")
            Directory.CreateDirectory(Path.Combine(recordsAsFolders, "metrics.jsonl")) |> ignore
            let resultsAsFolder = Path.Combine(dir, "results-as-folder")
            Directory.CreateDirectory(Path.Combine(resultsAsFolder, "results.json")) |> ignore
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
            // A copy of the VOC set whose images and masks are links to the set's folders (outputs went through them into the set once).
            let linked = Path.Combine(dir, "voc-linked")
            Directory.CreateDirectory(Path.Combine(linked, "ImageSets", "Segmentation")) |> ignore
            for split in [ "train"; "val" ] do File.Copy(Path.Combine(voc, "ImageSets", "Segmentation", split + ".txt"), Path.Combine(linked, "ImageSets", "Segmentation", split + ".txt"))
            for folder in [ "JPEGImages"; "SegmentationClass" ] do File.CreateSymbolicLink(Path.Combine(linked, folder), Path.Combine(voc, folder)) |> ignore
            let safetensorsNamedPth = Path.Combine(dir, "safetensors.pth")
            File.Copy(weights, safetensorsNamedPth)
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
            // A picture of croc-host's cut inside its pHYs chunk, before its mark: ImageSharp throws out of range there.
            let cutPicture = Path.Combine(dir, "cut.png")
            do
                use picture = new SixLabors.ImageSharp.Image<SixLabors.ImageSharp.PixelFormats.Rgb24>(16, 16)
                CrOC.Data.PictureMark.Add picture
                SixLabors.ImageSharp.ImageExtensions.SaveAsPng(picture, cutPicture)
            File.WriteAllBytes(cutPicture, (File.ReadAllBytes cutPicture).[.. 45])
            let cutPictureBytes = File.ReadAllBytes cutPicture
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
                  2, [ "clusters"; "--weights"; weights; "--image"; photo; "--output"; cutPicture ], "exists and is not a picture croc-host drew" // an internal error once
                  2, [ "eval-knn"; "--weights"; weights; "--bank"; voc; "--queries"; voc; "--json"; runConfig ], "exists and is not an earlier result (a JSON object with \"top1\")"
                  2, [ "eval-seg"; "--weights"; evil; "--data"; voc ], "the pickle holds an object of posix.system (read as inert data; nothing was run), not a dictionary of tensors"
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
                  1, [ "eval-seg"; "--weights"; weights; "--data"; voc; "--size"; "32"; "--epochs"; "1"; "--lr"; "1e39" ], "the probe's weights are NaN or infinite after its last update (probe seed 0): it diverged at --lr 1E+39" // one batch: its finite loss, then an update to infinite weights scored "mIoU 10.5" once
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
                  2, [ "experiment"; "--output"; resultsAsFolder ], "holds a folder named results.json, where the suite writes its results" // after the whole suite, "I/O error: Is a directory" (exit 1) once
                  2, [ "bench-vit"; "--arch"; "tiny"; "--size"; "4096"; "--patch"; "1"; "--batch"; "1" ], "gives 16,777,217 tokens per image: the activations" // swapped for minutes once
                  2, [ "bench-block"; "--size"; "2048"; "--patch"; "2" ], "tokens per image: the activations"
                  2, [ "eval-knn"; "--k"; "5"; "--k"; "7" ], "--k is given 2 times (5, 7): give it once"
                  2, [ "experiment"; "--train-args=--depth 2 --depth 3" ], "--train-args: --depth is given 2 times"
                  2, [ "train"; "--output"; Path.Combine(dir, "lr-run"); "--data"; Path.Combine(voc, "JPEGImages"); "--batch"; "1"; "--lr"; "0.001"; "--min-lr"; "5" ], "--min-lr 5 is above the peak learning rate 3.906E-06"
                  2, [ "experiment"; "--train-args=--alpha 0.5"; "--output"; Path.Combine(dir, "exp") ], "'--alpha' is the suite's own"
                  2, [ "experiment"; "--seeds"; "0,0" ], "--seeds must be distinct"
                  2, [ "experiment"; "--train-args=--config " + suiteConfig; "--output"; Path.Combine(dir, "exp-config") ], "sets 'data', which is the suite's own" // trained on the scenes, recorded the file's data once
                  2, [ "experiment"; "--size"; "100" ], "--size 100 is not a multiple of the patch size 8"
                  2, [ "bench-data"; "--size"; "30"; "--patch"; "8" ], "--size 30 is not a multiple of --patch 8"
                  2, [ "bench-vit"; "--size"; "30"; "--patch"; "8" ], "--size 30 is not a multiple of --patch 8"
                  2, [ "clusters"; "--weights"; pngNamedWeights; "--data"; Path.Combine(voc, "JPEGImages"); "--output"; pngNamedWeights ], "is this command's input file"
                  2, [ "eval-seg"; "--weights"; weights; "--data"; voc; "--json"; aFile ], "exists and is not an earlier result (a JSON object with \"miou\")"
                  2, [ "eval-knn"; "--weights"; weights; "--bank"; voc; "--queries"; voc; "--json"; weights ], "is this command's input file"
                  2, [ "eval-knn"; "--weights"; weights; "--bank"; voc; "--queries"; voc; "--temperature"; "0.001" ], "--temperature must be"
                  2, [ "eval-knn"; "--weights"; weights; "--bank"; bank; "--queries"; bank; "--query-annotations"; "/dev/zero" ], "'/dev/zero' holds more than 67108864 bytes" // read until out of memory once
                  2, [ "eval-knn"; "--weights"; weights; "--bank"; bank + "," + bank; "--queries"; bank ], "this option takes one root, not a comma-separated list" // "does not exist" alone once
                  2, [ "eval-knn"; "--weights"; weights; "--bank"; bank; "--queries"; bank; "--init-seed"; "5" ], "--init-seed 5 seeds --random's initialisation" // ignored silently once
                  2, [ "eval-seg"; "--weights"; weights; "--data"; voc; "--save-count"; "3" ], "--save-count 3 counts the masks --save-predictions writes" // ignored silently once
                  2, [ "eval-seg"; "--weights"; weights; "--data"; voc; "--train-split="; ], "--train-split needs a value (NAME), got ''" // looked for 'ImageSets/Segmentation/.txt' once
                  2, [ "train"; "--output"; pathOfBytes dir (PathLimits.PathBytes - PathLimits.RoomBelowFolder + 1) ], "bytes long: the files written in it would pass the 4095-byte limit of a path" // every step ran, then the first checkpoint's temporary name failed (exit 1, nothing kept) once
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
                  2, [ "eval-seg"; "--weights"; weights; "--data"; linked; "--save-predictions"; Path.Combine(linked, "JPEGImages", "preds") ], "lies inside the dataset" // wrote into voc/JPEGImages once
                  2, [ "eval-seg"; "--weights"; weights; "--data"; linked; "--save-predictions"; Path.Combine(voc, "JPEGImages", "preds") ], "lies inside the dataset" // where its linked folder leads
                  2, [ "train"; "--data"; linked; "--output"; Path.Combine(linked, "JPEGImages", "run"); "--max-steps"; "1" ], "lies inside the training data" // trained on, once
                  2, [ "clusters"; "--weights"; weights; "--data"; Path.Combine(voc, "JPEGImages"); "--output"; Path.Combine(voc, "JPEGImages", "c.png") ], "lies inside --data" // drawn as an image by the next run, then replaced, once
                  2, [ "clusters"; "--weights"; weights; "--data"; Path.Combine(voc, "SegmentationClass") + "," + Path.Combine(voc, "JPEGImages"); "--output"; Path.Combine(voc, "JPEGImages", "c.png") ], $"""lies inside --data '{Path.Combine(voc, "JPEGImages")}':""" // the root that holds it, of a list
                  2, [ "clusters"; "--weights"; weights; "--data"; Path.Combine(voc, "JPEGImages") + "," ], "--data has an empty item (number 2 of 2)" // "the dataset root '' does not exist" once
                  2, [ "eval-knn"; "--weights"; weights; "--bank"; bank; "--queries"; bank; "--json"; Path.Combine(dir, "results") + "/" ], "names a folder, not a file" // "already exists" after the work, exit 1, once
                  2, [ "eval-knn"; "--weights"; weights; "--bank"; bank; "--queries"; bank; "--json"; Path.Combine(dir, "fresh", ".") ], "names a folder, not a file" // so does a last name '.'
                  2, [ "export"; "--weights"; weights; "--heads"; "5"; "--output"; Path.Combine(dir, "five-heads") ], weights + ": width 192 is not divisible by 5 heads" // the line named no file once
                  2, [ "export"; "--weights"; safetensorsNamedPth; "--output"; Path.Combine(dir, "from-misnamed") ], "a safetensors file (a header length, then JSON), not a PyTorch .pth" // "legacy format" once
                  2, [ "experiment"; "--data-root"; Path.Combine(dir, "nowhere") ], "--data-root names the real suite's datasets" // ignored by the synthetic suite once
                  2, [ "eval-seg"; "--weights"; weights; "--data"; voc; "--save-predictions"; Path.Combine(dir, "pred"); "--json"; Path.Combine(dir, "pred", "scene_00004.png") ], "lies in --save-predictions" // replaced a mask once
                  2, [ "eval-seg"; "--weights"; weights; "--data"; voc; "--save-predictions"; Path.Combine(dir, "pred"); "--json"; Path.Combine(dir, "pred") ], "lies in --save-predictions" // failed after the work once
                  2, [ "clusters"; "--weights"; weights; "--data"; Path.Combine(voc, "JPEGImages"); "--output"; Path.Combine(dir, "c.jpg") ], "must end with .png"
                  2, [ "clusters"; "--weights"; weights; "--data"; Path.Combine(voc, "JPEGImages"); "--seeds"; "4294967296" ], "--seeds must be in [0, 2147483647], got 4294967296"
                  2, [ "eval-knn"; "--weights"; weights; "--bank"; bank; "--queries"; bank; "--query-stride"; "99999999999" ], "--query-stride must be in [1, 2147483647], got 99999999999" // "[-2147483648, 2147483647] (≥ 1)" once
                  2, [ "eval-seg"; "--weights"; weights; "--data"; voc; "--probe-seeds"; "0,,1" ], "--probe-seeds has an empty item (number 2 of 3) (N,N,…), got '0,,1'" // read as 0,1 once
                  2, [ "bench-clustering"; "--tokens"; "1" ], "fewer than the clustering's 5 initial clusters"
                  2, [ "bench-allreduce"; "--step-seconds"; "1e308" ], "--step-seconds must be in (0, 86400], got 1E+308" // a table of 309-digit steps at "Infinity% eff." once
                  2, [ "bench-clustering"; "--tokens"; "250000"; "--batch"; "1000"; "--heads"; "64" ], "problems of 2 x 250000 tokens of width 64 need at least 114.55 TiB" // out of memory, exit 1, once
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
                  2, [ "bench"; "--size"; "4096"; "--batch"; "1"; "--repeats"; "1"; "--no-data"; "--precision"; "bf16" ], "--size 4096 with the preset's patch 16 gives 65,537 tokens per image: the activations of 2 image(s)" // both views; bf16's scores uncounted: a C++ abort (134) once
                  2, [ "eval-knn"; "--weights"; weights; "--bank"; bank; "--queries"; bank; "--size"; "2048"; "--batch"; "1"; "--precision"; "bf16" ], "--size 2048 with the backbone's patch 8"
                  2, [ "bench"; "--preset"; "tiny"; "--size"; "30" ], "multiple of the preset's patch 8"
                  2, [ "bench-data"; "--size"; "4096"; "--batch"; "64"; "--workers"; "1,2" ], "--size 4096 views of --batch 64 images with 2 worker(s)" // --batch 4 peaked at 16.8 GB
                  2, [ "bench-allreduce"; "--sizes"; "abc" ], "--sizes needs a number"
                  2, [ "bench-allreduce"; "--sizes"; "8,8" ], "--sizes must be distinct" // a bandwidth of 1e9 GB/s from one size once
                  2, [ "bench-allreduce"; "--sizes"; "0.000001,0.000002" ], "--sizes needs two different sizes at least (the latency comes from the smallest, the bandwidth from the largest), got 1E-06,2E-06 (each rounds down to 1 whole float32 element(s) of 4 bytes, one at least)" // both one element, which went unsaid
                  2, [ "bench-allreduce"; "--sizes"; "1,1.000001" ], "got 1,1.000001 (each rounds down to 250000 whole float32 element(s) of 4 bytes, one at least)"
                  2, [ "bench-allreduce"; "--sizes"; "0.01,1"; "--repeats"; "1" ], "run it with several processes, e.g. mpirun -np 2 croc-host bench-allreduce" // alone: a ring of one, fitted by dividing by N − 1 = 0
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
            Expect.equal (File.ReadAllBytes cutPicture) cutPictureBytes "nor over a damaged picture"
            Expect.equal (File.ReadAllText runConfig) "{ \"arch\": \"tiny\" }" "eval-knn did not write over a run's config.json"
            Expect.equal (File.ReadAllText(existing + ".json")) "another export's card" "nor over an existing file"
            Expect.equal (File.ReadAllBytes photo) photoBytes "clusters did not write over the photo it shows"
            Expect.isFalse (Directory.Exists(Path.Combine(dir, "results"))) "a --json naming a folder made none"
            Expect.sequenceEqual (Directory.GetFileSystemEntries(Path.Combine(voc, "JPEGImages")) |> Array.filter (fun f -> not (f.EndsWith ".jpg"))) [||] "nothing was written among the images, through a link or not"
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
            let code, error = withStderr (fun () -> ExitCodes.Report("train [rank 1]", OptionException "--lr must be positive"))
            Expect.equal code 2 "bad input"
            Expect.equal (error.Split('\n', StringSplitOptions.RemoveEmptyEntries) |> List.ofArray)
                [ "croc-host train [rank 1]: --lr must be positive"; "Run `croc-host train --help` for its options." ] "the line names the rank, the hint the command"
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

        test "a config file of 8-bit bytes, or nested past the reader's depth, is refused saying so (\"Invalid UTF-16 surrogate sequence\", \"the text stops being JSON at byte 65\" once)" {
            let dir = DataTests.tempDir "config-words"
            for name, bytes, expected in [ "latin.toml", Text.Encoding.Latin1.GetBytes "lr = 0.001\n# café\n", "line 2 is not UTF-8 text"
                                           "latin.json", Text.Encoding.Latin1.GetBytes "{\"lr\": 0.001,\n \"note\": \"café\"}", "line 2 is not UTF-8 text"
                                           "deep.json", Text.Encoding.ASCII.GetBytes(String('[', 100) + String(']', 100)), "nested more than 64 deep" ] do
                let file = Path.Combine(dir, name)
                File.WriteAllBytes(file, bytes)
                let e = thrown<ConfigException> (fun () -> TrainingTests.configOf [ "config", file ] |> ignore) name
                Expect.stringContains e.Message expected name
            // UTF-16 with its byte-order mark is text (its bytes are no UTF-8)
            let utf16 = Path.Combine(dir, "utf16.toml")
            File.WriteAllText(utf16, "# café\nlr = 0.002\n", Text.UnicodeEncoding(false, true))
            Expect.equal (TrainingTests.configOf [ "config", utf16 ]).Lr 0.002 "UTF-16"
            Directory.Delete(dir, true)
        }

        test "bench-data's memory check counts 4 × (prefetch + workers) batches of views: views within memory at 1 × but not at 4 × are refused, before any image is looked for" {
            let dir = DataTests.tempDir "bench-data-memory"
            let empty = Directory.CreateDirectory(Path.Combine(dir, "no-images")).FullName
            let benchData (batch: int) = crocInShell "true" "" [] [ "bench-data"; "--data"; empty; "--size"; "4096"; "--batch"; string batch; "--workers"; "1" ]
            // this machine's memory, as the refusal of a batch beyond any machine says it
            let code, err = benchData 100000
            Expect.equal code 2 err
            let said = RegularExpressions.Regex.Match(err, @"of this machine's ([0-9.]+) (GiB|TiB)")
            Expect.isTrue said.Success err
            let memory = float said.Groups[1].Value * (if said.Groups[2].Value = "TiB" then 1099511627776.0 else 1073741824.0)
            // one image's two views at 4096 px: 2 × 3 × 4096² float32; 1 worker prefetches 2 batches: (2 + 1) × 4 batches held
            let views = 2.0 * 3.0 * 4096.0 * 4096.0 * 4.0
            let batch = max 1 (int (System.Math.Round(0.75 * memory / (6.0 * views)))) // 4 × 3 batches: about twice the 3/4 of memory; 3 batches: about half
            Expect.isLessThan (3.0 * views * float batch) (0.75 * memory) "the batch is within memory at 1 × (prefetch + workers)"
            let code, err = benchData batch
            Expect.equal code 2 err
            Expect.stringContains err (sprintf "--size 4096 views of --batch %d images with 1 worker(s) need at least" batch) "refused for memory, not for the missing images"
            Directory.Delete(dir, true)
        }

        test "a config file nested past the reader's depth is refused naming its line" {
            let file = scratchPath "deep-config" ".json"
            File.WriteAllText(file, String('[', 100) + String(']', 100))
            let e = thrown<ConfigException> (fun () -> TrainingTests.configOf [ "config", file ] |> ignore) "refused"
            Expect.stringContains e.Message "values nested more than 64 deep (line 1)" "the line, counted from 1"
            File.Delete file
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

        test "out of open files (ulimit -n) at start, or a limit below what a command holds open: one line (exit 1 as the runtime starts, else 2 before any work), never a .NET stack trace (134) or nothing at all" {
            // 24–40 were a stack trace from the start-up outside the command's report, 48–56 exit 1 with nothing said
            // (the console's encoder did not load), 64 "internal error (TypeInitializationException)"
            let dir = DataTests.tempDir "open-files"
            let weights = Path.Combine(dir, "w.safetensors")
            writeTinyBackbone weights
            // from the least limit at which the runtime itself starts here (below it the dotnet host fails natively)
            let starts limit = fst (crocInShell (sprintf "ulimit -n %d" limit) "" [] [ "--help" ]) = 0
            let least = [ 12 .. 4 .. 64 ] |> List.tryFind starts |> Option.defaultWith (fun () -> failtest "croc-host --help does not start under ulimit -n 64")
            for limit in [ least .. 8 .. least + 40 ] do
                let code, err = crocInShell (sprintf "ulimit -n %d" limit) "" [] [ "export"; "--weights"; weights; "--output"; Path.Combine(dir, sprintf "e%d" limit) ]
                let said = sprintf "ulimit -n %d: exit %d, %s" limit code err
                Expect.isFalse (err.Contains "Unhandled exception" || err.Contains "   at ") said
                Expect.isFalse (err.Contains "internal error") said
                Expect.isTrue (code = 1 && err.Contains "out of open files" || code = 2 && err.Contains "the open-files limit (ulimit -n) is") said
                Expect.equal (err.Trim().Split('\n').Length) 1 ("one line: " + said)
            // eval-knn at 78–84 ended "internal error (TaskSchedulerException)", "PAL_SEHException" (134), a segmentation fault (139) or "Out of memory." (134)
            let code, err = crocInShell "ulimit -n 255" "" [] [ "export"; "--weights"; weights; "--output"; Path.Combine(dir, "e255") ]
            Expect.equal code 2 err
            Expect.stringContains err "croc-host export: the open-files limit (ulimit -n) is 255" "refused before any work, naming the limit"
            let code, err = crocInShell "ulimit -n 256" "" [] [ "export"; "--weights"; weights; "--output"; Path.Combine(dir, "e256") ]
            Expect.equal code 0 ("works from 256: " + err)
            let code, err = crocInShell "ulimit -n 100" "" [] [ "export"; "--help" ]
            Expect.equal code 0 ("--help still shows: " + err)
            Directory.Delete(dir, true)
        }

        test "a native library that does not load is said in one line with the loader's reason for the file that exists (it kept only the library's name once)" {
            let dir = DataTests.tempDir "native-library"
            let broken = Path.Combine(dir, "libtorch.so")
            File.WriteAllText(broken, "no library")
            let prefix = "Unable to load shared library 'libtorch' or one of its dependencies. In order to help diagnose loading problems, consider using a tool like strace. If you're using glibc, consider setting the LD_DEBUG environment variable: \n"
            let absent = Path.Combine(dir, "liblibtorch.so")
            let found = DllNotFoundException(prefix + absent + ": cannot open shared object file: No such file or directory\n" + broken + ": file too short\n")
            let line = ExitCodes.Message found
            Expect.stringStarts line ("could not load the native library libtorch (" + broken + ": file too short)") "the existing file's reason"
            Expect.isTrue (ExitCodes.IsExpected found) "no crash file"
            let missing = DllNotFoundException(prefix + absent + ": cannot open shared object file: No such file or directory\n")
            Expect.stringContains (ExitCodes.Message missing) (absent + ": cannot open shared object file: No such file or directory") "none exists: the first reason"
            Expect.isFalse ((ExitCodes.Message missing).Contains "\n") "one line"
            // a line with a colon but no "PATH: REASON" (a search path) is no file tried
            let searched = DllNotFoundException(prefix + "/opt/lib:/usr/lib\n" + broken + ": file too short\n")
            Expect.stringStarts (ExitCodes.Message searched) ("could not load the native library libtorch (" + broken + ": file too short)") "the tried file's reason"
            Directory.Delete(dir, true)
        }

        test "a process out of file descriptors (EMFILE, ENFILE) is no failure of an image (retried for 10.5 s, then skipped, once) or a mask (refused as unreadable): an I/O error ends the work" {
            for errno in [ 23; 24 ] do
                Expect.isFalse (CrOC.Data.ImageDecoder.IsStorageFailure(IOException("Too many open files", errno))) (sprintf "errno %d" errno)
            Expect.isTrue (CrOC.Data.ImageDecoder.IsStorageFailure(IOException("Input/output error", 5))) "EIO still is"
            let image = Path.Combine(DataTests.tempDir "out-of-descriptors", "a.png")
            writeBlankPng image
            let decoder = CrOC.Data.ImageDecoder(StorageRetryWaits = [ TimeSpan.FromSeconds 5.0 ])
            let entry = CrOC.Data.ImageEntry.File image
            Expect.isGreaterThan (decoder.Read entry).Length 0 "read (and every type its failure needs loaded) first"
            let watch = Diagnostics.Stopwatch.StartNew()
            let failure = OpenFilesLimit.exhausted (fun () -> try decoder.Read entry |> ignore; None with e -> Some e)
            match failure with
            | Some e ->
                Expect.equal (e.GetType()) typeof<IOException> (sprintf "an I/O error that ends the work, not the file's DecodeException: %O" e)
                Expect.stringContains e.Message "out of open files" "said"
            | None -> failtest "the read did not fail"
            Expect.isLessThan watch.Elapsed.TotalSeconds 5.0 "not retried as the storage's"
            // eval-seg's masks: no fault of the mask's (exit 2, "unreadable mask", once), the process's (exit 1)
            let loadMask () = CrOC.Data.VocSegmentation.LoadMask(image, ref 0, ref 0) |> ignore
            try loadMask () with :? CrOC.Data.DatasetException -> () // its types loaded; an RGB picture may be no mask
            let maskFailure = OpenFilesLimit.exhausted (fun () -> try loadMask (); None with e -> Some e)
            Expect.equal (maskFailure |> Option.map (fun e -> e.GetType())) (Some typeof<IOException>) (sprintf "an I/O error, not the mask's: %A" maskFailure)
            Directory.Delete(Path.GetDirectoryName image |> nonNull, true)
        }

        test "an address-space limit (ulimit -v) below what libtorch maps is refused in one line before any work (an internal error once, and 478 MB of libraries copied beside the tool); --help still shows" {
            ProcessLimits.CheckAddressSpace(Nullable())
            ProcessLimits.CheckAddressSpace(Nullable(8L <<< 30))
            thrown<ProcessLimitException> (fun () -> ProcessLimits.CheckAddressSpace(Nullable(3L <<< 30))) "3 GiB" |> ignore
            let code, err = crocInShell "ulimit -v 3000000" "" [] [ "export"; "--weights"; "absent.safetensors"; "--output"; "absent-export" ]
            Expect.equal code 2 err
            Expect.stringContains err "croc-host export: the address-space limit (ulimit -v) is 2.86 GiB" "said, before the weights are looked for"
            Expect.equal (err.Trim().Split('\n').Length) 1 "one line"
            let code, err = crocInShell "ulimit -v 3000000" "" [] [ "export"; "--help" ]
            Expect.equal code 0 err
        }

        test "bench-clustering's memory estimate lies above its measured peaks; a clustering beyond 3/4 of memory is refused before any work" {
            // peak RSS measured on Zen 4 (official config, batch 1): (problems, tokens per view, d) → bytes
            for (problems, tokens, dim), peak in [ (1L, 250000, 8), 1.39e9; (1L, 250000, 64), 1.82e9; (2L, 250000, 64), 3.52e9; (1L, 250000, 256), 4.02e9
                                                   (1L, 62500, 64), 0.60e9; (1L, 1000000, 64), 7.7e9; (2L, 1000000, 64), 13.4e9 ] do
                let estimate = MemoryFit.ClusteringBytes(problems, tokens, dim)
                Expect.isGreaterThan estimate (peak - 0.2e9) (sprintf "%d x %d x %d: above the peak less the process's own 0.2 GB" problems tokens dim) // counting the keys alone: 15x under
                Expect.isLessThan estimate (1.5 * peak) "not far above"
            // 4 problems of 10⁶ tokens on a 23.5 GiB machine (about 26 GB at the peak): started once, for the kernel to end
            thrown<OptionException> (fun () -> MemoryFit.CheckBytes(MemoryFit.ClusteringBytes(4L, 1000000, 64), "the clustering", "use fewer", 0.75, 23L <<< 30)) "refused" |> ignore
        }

        test "a ViT pass whose activations cannot fit in memory is refused before any work; the official step fits" {
            let official = Training.CrocSetup.Published(Training.Arch.Small, 16, 224)
            // the estimate: 16 images × 197 tokens × 28·384 float32 values × 12 blocks under float32 training
            Expect.floatClose Accuracy.veryHigh (MemoryFit.ActivationBytes(official, 16L, true, PrecisionChoice.Fp32)) (16.0 * 197.0 * 4.0 * 28.0 * 384.0 * 12.0) "the estimate"
            Expect.floatClose Accuracy.veryHigh (MemoryFit.ActivationBytes(official, 16L, false, PrecisionChoice.Fp32)) (16.0 * 197.0 * 4.0 * 32.0 * 384.0) "one block at inference: 32·D values"
            Expect.floatClose Accuracy.veryHigh (MemoryFit.ActivationBytes(official, 16L, false, PrecisionChoice.Fp32, 448)) (16.0 * 785.0 * 4.0 * 32.0 * 384.0) "a frozen backbone at 448 px: 28² + 1 tokens"
            // bf16 on the CPU: 17·D values per token and block under training; the scores (6 heads × 197 per token) cost
            // 10 bytes in the running block and 2 more in each of the 12 blocks under training, 10 at inference
            let scores = 16.0 * 197.0 * 6.0 * 197.0
            Expect.floatClose Accuracy.veryHigh (MemoryFit.ActivationBytes(official, 16L, true, PrecisionChoice.Bf16)) (16.0 * 197.0 * 4.0 * 17.0 * 384.0 * 12.0 + 34.0 * scores) "bf16 training"
            Expect.floatClose Accuracy.veryHigh (MemoryFit.ActivationBytes(official, 16L, false, PrecisionChoice.Bf16)) (16.0 * 197.0 * 4.0 * 32.0 * 384.0 + 10.0 * scores) "bf16 inference"
            // the parameters in float32: ViT-S/16's 21,665,664 once at inference, six times under training (student, teacher, gradients, two moments, a shadow)
            Expect.floatClose Accuracy.veryHigh (MemoryFit.ParameterBytes(official, true)) (4.0 * 6.0 * 21665664.0) "training"
            Expect.floatClose Accuracy.veryHigh (MemoryFit.ParameterBytes(official, false)) (4.0 * 21665664.0) "inference"
            MemoryFit.Check(official, 16L, true, PrecisionChoice.Bf16, "the official step", 4L <<< 30) // 1.1 GB + 0.5 GB in 3/4 of 4 GiB
            // sizes known exactly may take more than half (eval-seg's cached features: 80 %)
            MemoryFit.CheckBytes(3e9, "the cached features", "use less", 0.8, 4L <<< 30)
            thrown<OptionException> (fun () -> MemoryFit.CheckBytes(3e9, "the logits", "use less", 0.5, 4L <<< 30)) "3 GB above half of 4 GiB" |> ignore
            // an estimate within memory but above 3/4 of it (the process and the machine need the rest)
            thrown<OptionException> (fun () -> MemoryFit.Check(official, 16L, true, PrecisionChoice.Bf16, "the official step", 2000L <<< 20)) "1.6 GB in 2 GB" |> ignore
            let e = thrown<OptionException> (fun () -> MemoryFit.Check(official, 16L, true, PrecisionChoice.Fp32, "--size 224 with --patch 16", 100L <<< 20)) "beyond 100 MiB"
            Expect.stringContains e.Message "--size 224 with --patch 16 gives 197 tokens per image: the activations of 16 image(s) and the parameters need about 1.52 GiB + 495.9 MiB, more than three quarters of this machine's 100.0 MiB" "says why"
            // heads heavier than the parameters but lighter than the activations: the batch or size is what to change
            let e = thrown<OptionException> (fun () -> MemoryFit.Check(official, 16L, true, PrecisionChoice.Fp32, "the step", 100L <<< 20, heads = 1e9, headOptions = "--head-hidden")) "heads of 1 GB"
            Expect.stringContains e.Message "use a smaller size, a larger patch or a smaller batch" "the activations weigh most"
            let e = thrown<OptionException> (fun () -> MemoryFit.Check(official, 16L, true, PrecisionChoice.Fp32, "the step", 100L <<< 20, heads = 2e9, headOptions = "--head-hidden")) "heads of 2 GB"
            Expect.stringContains e.Message "use smaller heads (--head-hidden) or a smaller batch" "the heads weigh most"
            // bench-vit --size 16 --batch 4096 (fp32) held 4.5 GB (peak RSS, Zen 4): the old lower bound (0.6 GB of activations
            // + 0.5 GB of parameters) fit in half of 4 GiB, so a 4 GiB machine would have been killed for memory; the estimate refuses it
            let tiny = Training.CrocSetup.Published(Training.Arch.Small, 16, 16)
            Expect.floatClose Accuracy.veryHigh (MemoryFit.ActivationBytes(tiny, 4096L, true, PrecisionChoice.Fp32)) (4096.0 * 2.0 * 4.0 * 28.0 * 384.0 * 12.0) "4.2 GB"
            thrown<OptionException> (fun () -> MemoryFit.Check(tiny, 4096L, true, PrecisionChoice.Fp32, "--size 16 with --patch 16", 4L <<< 30)) "4.7 GB in 4 GiB" |> ignore
            MemoryFit.Check(tiny, 1024L, true, PrecisionChoice.Fp32, "--size 16 with --patch 16", 4L <<< 30) // 1.4 GB measured; 1.6 GB estimated
            // the heads of a training step: the official ones (384 → 2048 → 2048 → 256, L = 65536, L_c = 8192) for
            // 32 views and K ≤ 4: 24,457,472 parameters six times, 18,948,096 last-layer weights three times, 2,097,152 image logits 17 times, 1,048,576 object logits 29 times
            let heads: Heads.HeadConfig = { InDim = 384; Hidden = 2048; Bottleneck = 256; OutDim = 65536; OutDimC = 8192; NormLastLayer = true }
            Expect.equal (384.0 * 2048.0 + 2048.0 + 2048.0 * 2048.0 + 2048.0 + 2048.0 * 256.0 + 256.0 + 257.0 * 73728.0) 24457472.0 "the count, by hand"
            Expect.floatClose Accuracy.veryHigh (MemoryFit.HeadBytes(heads, 32L, 4L)) (4.0 * (6.0 * 24457472.0 + 3.0 * 18948096.0 + 17.0 * 32.0 * 65536.0 + 29.0 * 32.0 * 4.0 * 8192.0)) "the heads' estimate"
            Expect.floatClose Accuracy.veryHigh (MemoryFit.HeadBytes(heads, 32L, 0L)) (4.0 * (6.0 * 24457472.0 + 3.0 * 18948096.0 + 17.0 * 32.0 * 65536.0)) "no object rows without the object loss"
            let preset = TrainingTests.configOf [ "preset", "official" ]
            Expect.equal (Training.CrocSetup.Network(preset).Head) { heads with InDim = 384 } "the official heads"
            Training.CrocSetup.CheckStepMemory(preset, 8L, "the official step at --batch 8", null) // float32: 1.6 GB + 0.5 GB + 0.9 GB, within 3/4 of a 4 GiB machine (the preset's batch of 16: 4.9 GB, 3/4 of 8 GB)
            // a head of 10¹² weights passed the backbone's check and ran out of memory in its first step (exit 1) once
            let output = DataTests.tempDir "huge-head"
            let code, message = TrainingTests.cli [| "train"; "--output"; Path.Combine(output, "run"); "--head-hidden"; "1000000" |]
            Expect.equal code 2 message
            Expect.stringContains message "the activations of 64 image(s), the parameters and the heads need about" "says why"
            Expect.stringContains message "use smaller heads (--head-hidden, --head-bottleneck, --out-dim, --out-dim-c) or a smaller batch" "says what to change: the heads weigh most"
            let code, message = TrainingTests.cli [| "train"; "--output"; Path.Combine(output, "run"); "--image-size"; "4096"; "--patch"; "2" |]
            Expect.equal code 2 message
            Expect.stringContains message "use a smaller size, a larger patch or a smaller batch" "the activations weigh most: no advice on the heads"
            Expect.isFalse (Directory.Exists(Path.Combine(output, "run"))) "refused before the run folder is made"
            Directory.Delete(output, true)
        }

        test "bench --object-shapes fixed runs train's step in the fixed layout" {
            let config = CrOC.Host.BenchCommand.ConfigOf(CrOC.Host.BenchOptions(ObjectShapes = ObjectShapesChoice.Fixed))
            Expect.equal config.ObjectShapes ObjectShapesChoice.Fixed "passed to the step's config"
            Expect.equal (CrocSetup.Clustering config).Shapes CrOC.Math.Clustering.ObjectShapes.Fixed "and to the clustering"
            Expect.equal (CrocSetup.Clustering (CrOC.Host.BenchCommand.ConfigOf(CrOC.Host.BenchOptions()))).Shapes CrOC.Math.Clustering.ObjectShapes.Dynamic "dynamic by default"
        }

        test "a third hunt (the command line): --help takes no value; a config file's values are checked as the command line's; near names; one printable line; conflicts before any work" {
            let dir = DataTests.tempDir "cli-hunt"
            let refused (args: string list) (message: string) =
                let code, err = TrainingTests.cli (List.toArray args)
                Expect.equal code 2 (sprintf "%A → exit 2: %s" args err)
                Expect.stringContains err message (sprintf "%A: the message" args)
                let lines = err.Split('\n', StringSplitOptions.RemoveEmptyEntries) |> Array.filter (fun l -> not (l.StartsWith "Run `croc-host"))
                Expect.equal lines.Length 1 (sprintf "%A: one line:\n%s" args err)
                err
            let config (name: string) (text: string) =
                let path = Path.Combine(dir, name)
                File.WriteAllText(path, text)
                path
            // --help=VALUE was dropped and the command ran (an experiment began its pre-training)
            refused [ "train"; "--help=yes"; "--epochs"; "0" ] "--help takes no value" |> ignore
            refused [ "experiment"; "--train-args=-h" ] "--train-args: --help there shows nothing" |> ignore
            // a config file's values as the command line's: "" or a NUL as output were internal errors (exit 1),
            // [""] and [] as data passed, TOML's 1.0 was the integer 1, a bad preset was named as --preset
            refused [ "train"; "--config"; config "empty.json" """{ "output": "" }""" ] "'output' needs a value" |> ignore
            refused [ "train"; "--config"; config "nul.json" """{ "output": "\u0000x" }""" ] "'output' holds a NUL character" |> ignore
            refused [ "train"; "--config"; config "surrogate.json" """{ "output": "\ud800" }""" ] "surrogate.json': a string escaping a lone UTF-16 surrogate" |> ignore // an internal error once
            refused [ "train"; "--data"; config "nul.txt" "a.jpg\n/x\u0000y.jpg\n"; "--output"; Path.Combine(dir, "nul-run"); "--max-steps"; "1" ] "nul.txt' line 2 holds a NUL character" |> ignore // a path's ArgumentException once
            refused [ "train"; "--config"; config "blank-item.toml" "data = [\"a\", \" \"]" ] "'data' has an empty item (number 2 of 2)" |> ignore
            refused [ "train"; "--config"; config "no-items.json" """{ "data": [] }""" ] "'data' is an empty list" |> ignore
            refused [ "train"; "--config"; config "float.toml" "epochs = 1.0" ] "'epochs' must be an integer" |> ignore
            refused [ "train"; "--config"; config "preset.json" """{ "preset": "huge" }""" ] "preset.json': preset must be one of" |> ignore
            // bytes that were not UTF-8 reach .NET as U+FFFD: written under another name, or "no such file" for one that exists
            refused [ "export"; "--weights"; Path.Combine(dir, "w.safetensors"); "--output"; Path.Combine(dir, "a\uFFFDb") ] "not UTF-8" |> ignore
            // a numeric list's items are distinct: bench-data timed one worker count twice
            refused [ "bench-data"; "--workers"; "1,1" ] "--workers must be distinct, got 1,1 (1 twice)" |> ignore
            // near names: train's own words too, any case, a swap of letters; none for one letter (--h was --lr once)
            refused [ "train"; "--confg"; "x" ] "(did you mean --config?)" |> ignore
            refused [ "train"; "--move-asid" ] "(did you mean --move-aside?)" |> ignore
            refused [ "train"; "--HELP" ] "(did you mean --help?)" |> ignore
            refused [ "train"; "--hlep" ] "(did you mean --help?)" |> ignore
            Expect.isFalse ((refused [ "train"; "--h" ] "unknown option --h").Contains "did you mean") "no near name for one letter"
            Expect.isFalse ((refused [ "train"; "--l" ] "unknown option --l").Contains "did you mean") "one letter: no guess, though one edit from --lr"
            Expect.isFalse ((refused [ "train"; "--epoks"; "4" ] "unknown option --epoks").Contains "did you mean") "two edits in five letters are more than a third: no guess"
            refused [ "train"; "--lr\n"; "1" ] "unknown option --lr\\n" |> ignore
            refused [ "trian" ] "unknown command 'trian' (did you mean train?" |> ignore
            refused [ "TRAIN" ] "(did you mean train?" |> ignore
            let watch = Stopwatch.StartNew()
            let err = refused [ "train"; "--config"; config "long-key.json" (sprintf "{ \"%s\": 1 }" (String('x', 5_000_000))) ] "unknown setting"
            Expect.isLessThan err.Length 2000 "a 5 MB key is quoted shortened"
            Expect.isLessThan watch.Elapsed.TotalSeconds 5.0 "and not compared with every option by edits (10 s once)"
            // --train-args' value after a space (it starts with --), its words split at any white space
            refused [ "experiment"; "--train-args"; "--epochs 0" ] "--epochs must be in [1, 1000000], got 0" |> ignore
            refused [ "experiment"; "--train-args=--epochs\t0" ] "--epochs must be in [1, 1000000], got 0" |> ignore
            // conflicts of options alone, before any work: the weights are not even looked for
            let missing = Path.Combine(dir, "missing.safetensors")
            refused [ "eval-seg"; "--weights"; missing; "--standardize" ] "--standardize needs --cache-features" |> ignore
            refused [ "eval-seg"; "--weights"; missing; "--save-count"; "3" ] "--save-count 3 counts the masks" |> ignore
            Expect.equal (OptionSet<Evaluation.EvalSegOptions>.Parse([| "--weights"; "w"; "--precision"; " fp32 " |])).Precision PrecisionChoice.Fp32 "a choice's white space is ignored, as a number's"
            // from the review: an option after a flag keeps its spaced value; a path that exists with U+FFFD
            // itself is taken; a list of numbers in a config is named as the wrong type; a config key gets no --help
            let parsed = OptionSet<Evaluation.EvalSegOptions>.Parse([| "--weights"; "w"; "--cache-features"; "--data=/x/My VOC" |])
            Expect.equal (parsed.CacheFeatures, parsed.Data) (true, "/x/My VOC") "--data=\"My VOC\" after a flag is an option, not the flag's value"
            let replacement = Path.Combine(dir, "a\uFFFDb.safetensors")
            File.WriteAllText(replacement, "")
            Expect.equal (OptionSet<Evaluation.EvalSegOptions>.Parse([| "--weights"; replacement |])).Weights replacement "an existing name with U+FFFD"
            refused [ "train"; "--config"; config "numbers.json" """{ "data": [5] }""" ] "'data' must be a list of strings" |> ignore
            // a flag's value: the words it takes are all named (yes and 1 were taken, "true or false" said)
            refused [ "export"; "--overwrite"; "maybe" ] "--overwrite takes true or false (also yes/no, 1/0; or nothing), got 'maybe'" |> ignore
            Expect.isFalse ((refused [ "train"; "--config"; config "hlep.json" """{ "hlep": 1 }""" ] "unknown setting 'hlep'").Split('\n').[0].Contains "--help") "no --help inside a file"
            // a CROC_DATA_HOME that cannot be made is bad input, named (an I/O error, exit 1, once)
            let code, err = crocInShell "true" "" [ "CROC_DATA_HOME", "/dev/null/x" ] [ "train"; "--output"; Path.Combine(dir, "run"); "--max-steps"; "1" ]
            Expect.equal code 2 err
            Expect.stringContains err "'/dev/null/x' ($CROC_DATA_HOME, or the local data folder) cannot be made" "named"
            // with HOME unset, ~/ is the home folder of the password database, as a shell's ~ (a folder named '~' was made once)
            let code, err = crocInShell "unset HOME" "" [] [ "train"; "--config=~/croc-absent-config.json" ]
            Expect.equal code 2 err
            Expect.isMatch err "'/([^'~]*/)?croc-absent-config\\.json' not found" "expanded to an absolute home folder"
            // a home not made yet is still the home (.NET's verified lookup gave "" for it, and the ~ stayed)
            let code, err = crocInShell "export HOME=/croc-no-such-home" "" [] [ "train"; "--config=~/croc-absent-config.json" ]
            Expect.equal code 2 err
            Expect.stringContains err "'/croc-no-such-home/croc-absent-config.json' not found" "the home folder as HOME names it"
            Directory.Delete(dir, true)
        }
    ]
