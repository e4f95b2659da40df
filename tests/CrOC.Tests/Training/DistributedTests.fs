/// Data-parallel training over Open MPI: the flat-bucket gradient average, the watchdog, and runs
/// of 2 processes under `mpirun` (needs Debian's openmpi-bin; .ci/run installs it).
module CrOC.Tests.DistributedTests

open System
open System.Diagnostics
open System.IO
open System.Text.Json
open Expecto
open TorchSharp
open CrOC.Host.Distributed
open CrOC.Host.Weights
open CrOC.Tests.TestUtil

/// A stand-in for W = 2 ranks where the other rank holds three times this rank's values: each
/// all-reduce multiplies the buffer by 4, so a mean is twice this rank's values. It records the size
/// of every buffer it was given.
type PeerHoldingTriple() =
    member val Calls = ResizeArray<int64>()
    interface ICollective with
        member _.Rank = 0
        member _.World = 2
        member _.LocalWorld = 2
        member _.LocalRank = 0
        member this.AllReduceSum(t) =
            this.Calls.Add(t.numel() * int64 t.ElementSize)
            CrOC.Math.Tensors.withScalar 4.0 (fun s -> t.mul_(s)) |> ignore // t + the other rank's 3·t
        member _.Broadcast(_, _) = ()
        member _.AllGather(t) = torch.cat([| t; t * 3.0f |])
        member _.Barrier() = ()
        member _.AwaitLocalWork() = ()
        member _.AwaitRootWork() = ()
        member _.Abort(_) = ()
        member _.Dispose() = ()

/// W ranks of which `localWorld` run on this machine; collectives do nothing but record the roots
/// of the broadcasts they were asked for.
type RecordingRanks(world: int, localWorld: int) =
    member val BroadcastRoots = ResizeArray<int>()
    interface ICollective with
        member _.Rank = 0
        member _.World = world
        member _.LocalWorld = localWorld
        member _.LocalRank = 0
        member _.AllReduceSum(_) = ()
        member this.Broadcast(_, root) = this.BroadcastRoots.Add root
        member _.AllGather(t) = t.clone()
        member _.Barrier() = ()
        member _.AwaitLocalWork() = ()
        member _.AwaitRootWork() = ()
        member _.Abort(_) = ()
        member _.Dispose() = ()

/// A stand-in for W = 2 ranks whose other rank gathers `peer look mine` at this rank's `look`-th
/// all-gather of one value (from 1), `mine` being this rank's value.
type PeerGathering(peer: int -> float -> float) =
    let mutable looks = 0
    member _.Looks = looks
    interface ICollective with
        member _.Rank = 0
        member _.World = 2
        member _.LocalWorld = 1
        member _.LocalRank = 0
        member _.AllReduceSum(_) = ()
        member _.Broadcast(_, _) = ()
        member _.AllGather(t) =
            looks <- looks + 1
            torch.cat([| t; torch.tensor([| peer looks (t.ToDouble()) |], torch.float64) |])
        member _.Barrier() = ()
        member _.AwaitLocalWork() = ()
        member _.AwaitRootWork() = ()
        member _.Abort(_) = ()
        member _.Dispose() = ()

let private hostDll = Path.Combine(AppContext.BaseDirectory, "croc-host.dll")

/// `croc-host train` arguments of the tests' tiny configuration with batch 4, plus `extra`.
let private trainArgs (output: string) (extra: string list) =
    "train" :: TrainingTests.tinyArgs output ((if List.contains "--batch" extra then [] else [ "--batch"; "4" ]) @ extra)

/// `mpirun -np n dotnet croc-host.dll args` started in the folder `workDir` (the ranks' working
/// folder; "" for this process's) with the environment variables `env` added, started (not
/// awaited), output captured.
let private mpirunIn (workDir: string) (env: (string * string) list) (n: int) (args: string list) =
    let info = ProcessStartInfo("mpirun", RedirectStandardOutput = true, RedirectStandardError = true, WorkingDirectory = workDir)
    for a in [ "--oversubscribe"; "--allow-run-as-root"; "-np"; string n; "dotnet"; hostDll ] @ args do info.ArgumentList.Add a
    for name, value in env do info.Environment.[name] <- value
    // Containers often forbid the cross-memory attach of Open MPI's shared-memory transport.
    info.Environment.["OMPI_MCA_btl_vader_single_copy_mechanism"] <- "none"
    let p =
        try present (Process.Start info)
        with :? ComponentModel.Win32Exception -> failwith "mpirun was not found: install Open MPI (apt-get install openmpi-bin libopenmpi-dev)"
    let output = Text.StringBuilder()
    p.OutputDataReceived.Add(fun e -> if not (isNull e.Data) then lock output (fun () -> output.AppendLine e.Data |> ignore))
    p.ErrorDataReceived.Add(fun e -> if not (isNull e.Data) then lock output (fun () -> output.AppendLine e.Data |> ignore))
    p.BeginOutputReadLine()
    p.BeginErrorReadLine()
    p, (fun () -> lock output (fun () -> output.ToString()))

/// `mpirun -np n dotnet croc-host.dll args` with the environment variables `env` added.
let private mpirunWith = mpirunIn ""

/// `mpirun -np n dotnet croc-host.dll args`, started (not awaited), output captured.
let private mpirun = mpirunWith []

/// Waits for a started job; fails after `seconds` (killing it).
let private finish (seconds: int) (p: Process, text: unit -> string) =
    if not (p.WaitForExit(seconds * 1000)) then
        p.Kill true
        failwithf "mpirun did not finish within %d s:\n%s" seconds (text ())
    p.WaitForExit()
    p.ExitCode, text ()

/// The pid of rank `rank` among the job's processes (children of mpirun).
let private rankPid (mpirunPid: int) (rank: int) =
    Directory.GetDirectories "/proc"
    |> Array.choose (fun d -> match Int32.TryParse(Path.GetFileName d) with | true, pid -> Some pid | _ -> None)
    |> Array.tryFind (fun pid ->
        try
            let stat = File.ReadAllText(sprintf "/proc/%d/stat" pid)
            let parent = stat.Substring(stat.LastIndexOf ')' + 2).Split(' ').[1]
            parent = string mpirunPid
            && File.ReadAllText(sprintf "/proc/%d/environ" pid).Split('\000') |> Array.contains (sprintf "OMPI_COMM_WORLD_RANK=%d" rank)
        with _ -> false)

