/// Storage that fails or deceives: full disks, file-size limits, closed streams, links, and small
/// files read up to a limit. Each test reproduces a problem found by trying the tool as a user
/// would.
module CrOC.Tests.StorageHardening

open System
open System.Diagnostics
open System.IO
open Expecto
open CrOC.Host
open CrOC.Host.CommandLine
open CrOC.Host.Training
open CrOC.Host.Weights
open CrOC.Tests.TestUtil
open CrOC.Tests.HardeningShared

/// The descriptor calls a test needs to point this process's standard error at a file for a moment.
module private Descriptors =
    [<System.Runtime.InteropServices.DllImport("libc", SetLastError = true)>]
    extern int dup(int descriptor)
    [<System.Runtime.InteropServices.DllImport("libc", SetLastError = true)>]
    extern int dup2(int descriptor, int replaced)
    [<System.Runtime.InteropServices.DllImport("libc", SetLastError = true)>]
    extern int close(int descriptor)

let tests =
    testList "storage" [
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
            Directory.CreateDirectory(Path.Combine(root, "before")) |> ignore
            MadeFolders.Make(Path.Combine(root, "before", "empty"))
            MadeFolders.Make(Path.Combine(root, "kept", "empty"))
            MadeFolders.Make(Path.Combine(root, "gone", "a", "b"))
            File.WriteAllText(Path.Combine(root, "kept", "file.txt"), "written meanwhile")
            Directory.CreateDirectory(Path.Combine(root, "gone", "a", "another's")) |> ignore // made meanwhile by another process
            Expect.equal (set (MadeFolders.RemoveEmpty())) (set [ Path.Combine(root, "before", "empty"); Path.Combine(root, "kept", "empty"); Path.Combine(root, "gone", "a", "b") ]) "only the empty folders this command made"
            Expect.isTrue (Directory.Exists(Path.Combine(root, "before"))) "an empty folder that was there before stays"
            Expect.isTrue (Directory.Exists(Path.Combine(root, "gone", "a", "another's"))) "another's new folder stays, with its parents"
            Expect.isTrue (File.Exists(Path.Combine(root, "kept", "file.txt"))) "a folder holding a file stays, with the file"
            Expect.isTrue (Directory.Exists root) "the folder that was there stays"
            Directory.Delete(root, true)
        }

        test "a write past ulimit -f after the synthetic set was generated in the same process is named too (the runtime's write code is recompiled by then and throws from another method: it was an internal error); the same exception from other code stays internal" {
            let folder = DataTests.tempDir "file-limit-after-generation"
            let home = Path.Combine(folder, "home")
            // the default set (1,024 + 64 scenes): enough file writes for the JIT to recompile them; the run's checkpoint passes 256 KB
            let code, err = crocWithFileLimit 256L [ "CROC_DATA_HOME", home ] [ "train"; "--output"; Path.Combine(folder, "run"); "--preset"; "tiny"; "--max-steps"; "1" ]
            Expect.equal code 1 err
            Expect.isTrue (File.Exists(Path.Combine(home, "synthetic-v1-seed0-1024-64", "train-files.txt"))) "the set was generated by this run"
            Expect.stringContains err "croc-host train: a file grew past the largest this process may write (ulimit -f" "named"
            Expect.isFalse (err.Contains "internal error") err
            Directory.Delete(folder, true)
            // the same exception from other code stays an internal error (with its crash file)
            let ours = try raise (ArgumentOutOfRangeException("value", "a bug of ours")) with e -> e
            let streams = try (new MemoryStream()).Position <- -1L; failwith "a negative position was taken" with :? ArgumentOutOfRangeException as e -> e :> exn
            for e in [ ours; streams ] do
                Expect.isFalse (ExitCodes.IsExpected e) (sprintf "%s: internal" e.Message)
                Expect.stringStarts (ExitCodes.Message e) "internal error (ArgumentOutOfRangeException)" "said as such"
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

        test "a raw line (what is said once the console's writer cannot be used) goes to standard error, whole, in UTF-8, with its newline" {
            let file = scratchPath "raw-stderr" ".txt"
            let writeRaw () =
                use target = new FileStream(file, FileMode.Create, FileAccess.Write)
                let saved = Descriptors.dup 2
                Expect.isGreaterThanOrEqual saved 0 "standard error kept aside"
                try
                    Expect.equal (Descriptors.dup2(int (target.SafeFileHandle.DangerousGetHandle()), 2)) 2 "standard error pointed at the file"
                    Runtime.RawStandardError.WriteLine "croc-host: could not run: café"
                finally
                    Descriptors.dup2(saved, 2) |> ignore
                    Descriptors.close saved |> ignore
            writeRaw ()
            Expect.stringContains (File.ReadAllText file) "croc-host: could not run: café\n" "the line (another test's stderr could land beside it in that moment)"
            File.Delete file
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

        test "an output folder whose files' paths would pass the path limit is refused before anything is made; one byte shorter is taken" {
            let root = DataTests.tempDir "long-folder"
            let limit = PathLimits.PathBytes - PathLimits.RoomBelowFolder // 256 bytes left for the run's files below it
            let e = thrown<OutputException> (fun () -> OutputPaths.Folder(pathOfBytes root (limit + 1), "--output") |> ignore) "refused"
            Expect.stringContains e.Message (sprintf "keep it under %d bytes" limit) "says the limit"
            Expect.isEmpty (Directory.GetDirectories root) "nothing made"
            Expect.equal (Text.Encoding.UTF8.GetByteCount(OutputPaths.Folder(pathOfBytes root limit, "--output"))) limit "the limit itself is taken (and made)"
            Directory.Delete(root, true)
        }

        test "a small file's limit is its largest size: a stream of the limit is read whole, one byte more refused (at the 64 KiB chunks' edge too); a bounded view ends at its size" {
            for limit in [ 1000; 1 <<< 16 ] do
                for length in [ limit; limit + 1 ] do
                    let read = match CrOC.Data.BoundedFile.ReadAtMost(new MemoryStream(Array.zeroCreate<byte> length), limit) with null -> None | bytes -> Some bytes.Length
                    Expect.equal read (if length <= limit then Some length else None) (sprintf "%d bytes, limit %d" length limit)
            use inner = new MemoryStream([| 0uy .. 9uy |])
            use view = new CrOC.Data.BoundedStream(inner, 4L)
            use copy = new MemoryStream()
            view.CopyTo copy
            Expect.equal (copy.ToArray()) [| 0uy .. 3uy |] "its 4 bytes"
            Expect.equal inner.Position 4L "the rest left unread"
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

        test "a full disk's line tells the space needed from the space free: in bytes where both would read alike ('14.0 MiB, 14.0 MiB free' once)" {
            Expect.equal (ByteSize.Apart(14_680_064L, 14_654_464L)) ("14,680,064 bytes", "14,654,464 bytes") "alike in MiB: in bytes"
            Expect.equal (ByteSize.Apart(14_680_064L, 7_340_032L)) ("14.0 MiB", "7.0 MiB") "apart: as usual"
            Expect.equal (ByteSize.Apart(812L, 811L)) ("812 bytes", "811 bytes") "bytes already"
        }
    ]