let private waitUntil (seconds: int) (what: string) (condition: unit -> bool) =
    let watch = Stopwatch.StartNew()
    while not (condition ()) do
        if watch.Elapsed.TotalSeconds > float seconds then failwithf "timed out after %d s waiting for %s" seconds what
        Threading.Thread.Sleep 200

/// Runs `body` with the started job, and kills the job if `body` fails.
let private withJob (p: Process, text: unit -> string) (body: unit -> 'T) : 'T =
    try body ()
    with _ ->
        (try p.Kill true with _ -> ())
        reraise ()

/// A temporary working folder holding `images/`: 8 synthetic scenes of 64 px.
let private workFolderWithImages (name: string) =
    let work = DataTests.tempDir name
    Directory.Move(DataTests.sceneFolder 8 64 64, Path.Combine(work, "images"))
    work

/// `args` on 2 ranks, rank 0 working in folder `a`, rank 1 in `b` (a relative --data resolves in each), started.
let private rankPerFolder (a: string) (b: string) (args: string list) =
    mpirunIn a [] 1 (args @ [ ":"; "-np"; "1"; "-wdir"; b; "dotnet"; hostDll ] @ args)

[<Runtime.InteropServices.DllImport("libc", EntryPoint = "sysconf")>]
extern int64 private sysconf(int name)

/// The machine's online cores (sysconf's _SC_NPROCESSORS_ONLN, glibc's 84), as croc-host counts them.
let private onlineCores () = int (sysconf 84)

/// Rank 0's run folder `name` in `a`, and rank 1's of that name in `b` whose owner file links to rank 0's: the ranks
/// agree that they see one folder, and whatever rank 1 writes into its --output stays apart, in `b`.
let private linkedRunFolders (a: string) (b: string) (name: string) =
    Directory.CreateDirectory(Path.Combine(b, name)) |> ignore
    let owner = CrOC.Host.Training.RunFolder.OwnerName
    File.CreateSymbolicLink(Path.Combine(b, name, owner), Path.Combine(a, name, owner)) |> ignore
    Path.Combine(a, name)

/// What rank 1's run folder `name` in `b` (of `linkedRunFolders`) holds.
let private writtenByRank1 (b: string) (name: string) =
    Directory.GetFileSystemEntries(Path.Combine(b, name)) |> Array.map Path.GetFileName |> Array.sort

let private hasSteps (output: string) (n: int) () =
    let file = Path.Combine(output, "metrics.jsonl")
    File.Exists file && File.ReadAllLines(file).Length >= n

[<Literal>]
let private Tolerance = 1e-4

let tests =
    testSequenced <| testList "Distributed" [
        test "gradients are averaged in flat buckets that respect the bucket size, order and shapes" {
            use _ = torch.NewDisposeScope()
            let rng = Random 3
            let parameters =
                [ for shape, dtype in [ [| 7L; 5L |], f32; [| 300L |], f32; [| 2L; 3L; 4L |], f32; [| 1000L |], f32; [| 9L |], f32; [| 4L |], f32; [| 3L |], f64 ] ->
                    let p = torch.zeros(shape, dtype = dtype, requires_grad = true)
                    let g = torch.tensor(normal rng (int (Array.fold (*) 1L shape)), dtype = f32).reshape(shape).to_type(dtype)
                    p.grad <- g
                    p ]
            let before = parameters |> List.map (fun p -> (gradOf p).clone())
            let pair = new PeerHoldingTriple()
            (pair :> ICollective).AverageGradients(parameters, bucketBytes = 2048L)
            for p, g in List.zip parameters before do
                Expect.equal (maxAbsDiff (gradOf p) (g * 2.0f)) 0.0 "the mean of g and 3·g, written back into every gradient"
            // after a flush the next bucket counts its own bytes only; a bucket holds one dtype (its flat buffer has one)
            Expect.sequenceEqual pair.Calls [ 1436L; 4000L; 52L; 24L ] "buckets: float32 (35 + 300 + 24), (1000 alone: larger than a bucket), (9 + 4), then float64 (3)"
            let exact = new PeerHoldingTriple()
            (exact :> ICollective).AverageGradients(parameters, bucketBytes = 1436L)
            Expect.sequenceEqual exact.Calls [ 1436L; 4000L; 52L; 24L ] "a bucket filled to exactly its size is one call"
        }

        test "the ranks' agreement: a value that differs is refused naming each rank's (not a fingerprint's); settings by their count first, then each by name; a command's settings are all its options" {
            use alike = new PeerGathering(fun _ mine -> mine)
            (alike :> ICollective).Agree("the number of steps", 12.0, "every process needs the same options")
            Expect.equal alike.Looks 1 "one all-gather, and no refusal"
            let refused (ranks: ICollective) (agree: ICollective -> unit) =
                let e = Expect.throwsC (fun () -> agree ranks) id
                Expect.isTrue (e :? RanksDisagreeException) (string e)
                e.Message
            let other () = new PeerGathering(fun _ mine -> mine + 1.0)
            Expect.equal (refused (other ()) (fun r -> r.Agree("the number of steps", 12.0, "same options")))
                "the processes disagree on the number of steps (12, 13): same options" "each rank's value, in rank order"
            Expect.equal (refused (other ()) (fun r -> r.Agree("the training images", 12.0, "same dataset", showValues = false)))
                "the processes disagree on the training images: same dataset" "a fingerprint's values say nothing: not shown"
            // a rank of another build has other settings: their count is compared before the per-setting all-gather that assumes it
            let settings = ResizeArray [ struct ("batch", "4"); struct ("lr", "0.1") ]
            Expect.stringContains (refused (other ()) (fun r -> r.AgreeOnSettings(settings))) "disagree on the number of settings (2, 3)" "the count first"
            Expect.sequenceEqual [ for struct (name, _) in Agreement.SettingsOf(CrOC.Host.AllReduceBenchmarkOptions()) -> name ] [ "sizes"; "repeats"; "step-seconds" ]
                "bench-allreduce's ranks compare every option: the all-reduces' sizes and counts too"
        }

        test "threads: a warning when a machine's processes ask for more threads than it has cores, none otherwise" {
            Expect.isNone (Option.ofObj (Collectives.Oversubscription(2, 1, 2))) "2 threads on 2 cores"
            Expect.isNone (Option.ofObj (Collectives.Oversubscription(1, 2, 2))) "2 processes of 1 thread on 2 cores"
            let warning = present (Collectives.Oversubscription(512, 1, 2))
            Expect.stringContains warning "1 process(es) × 512 threads ask for more than this machine's 2 cores" "says how many and why"
            Expect.stringContains (present (Collectives.Oversubscription(2, 2, 2))) "--threads 0" "names the default that shares the cores"
        }

        test "threads: by default the machine's cores are shared among its local processes, whatever the world size" {
            let threads (world, localWorld) = Collectives.DefaultThreads(new RecordingRanks(world, localWorld))
            Expect.equal (threads (1, 1)) Environment.ProcessorCount "alone on the machine: every core this process may run on"
            Expect.equal (threads (64, 1)) Environment.ProcessorCount "one of 64 ranks, alone on its machine: as many (the other ranks run elsewhere)"
            Expect.equal (threads (1_000_000, 1_000_000)) 1 "a million processes on this machine: one thread each (at least one)"
        }

        test "the starting weights are broadcast from rank 0, every tensor, and not at all alone" {
            use _ = torch.NewDisposeScope()
            let tensors = [ for n in 1 .. 3 -> torch.zeros(int64 n) ]
            let four = new RecordingRanks(4, 2)
            (four :> ICollective).BroadcastFromRoot(tensors)
            Expect.sequenceEqual four.BroadcastRoots [ 0; 0; 0 ] "one broadcast per tensor, each from rank 0"
            let alone = new RecordingRanks(1, 1)
            (alone :> ICollective).BroadcastFromRoot(tensors)
            Expect.isEmpty alone.BroadcastRoots "a single process broadcasts nothing"
        }

        test "the watchdog reports an operation that outlives its timeout, and only that one" {
            let fired = Collections.Concurrent.ConcurrentQueue<string>()
            let watchdog = Watchdog(TimeSpan.FromMilliseconds 300.0, Action<string>(fired.Enqueue))
            using (watchdog.Guard "quick all-reduce") (fun _ -> Threading.Thread.Sleep 50)
            using (watchdog.Guard "stuck all-reduce") (fun _ -> Threading.Thread.Sleep 900)
            Threading.Thread.Sleep 500
            Expect.equal fired.Count 1 "one report"
            let message = match fired.TryPeek() with | true, m -> m | _ -> ""
            Expect.stringContains message "stuck all-reduce did not complete within 0 s" "names the operation"
            Expect.stringContains message "another rank" "says why"
        }

        test "a synthetic set published by another process first is kept (concurrent generation on one machine)" {
            let home = DataTests.tempDir "publish"
            let root, mine = Path.Combine(home, "set"), Path.Combine(home, "set.123.partial")
            Directory.CreateDirectory root |> ignore
            File.WriteAllText(Path.Combine(root, "train-files.txt"), "theirs")
            Directory.CreateDirectory mine |> ignore
            File.WriteAllText(Path.Combine(mine, "train-files.txt"), "mine")
            CrOC.Host.Training.SyntheticDataset.Publish(mine, root)
            Expect.equal (File.ReadAllText(Path.Combine(root, "train-files.txt"))) "theirs" "the published set is untouched"
            Expect.isFalse (Directory.Exists mine) "this process's copy is dropped"
            let fresh = Path.Combine(home, "other")
            Directory.CreateDirectory(fresh + ".partial") |> ignore
            CrOC.Host.Training.SyntheticDataset.Publish(fresh + ".partial", fresh)
            Expect.isTrue (Directory.Exists fresh) "without a rival the copy is renamed into place"
        }

        test "generating the synthetic set outlasts --collective-timeout: the other rank waits for it, without the watchdog" {
            let home = DataTests.tempDir "dp-generate"
            let output = Path.Combine(home, "run")
            let args =
                "train" :: [ for name, value in TrainingTests.tinyPairs output do if name <> "data" then yield "--" + name; yield value ]
                @ [ "--synthetic-train"; "2500"; "--synthetic-val"; "8"; "--max-steps"; "1"; "--collective-timeout"; "3" ]
            let code, text = mpirunWith [ "CROC_DATA_HOME", home ] 2 args |> finish 240
            Expect.equal code 0 (sprintf "the job trains once the set exists:\n%s" text)
            let generated = Text.RegularExpressions.Regex.Matches(text, "generating 2500 \\+ 8 synthetic scenes").Count
            Expect.equal generated 1 (sprintf "local rank 0 alone generated the set, the other rank waited for it:\n%s" text)
            Expect.isFalse (text.Contains "did not complete within") "no watchdog fired"
            Expect.isTrue (hasSteps output 1 ()) "the step was logged"
        }

        test "2 processes × batch 4 reproduce 1 process × batch 4 × accum 2, through a resume; rank 0 alone writes" {
            let two = DataTests.tempDir "dp-two"
            let code, text = mpirun 2 (trainArgs two [ "--max-steps"; "2" ]) |> finish 180
            Expect.equal code 0 (sprintf "first 2 steps:\n%s" text)
            let code, text = mpirun 2 (trainArgs two [ "--max-steps"; "4" ]) |> finish 180
            Expect.equal code 0 (sprintf "resumed to step 4:\n%s" text)
            Expect.stringContains text "resumed from" "the second job resumed"
            let one = DataTests.tempDir "dp-one"
            let code, text = TrainingTests.cli (List.toArray (trainArgs one [ "--max-steps"; "4"; "--accum"; "2" ]))
            Expect.equal code 0 text
            let dp, single = TrainingTests.metrics two, TrainingTests.metrics one
            Expect.sequenceEqual [ for r in dp -> r.GetProperty("step").GetInt32() ] [ 1; 2; 3; 4 ] "each step logged once (only rank 0 writes)"
            let live = [ for r in dp -> r.GetProperty("live_tensors").GetDouble() ]
            Expect.equal live.[3] live.[2] "no tensor left alive per step (the batches read ahead of the step were moved outside its scope once)"
            for a, b in Array.zip dp single do
                for key in [ "loss"; "loss_img"; "loss_obj"; "teacher_entropy"; "objects_per_image" ] do
                    let x, y = a.GetProperty(key).GetDouble(), b.GetProperty(key).GetDouble()
                    Expect.isLessThanOrEqual (abs (x - y)) Tolerance (sprintf "%s at step %d: %g vs %g" key (a.GetProperty("step").GetInt32()) x y)
            use _ = torch.NewDisposeScope()
            let last (output: string) = TrainingTests.tensorsOf (CrOC.Host.Training.Checkpoints.List(output) |> Seq.last)
            let a, b = last two, last one
            let atStep2 = TrainingTests.tensorsOf (CrOC.Host.Training.Checkpoints.List(one) |> Seq.head)
            let norm (t: Tensor) = t.to_type(f64).norm().item<float>()
            for name in [ "centre"; "centre_c"; "student.backbone.blocks.1.mlp.fc2.weight"; "student.head.mlp.0.weight"; "teacher.backbone.blocks.0.attn.qkv.weight" ] do
                let moved = norm (b.[name] - atStep2.[name])
                // Summing the gradient in another order differs in rounding, which AdamW enlarges where a
                // gradient is near zero; norms average over the elements (seen: at most 1.1e-4 of the movement).
                Expect.isLessThanOrEqual (norm (a.[name] - b.[name])) (moved / 100.0) (sprintf "%s after 4 steps: ‖a − b‖ within 1 %% of how far steps 3–4 moved it (%g)" name moved)
            let code, error = TrainingTests.cli (List.toArray (trainArgs two [ "--max-steps"; "6" ]))
            Expect.equal code 2 "resuming a 2-process run with 1 process is refused"
            Expect.stringContains error "2 process(es), this run has 1" "and says why"
            Expect.isFalse (error.Contains "--help") "no pointer to --help: no option is wrong (it followed once)"
        }

        test "a tar archive with broken members: 2 processes × batch 2 × accum 2 equal 1 process × batch 2 × accum 4 (each micro-batch's random streams follow its images); the broken members are skipped" {
            let garbage = Array.init 3000 (fun i -> byte ((i * 7919) % 251))
            // 22 scenes + 2 broken members = 24 = 3 global batches of 8: every member is visited in an epoch.
            // With accum > 1 on several ranks, rank r's micro-batch k is sub-batch (step·accum + k)·W + r of
            // the single process: its images and its random streams (stochastic depth, seeding) must agree.
            let folder, tar = TarTests.sceneTar 22 [ "broken-a.jpg", garbage; "broken-b.png", [| 1uy; 2uy |] ]
            let two = DataTests.tempDir "dp-tar-two"
            let code, text = mpirun 2 (trainArgs two [ "--data"; tar; "--batch"; "2"; "--accum"; "2"; "--max-steps"; "3" ]) |> finish 180
            Expect.equal code 0 (sprintf "2 processes on the archive:\n%s" text)
            Expect.stringContains text "broken-a.jpg" "a broken member is reported"
            let one = DataTests.tempDir "dp-tar-one"
            let code, text = TrainingTests.cli (List.toArray (trainArgs one [ "--data"; tar; "--batch"; "2"; "--accum"; "4"; "--max-steps"; "3" ]))
            Expect.equal code 0 text
            for a, b in Array.zip (TrainingTests.metrics two) (TrainingTests.metrics one) do
                let x, y = a.GetProperty("loss").GetDouble(), b.GetProperty("loss").GetDouble()
                Expect.isLessThanOrEqual (abs (x - y)) Tolerance (sprintf "loss at step %d: %g vs %g" (a.GetProperty("step").GetInt32()) x y)
            Directory.Delete(folder, true)
            File.Delete tar
        }

        test "SIGTERM to one rank stops all ranks after the same step, said by that rank; rank 0 alone writes that step's checkpoint; exit 0" {
            let a, b = DataTests.tempDir "dp-stopped-a", DataTests.tempDir "dp-stopped-b"
            let output = linkedRunFolders a b "run"
            // --epochs too: the tiny run's 3 epochs of one step each ended by themselves, whether or not the stop reached rank 0
            let job = rankPerFolder a b (trainArgs "run" [ "--max-steps"; "100000"; "--epochs"; "100000"; "--checkpoint-every"; "100000" ])
            let p, text = job
            withJob job (fun () ->
                waitUntil 120 "the first step" (hasSteps output 1)
                let rank1 = rankPid p.Id 1 |> Option.defaultWith (fun () -> failwithf "rank 1 not found:\n%s" (text ()))
                (present (Process.Start("kill", [| "-TERM"; string rank1 |]))).WaitForExit())
            let code, text = finish 120 job
            Expect.equal code 0 (sprintf "a clean stop:\n%s" text)
            Expect.stringContains text "croc-host train [rank 1]: SIGTERM: finishing the current step" "the rank that got it says so (nothing did)"
            let steps = TrainingTests.metrics output |> Array.map (fun r -> r.GetProperty("step").GetInt32())
            let last = CrOC.Host.Training.Checkpoints.List(output) |> Seq.last
            Expect.stringContains last (sprintf "step-%08d" (Array.last steps)) "the checkpoint is the last logged step"
            Expect.sequenceEqual (writtenByRank1 b "run") [| CrOC.Host.Training.RunFolder.OwnerName |] "rank 1 wrote no checkpoint of its own at the stop"
            for d in [ a; b ] do Directory.Delete(d, true)
        }

        test "bench: an error on one rank alone ends every rank at once with its line, not after the 600 s watchdog" {
            let bench = [ "bench"; "--preset"; "tiny"; "--batch"; "2"; "--repeats"; "1"; "--no-data" ]
            // MPMD: rank 0 benches on the CPU, rank 1 asks for a GPU this machine lacks
            let code, text = mpirun 1 (bench @ [ ":"; "-np"; "1"; "dotnet"; hostDll ] @ bench @ [ "--device"; "cuda" ]) |> finish 120
            Expect.equal code 2 (sprintf "the failing rank's exit code:\n%s" text)
            Expect.stringContains text "bench [rank 1]" "its line names the rank"
        }

        test "bench under mpirun counts every process's images: images/s is processes × --batch over the median step; rank 0 alone reports; the thread warning counts the machine's processes" {
            let cores = onlineCores ()
            let code, text = mpirun 2 [ "bench"; "--preset"; "tiny"; "--batch"; "2"; "--repeats"; "1"; "--precision"; "fp32"; "--json"; "--threads"; string cores ] |> finish 180
            Expect.equal code 0 text
            let count (what: string) = text.Split('\n') |> Array.filter (fun l -> l.Contains what) |> Array.length
            for what in [ "bench: preset"; "s median over"; "\"images_per_s\"" ] do Expect.equal (count what) 1 (sprintf "'%s' once: rank 0 alone prints\n%s" what text)
            Expect.stringContains text (sprintf "warning: 2 process(es) × %d threads ask for more than this machine's %d cores" cores cores) "both processes of this machine counted (MPI's split by machine)"
            use json = JsonDocument.Parse(text.Split('\n', StringSplitOptions.RemoveEmptyEntries) |> Array.find (fun l -> l.StartsWith "{"))
            let field (name: string) = json.RootElement.GetProperty(name).GetDouble()
            Expect.equal (field "processes") 2.0 "both ranks"
            Expect.floatClose Accuracy.veryHigh (field "images_per_s") (2.0 * 2.0 / field "step_s") "2 processes × 2 images per median step"
            Expect.isTrue (json.RootElement.GetProperty("data_images_per_s").ValueKind = JsonValueKind.Null) "no data-pipeline timing under mpirun"
        }

        test "bench-allreduce: the bus bandwidth is 2(N−1)/N of the algorithm's; the cost per MB and the step estimate follow from the medians and the ring model with 4-byte gradients" {
            let code, text = mpirun 3 [ "bench-allreduce"; "--sizes"; "0.01,1"; "--repeats"; "2"; "--step-seconds"; "4.3" ] |> finish 180
            Expect.equal code 0 text
            let printed (format: string) (x: float) = x.ToString(format, Globalization.CultureInfo.InvariantCulture)
            // a row per size: MB, median ms, algorithm and bus bandwidth in GB/s (= MB/ms)
            let sizes = [ for m in Text.RegularExpressions.Regex.Matches(text, @"(?m)^\s*([\d.]+)\s+([\d.]+)\s+([\d.]+)\s+([\d.]+)$") -> Array.init 4 (fun g -> float m.Groups.[g + 1].Value) ]
            Expect.equal (sizes |> List.map (fun r -> r.[0])) [ 0.01; 1.0 ] (sprintf "a row per size:\n%s" text)
            for r in sizes do
                let mb, ms, algbw, busbw = r.[0], r.[1], r.[2], r.[3]
                Expect.isTrue (algbw >= mb / (ms + 5e-4) - 0.005 && algbw <= mb / max 1e-9 (ms - 5e-4) + 0.005) (sprintf "%g MB in %g ms: %g GB/s" mb ms algbw)
                Expect.floatClose { absolute = 0.012; relative = 0.0 } busbw (algbw * 4.0 / 3.0) (sprintf "%g MB: bus bandwidth 2(N−1)/N = 4/3 of %g GB/s" mb algbw)
            let cost = Text.RegularExpressions.Regex.Match(text, @"cost ([\d.]+) ms per MB at 3 processes").Groups.[1].Value |> float
            Expect.floatClose { absolute = 0.001; relative = 0.0 } cost (sizes.[1].[1] / sizes.[1].[0]) "the largest size's median over its MB"
            let gradients =
                use scope = torch.NewDisposeScope()
                let student = CrOC.Math.Network.init (CrOC.Host.Training.CrocSetup.Network CrOC.Host.Training.TrainConfig.Official) (new torch.Generator(0UL))
                4.0 * float (CrOC.Math.Network.trainable student |> List.sumBy (fun (_, t) -> t.numel()))
            Expect.stringContains text (sprintf "= %s MB of float32 gradients" (printed "F0" (gradients / 1e6))) "4 bytes per trainable parameter of the official student"
            // ring all-reduce over N nodes: 2(N−1)/N · S / bandwidth + 2(N−1) · latency, after 4.3 s of compute; efficiency 4.3 s over the step
            let links = [ 1.25e9, 50e-6; 12.5e9, 5e-6 ] // 10 GbE, 100 Gb/s InfiniBand
            for nodes in [ 2; 8; 64 ] do
                let row = Text.RegularExpressions.Regex.Match(text, sprintf @"(?m)^\s+%d\s+(.*)$" nodes).Groups.[1].Value
                let cells = [ for m in Text.RegularExpressions.Regex.Matches(row, @"([\d.]+) s \(\s*(\d+)% eff\.\)") -> float m.Groups.[1].Value, float m.Groups.[2].Value ]
                Expect.equal cells.Length 3 (sprintf "%d nodes: this machine's link and two others:\n%s" nodes text)
                for step, efficiency in cells do
                    // the efficiency printed to 1 %, the step to 0.01 s (≥ 4.3 s: ≤ 0.12 % off in 430/step)
                    Expect.isLessThanOrEqual (abs (efficiency - 100.0 * 4.3 / step)) 0.65 (sprintf "%d nodes: %g%% of %g s is compute" nodes efficiency step)
                for (bandwidth, latency), (step, _) in List.zip links (List.tail cells) do
                    let expected = 4.3 + (2.0 * float (nodes - 1) / float nodes * gradients / bandwidth + 2.0 * float (nodes - 1) * latency)
                    Expect.equal (printed "F2" step) (printed "F2" expected) (sprintf "%d nodes at %g B/s, %g s latency" nodes bandwidth latency)
        }

        test "a command that runs as one process is refused under mpirun -np 2 before any work (two exports raced for one set of files; evaluations did the work twice); under -np 1 it runs, with no terminal sequence in mpirun's output" {
            let dir = DataTests.tempDir "dp-single"
            let export = [ "export"; "--weights"; Path.Combine(dir, "absent.safetensors"); "--output"; Path.Combine(dir, "out", "bb") ]
            let code, text = mpirun 2 export |> finish 120
            Expect.equal code 2 (sprintf "bad input:\n%s" text)
            Expect.stringContains text "croc-host export: runs as one process, and mpirun started 2 copies of it" "says why"
            Expect.stringContains text "start it without mpirun" "says what to do"
            Expect.isFalse (Directory.Exists(Path.Combine(dir, "out"))) "nothing made"
            let code, text = mpirun 1 export |> finish 120
            Expect.equal code 2 text
            Expect.isFalse (text.Contains "runs as one process") (sprintf "one process under mpirun goes on to its own checks (the weights file is absent):\n%s" text)
            let code, text = mpirun 2 [ "export"; "--help" ] |> finish 120
            Expect.equal code 0 (sprintf "--help is answered:\n%s" text)
            let benchVit = [ "bench-vit"; "--arch"; "tiny"; "--size"; "32"; "--batch"; "1"; "--repeats"; "1" ]
            // TERM set, as in a terminal: the rank's standard output is mpirun's pseudo-terminal
            let code, text = mpirunWith [ "TERM", "xterm" ] 1 benchVit |> finish 120
            Expect.equal code 0 (sprintf "a one-process command under mpirun -np 1 runs:\n%s" text)
            Expect.isFalse (text.Contains '\u001b') (sprintf "no terminal sequence (.NET's keypad mode, ESC[?1h ESC=) in mpirun's output:\n%s" text)
            let code, text = mpirun 2 benchVit |> finish 120
            Expect.equal code 2 (sprintf "and under -np 2 is refused:\n%s" text)
            Directory.Delete(dir, true)
        }

        test "the process count of a launch is read from Open MPI's, PMI's (MPICH, srun --mpi=pmi2) or, under PMIx, Slurm's step variables; a Slurm step alone is no launch; a PMI-only launch of train or bench is refused" {
            let dir = DataTests.tempDir "dp-launchers"
            // each case's launcher variables alone (none inherited from a launch the suite itself may run in)
            let inherited =
                Environment.GetEnvironmentVariables().Keys |> Seq.cast<string>
                |> Seq.filter (fun name -> Collectives.IsLauncherVariable name || name.StartsWith "SLURM_")
                |> Seq.map (fun name -> name, (null: string | null)) |> List.ofSeq
            let launched (args: string list) (env: (string * string) list) =
                let code, out, err = runProcess "dotnet" (hostDll :: args) (inherited @ (env |> List.map (fun (n, v) -> n, (v: string | null)))) 120
                code, out + err
            let export = launched [ "export"; "--weights"; Path.Combine(dir, "absent.safetensors"); "--output"; Path.Combine(dir, "out", "bb") ]
            for env, said in [ [ "OMPI_COMM_WORLD_SIZE", "2"; "OMPI_COMM_WORLD_RANK", "1" ], "mpirun started 2 copies of it (rank 1/2)"
                               [ "PMI_SIZE", "3"; "PMI_RANK", "2" ], "mpirun started 3 copies of it (rank 2/3)"
                               [ "PMIX_RANK", "1"; "SLURM_STEP_NUM_TASKS", "4"; "SLURM_NTASKS", "1" ], "mpirun started 4 copies of it (rank 1/4)" ] do
                let code, text = export env
                Expect.equal code 2 (sprintf "%A: bad input:\n%s" env text)
                Expect.stringContains text said (sprintf "%A: the launch's process count and this rank" env)
            let code, text = export [ "SLURM_STEP_NUM_TASKS", "4"; "SLURM_NTASKS", "4" ] // an sbatch script's step, no MPI launch
            Expect.equal code 2 text
            Expect.isFalse (text.Contains "runs as one process") (sprintf "a Slurm step without PMIx goes on to the command's own checks (the weights file is absent):\n%s" text)
            // MPICH's mpiexec or srun --mpi=pmi2 set PMI's variables only: each copy of train would train alone into one run folder
            for args in [ [ "train"; "--output"; Path.Combine(dir, "out", "run") ]; [ "bench"; "--batch"; "1"; "--repeats"; "1" ] ] do
                let code, text = launched args [ "PMI_SIZE", "2"; "PMI_RANK", "1" ]
                Expect.equal code 2 (sprintf "%s: bad input:\n%s" args.Head text)
                Expect.stringContains text $"croc-host {args.Head}: runs data-parallel under Open MPI's launch only (mpirun, or srun --mpi=pmix), and a PMI launcher (MPICH's mpiexec, srun --mpi=pmi2) started 2 copies of it (rank 1/2)" "says why"
            Expect.isFalse (Directory.Exists(Path.Combine(dir, "out"))) "nothing made"
            Directory.Delete(dir, true)
        }

        test "a launcher's variables (Open MPI's, PMIx's, PMI's) are known as such, so that a suite's jobs do not inherit them; Slurm's and others are not" {
            for name in [ "OMPI_COMM_WORLD_RANK"; "OMPI_MCA_btl_vader_single_copy_mechanism"; "PMIX_RANK"; "PMIX_NAMESPACE"; "PMI_SIZE"; "PMI_FD" ] do
                Expect.isTrue (Collectives.IsLauncherVariable name) name
            for name in [ "SLURM_STEP_NUM_TASKS"; "OMP_NUM_THREADS"; "PATH"; "ompi_comm_world_rank"; "CROC_SUITE_PROCESS" ] do
                Expect.isFalse (Collectives.IsLauncherVariable name) name
        }

        test "ranks whose settings differ are refused naming the settings (--precision auto on mixed CPUs gives bf16 on one, fp32 on another)" {
            let output = DataTests.tempDir "dp-disagree"
            let train (extra: string list) = trainArgs output ([ "--max-steps"; "1" ] @ extra)
            let code, text = mpirun 1 (train [ "--precision"; "fp32" ] @ [ ":"; "-np"; "1"; "dotnet"; hostDll ] @ train [ "--precision"; "bf16" ]) |> finish 120
            Expect.equal code 2 (sprintf "bad input, as a single process's bad option:\n%s" text)
            Expect.stringContains text "disagree on the setting(s) precision (--precision auto picks bf16 per machine" "names the setting and the cause"
            Expect.isFalse (text.Contains "MPI_ABORT") (sprintf "every rank meets the disagreement and ends normally: none aborts the job:\n%s" text)
            // Compared as the ranks start, before work that assumes them alike: a rank without --data waited in the synthetic
            // set's barrier while the other searched its data, and a --min-lr refused on one rank left the other in a
            // collective, each until the watchdog's exit 3; nothing of the run is made.
            let rec withoutData = function "--data" :: _ :: rest -> rest | word :: rest -> word :: withoutData rest | [] -> []
            for differing, rank1 in [ "data", withoutData (train [ "--collective-timeout"; "30" ]); "min-lr", train [ "--collective-timeout"; "30"; "--min-lr"; "1" ] ] do
                let code, text = mpirun 1 (train [ "--collective-timeout"; "30" ] @ [ ":"; "-np"; "1"; "dotnet"; hostDll ] @ rank1) |> finish 120
                Expect.equal code 2 (sprintf "%s: bad input at once:\n%s" differing text)
                Expect.stringContains text $"disagree on the setting(s) {differing}" $"{differing}: named"
                Expect.isEmpty (Directory.GetFileSystemEntries output) (sprintf "%s: nothing of a run is made in --output" differing)
            Directory.Delete(output, true)
        }

        test "bench-allreduce and bench: ranks given different settings are refused naming them, before the collectives that depend on them" {
            // different --repeats ran unmatched all-reduces (a heap corruption, SIGABRT); a different --batch printed images/s as if both had rank 0's
            let allReduce (repeats: string) = [ "bench-allreduce"; "--sizes"; "1,2"; "--repeats"; repeats ]
            let code, text = mpirun 1 (allReduce "3" @ [ ":"; "-np"; "1"; "dotnet"; hostDll ] @ allReduce "5") |> finish 60
            Expect.equal code 2 (sprintf "bad input, as a single process's bad option:\n%s" text)
            Expect.stringContains text "disagree on the setting(s) repeats:" "names the setting"
            Expect.isFalse (text.Contains "MPI_ABORT") (sprintf "every rank meets the disagreement and ends normally:\n%s" text)
            let bench (batch: string) = [ "bench"; "--preset"; "tiny"; "--batch"; batch; "--repeats"; "1"; "--no-data"; "--precision"; "fp32" ]
            let code, text = mpirun 1 (bench "2" @ [ ":"; "-np"; "1"; "dotnet"; hostDll ] @ bench "4") |> finish 120
            Expect.equal code 2 (sprintf "bad input:\n%s" text)
            Expect.stringContains text "disagree on the setting(s) batch:" "names the setting"
            Expect.isFalse (text.Contains "images/s") "no step was timed"
        }

        test "a run folder the ranks do not all see (a relative --output in each rank's own working folder) is refused once rank 0 claimed it, before any step; so are a resume whose ranks find different steps or different checkpoints of one step" {
            // it ran, and was refused only at its first resume ("the processes disagree on the step to resume from")
            let first, second = DataTests.tempDir "dp-own-a", DataTests.tempDir "dp-own-b"
            let train = trainArgs "run" [ "--max-steps"; "1" ]
            let code, text = mpirunIn first [] 1 (train @ [ ":"; "-np"; "1"; "-wdir"; second; "dotnet"; hostDll ] @ train) |> finish 120
            Expect.equal code 2 (sprintf "bad input:\n%s" text)
            Expect.stringContains text "--output 'run' must be one folder that every process sees" "says why"
            Expect.isFalse (text.Contains "step 1/") "no step was run"
            Expect.isFalse (Directory.Exists(Path.Combine(second, "run"))) "rank 1 made nothing of its own"
            // a folder that rank 1 sees as rank 0 made it (here through its owner file alone) is accepted; rank 0 alone writes into it
            let linked = linkedRunFolders first second "linked"
            let train = trainArgs "linked" [ "--max-steps"; "2"; "--checkpoint-every"; "1" ]
            let code, text = rankPerFolder first second train |> finish 120
            Expect.equal code 0 (sprintf "trained:\n%s" text)
            Expect.equal (CrOC.Host.Training.Checkpoints.List(linked).Count) 2 "rank 0's checkpoints of steps 1 and 2"
            Expect.sequenceEqual (writtenByRank1 second "linked") [| CrOC.Host.Training.RunFolder.OwnerName |] "rank 1 wrote neither checkpoints nor metrics"
            // resumed, rank 1 finds none of those checkpoints (a cache that shows the owner file but not the newer ones): the
            // steps to resume from are compared before any step (the ranks would otherwise run different steps and wait on each other)
            let code, text = rankPerFolder first second (trainArgs "linked" [ "--max-steps"; "3"; "--collective-timeout"; "10" ]) |> finish 120
            Expect.equal code 2 (sprintf "bad input:\n%s" text)
            Expect.stringContains text "disagree on the step to resume from (2, 0)" "each rank's step"
            // rank 1 finds a checkpoint of step 2 too, but another (an earlier run's through a stale cache, after --move-aside):
            // the same step with other AdamW moments, which the start does not broadcast; refused by its SHA-256
            let rank0s = CrOC.Host.Training.Checkpoints.List(linked) |> Seq.last
            let rank1s = Path.Combine(second, "linked", "checkpoints", Path.GetFileName rank0s |> nonNull)
            Directory.CreateDirectory(Path.GetDirectoryName rank1s |> nonNull) |> ignore
            let struct (tensors, metadata) = Safetensors.Read rank0s
            let moment = tensors.Keys |> Seq.find (fun name -> name.StartsWith "adam.m.")
            tensors.[moment].add_(torch.ones_like tensors.[moment]) |> ignore
            Safetensors.Write(rank1s, tensors, metadata)
            let resume () = rankPerFolder first second (trainArgs "linked" [ "--max-steps"; "3"; "--collective-timeout"; "10" ]) |> finish 120
            let code, text = resume ()
            Expect.equal code 2 (sprintf "bad input:\n%s" text)
            Expect.stringContains text "disagree on the checkpoint resumed from (its SHA-256)" "the checkpoints differ"
            File.Copy(rank0s, rank1s, true)
            let code, text = resume ()
            Expect.equal code 0 (sprintf "rank 0's checkpoint, read from two folders: resumed together\n%s" text)
            Expect.stringContains text "step 3/3" "the next step ran"
            for dir in [ first; second ] do Directory.Delete(dir, true)
        }

        test "the ranks' look at the run folder: a rank that sees rank 0's owner file late (a network file system's stale cache) is asked again, not refused; rank 0 unable to read back its own is refused though every rank agrees" {
            let output = DataTests.tempDir "dp-owner-look"
            use blind = new PeerGathering(fun _ mine -> mine)
            let e = Expect.throwsC (fun () -> CrOC.Host.Training.Trainer.AgreeOnRunFolder(blind, output)) id
            Expect.isTrue (e :? RanksDisagreeException) (string e)
            Expect.stringContains e.Message "rank 0 cannot read back the run.owner" "no owner file: refused, whatever the others see"
            File.WriteAllText(Path.Combine(output, CrOC.Host.Training.RunFolder.OwnerName), "process 1 on host since now")
            use late = new PeerGathering(fun look mine -> if look = 1 then -1.0 else mine)
            CrOC.Host.Training.Trainer.AgreeOnRunFolder(late, output)
            Expect.equal late.Looks 2 "the rank that missed the file at the first look sees it at the second"
            Directory.Delete(output, true)
        }

        test "ranks whose datasets differ in names only (as many images) are refused before the first step" {
            let output = DataTests.tempDir "dp-datasets"
            // one relative --data, resolved in each rank's own working folder: the options agree, the images do not
            let a, b = workFolderWithImages "dp-datasets-a", workFolderWithImages "dp-datasets-b"
            let renamed = Directory.GetFiles(Path.Combine(b, "images")) |> Array.sort |> Array.last
            File.Move(renamed, Path.Combine(b, "images", "zz-" + Path.GetFileName renamed))
            let train = trainArgs output [ "--data"; "images"; "--max-steps"; "1" ]
            let code, text = rankPerFolder a b train |> finish 120
            Expect.equal code 2 (sprintf "bad input:\n%s" text)
            Expect.stringContains text "disagree on the training images (as many, but of other names" "says how the datasets differ"
            Expect.isFalse (File.Exists(Path.Combine(output, "metrics.jsonl"))) "no step ran"
            // one image fewer on rank 1 (batch 2: each still has a step per epoch): the counts are compared first, and named
            File.Delete(Directory.GetFiles(Path.Combine(b, "images")) |> Array.sort |> Array.head)
            let fewer = DataTests.tempDir "dp-datasets-fewer"
            let code, text = rankPerFolder a b (trainArgs fewer [ "--data"; "images"; "--batch"; "2"; "--max-steps"; "1" ]) |> finish 120
            Expect.equal code 2 (sprintf "bad input:\n%s" text)
            Expect.stringContains text "disagree on the number of training images (8, 7)" "each rank's count"
            Expect.isFalse (File.Exists(Path.Combine(fewer, "metrics.jsonl"))) "no step ran"
            for d in [ output; fewer; a; b ] do Directory.Delete(d, true)
        }

        test "one rank's data failing mid-run: every rank ends with a line, the root after its checkpoint and with the failure in train.log" {
            let output = DataTests.tempDir "dp-data-fails"
            let a, b = workFolderWithImages "dp-data-fails-a", workFolderWithImages "dp-data-fails-b"
            let job = rankPerFolder a b (trainArgs output [ "--data"; "images"; "--max-steps"; "100000"; "--epochs"; "100000"; "--checkpoint-every"; "100000" ])
            withJob job (fun () ->
                waitUntil 120 "two steps" (hasSteps output 2)
                // rank 1's copy goes bad under the same names mid-run (a failing disk, a half-synced copy)
                for f in Directory.GetFiles(Path.Combine(b, "images")) do File.WriteAllBytes(f, Array.init 3000 (fun i -> byte ((i * 7919) % 251))))
            let code, text = finish 180 job
            Expect.equal code 2 (sprintf "bad input:\n%s" text)
            Expect.stringContains text "train [rank 1]: 8 files in a row could not be decoded" "the failing rank's own line"
            let log = File.ReadAllText(Path.Combine(output, "train.log"))
            let failed = Text.RegularExpressions.Regex.Match(log, "the data failed at step ([0-9]+) on rank 1; the last good checkpoint is (.+)")
            Expect.isTrue failed.Success (sprintf "the root says what happened (rank 1 aborted the job at once, rank 0 logged nothing and lost its steps, once):\n%s" log)
            let step = int failed.Groups.[1].Value
            Expect.equal (Path.GetFileName(failed.Groups.[2].Value.Trim())) (sprintf "step-%08d.safetensors" (step - 1)) "the steps before the failure checkpointed"
            Expect.isTrue (File.Exists(failed.Groups.[2].Value.Trim())) "and that checkpoint is there"
            Expect.stringContains text (sprintf "train [rank 0]: the data failed at step %d on rank 1 (its line says why)" step) "rank 0 ends with a line of its own"
            Expect.isFalse (text.Contains "MPI_ABORT") (sprintf "every rank ends by itself, none aborting the others:\n%s" text)
            for d in [ output; a; b ] do Directory.Delete(d, true)
        }

        test "a rank that is killed ends the whole job with an error" {
            let output = DataTests.tempDir "dp-killed"
            let job = mpirun 2 (trainArgs output [ "--max-steps"; "100000"; "--checkpoint-every"; "100000" ])
            let p, text = job
            let survivor = withJob job (fun () ->
                waitUntil 120 "the first step" (hasSteps output 1)
                let victim = rankPid p.Id 1 |> Option.defaultWith (fun () -> failwithf "rank 1 not found:\n%s" (text ()))
                let survivor = rankPid p.Id 0
                Process.GetProcessById(victim).Kill()
                survivor)
            let code, text = finish 60 job
            Expect.notEqual code 0 (sprintf "mpirun reports the failure:\n%s" text)
            Expect.stringContains text "signal 9" "and names the killed rank's end"
            let alive pid =
                try Directory.Exists(sprintf "/proc/%d" pid) && not (File.ReadAllText(sprintf "/proc/%d/stat" pid).Contains ") Z ")
                with _ -> false
            match survivor with
            | Some pid -> waitUntil 10 "rank 0 to end" (fun () -> not (alive pid))
            | None -> ()
        }

        test "a rank that never starts MPI (one waiting for a --config FIFO's writer; here sleep): the others give up after --collective-timeout, 30 s at least (exit 3), instead of waiting in MPI_Init forever" {
            let output = DataTests.tempDir "dp-no-start"
            let watch = Stopwatch.StartNew()
            // not one that exits at once (`train --help`): mpirun then ends the job itself (SIGTERM) when rank 0 had called MPI_Init first
            let neverJoined (timeout: int) = // each job its own run folder
                mpirun 1 (trainArgs (Path.Combine(output, string timeout)) [ "--collective-timeout"; string timeout ] @ [ ":"; "-np"; "1"; "sleep"; "300" ])
            // at the same time (both wait): a timeout above the floor is the start's limit
            let short, long = neverJoined 5, neverJoined 32
            let code, text = finish 100 short
            Expect.equal code 3 (sprintf "the hung-rank code:\n%s" text)
            Expect.stringContains text "croc-host [rank 0/2]: the start of the run (MPI_Init) did not complete within 30 s: another process of the run has not joined" "rank 0 says what it waited for (a start-up gap is no hang: 30 s at least)"
            let code, text = finish 100 long
            Expect.equal code 3 (sprintf "the hung-rank code:\n%s" text)
            Expect.stringContains text "the start of the run (MPI_Init) did not complete within 32 s" "a longer --collective-timeout is waited in full"
            Expect.isLessThan watch.Elapsed.TotalSeconds 90.0 "bounded"
            Directory.Delete(output, true)
        }

        test "a rank that hangs: the others give up after --collective-timeout (exit 3) instead of waiting forever" {
            let output = DataTests.tempDir "dp-hung"
            let job = mpirun 2 (trainArgs output [ "--max-steps"; "100000"; "--checkpoint-every"; "100000"; "--collective-timeout"; "20" ])
            let p, text = job
            withJob job (fun () ->
                waitUntil 120 "the first step" (hasSteps output 1)
                let victim = rankPid p.Id 1 |> Option.defaultWith (fun () -> failwithf "rank 1 not found:\n%s" (text ()))
                (present (Process.Start("kill", [| "-STOP"; string victim |]))).WaitForExit())
            let watch = Stopwatch.StartNew()
            let code, text = finish 120 job
            Expect.equal code 3 (sprintf "the job failed with the hung-rank code (3: the watchdog's exit, which mpirun passes on):\n%s" text)
            Expect.stringContains text "did not complete within 20 s" "rank 0's watchdog says what it waited for"
            Expect.stringContains (File.ReadAllText(Path.Combine(output, "train.log"))) "did not complete within 20 s" "in train.log too"
            Expect.isLessThan watch.Elapsed.TotalSeconds 80.0 "bounded"
        }
    ]
