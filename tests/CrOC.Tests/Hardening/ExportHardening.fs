/// Export, records and hostile weight files: all-or-nothing exports, model cards, build identity,
/// refused weights. Each test reproduces a problem found by trying the tool as a user would.
module CrOC.Tests.ExportHardening

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
open CrOC.Host.Weights
open CrOC.Tests.TestUtil
open CrOC.Tests.HardeningShared

let tests =
    testList "exports and weights" [
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

        test "a set of files is renamed whole or not at all: a path another process takes after the check refuses the write before an earlier file is replaced, and the new files already in place are taken back" {
            let dir = DataTests.tempDir "export-set-race"
            let earlier, added, taken, marker = Path.Combine(dir, "a.bin"), Path.Combine(dir, "b.bin"), Path.Combine(dir, "c.bin"), Path.Combine(dir, "d.json")
            File.WriteAllText(earlier, "the earlier result")
            let content (text: string) = fun (s: Stream) -> s.Write(Text.Encoding.UTF8.GetBytes text)
            // the last file (eval-seg's JSON, which marks the set done) is renamed last whatever it is
            let files = [ AtomicFile.Content(earlier, content "new a"); AtomicFile.Content(added, content "new b"); AtomicFile.Content(taken, content "new c"); AtomicFile.Content(marker, content "new d") ]
            // replaceOnlyIf runs after the check of the paths and before the renames: there the other process writes c
            let otherProcessBetween _ = File.WriteAllText(taken, "the other process's"); true
            let e = thrown<OutputException> (fun () -> AtomicFile.WriteTogether(files, replace = true, replaceOnlyIf = otherProcessBetween)) "refused"
            Expect.stringContains e.Message "c.bin' was written by another process" "names the path taken"
            Expect.equal (File.ReadAllText earlier) "the earlier result" "the earlier file not replaced (it was, before its new sibling's refusal)"
            Expect.isFalse (File.Exists added) "the new file already in place taken back"
            Expect.equal (File.ReadAllText taken) "the other process's" "the other process's file kept"
            Expect.isFalse (File.Exists marker) "the last file not placed"
            Expect.equal (Directory.GetFiles dir).Length 2 "no temporary file left"
            Directory.Delete(dir, true)
        }

        test "a set's last file (eval-seg's JSON, which marks its masks done) is renamed after the others even when it is new; a refusal at it says the file there is none of this command's" {
            let dir = DataTests.tempDir "export-set-last"
            let earlier, marker = Path.Combine(dir, "mask.png"), Path.Combine(dir, "result.json")
            File.WriteAllText(earlier, "the earlier mask")
            let content (text: string) = fun (s: Stream) -> s.Write(Text.Encoding.UTF8.GetBytes text)
            let files = [ AtomicFile.Content(earlier, content "new mask"); AtomicFile.Content(marker, content "new json") ]
            // replaceOnlyIf runs after the check of the paths and before the renames: there the other process writes the marker's path
            let otherProcessBetween _ = File.WriteAllText(marker, "the other process's"); true
            let e = thrown<OutputException> (fun () -> AtomicFile.WriteTogether(files, replace = true, replaceOnlyIf = otherProcessBetween)) "refused"
            Expect.stringContains e.Message "result.json' was written by another process while this one worked, and is none of this command's results" "names the path and why it is kept"
            Expect.equal (File.ReadAllText earlier) "new mask" "the mask was renamed first: the marker comes last"
            Expect.equal (File.ReadAllText marker) "the other process's" "the other process's file kept"
            Expect.equal (Directory.GetFiles dir).Length 2 "no temporary file left"
            Directory.Delete(dir, true)
        }

        test "NoReplaceRename: of two threads moving their files to one free path at once, exactly one succeeds each time and the other's file stays where it was" {
            let dir = DataTests.tempDir "no-replace-rename"
            let target = Path.Combine(dir, "target")
            let sources = [| Path.Combine(dir, "0"); Path.Combine(dir, "1") |]
            use start = new Threading.Barrier(2)
            for round in 1 .. 300 do
                if File.Exists target then File.Delete target
                sources |> Array.iteri (fun i path -> File.WriteAllText(path, string i))
                let moved =
                    [| for i in 0 .. 1 -> Threading.Tasks.Task.Run(fun () -> start.SignalAndWait(); NoReplaceRename.TryMove(sources[i], target)) |]
                    |> Array.map (fun t -> t.Result)
                Expect.equal (moved |> Array.filter id).Length 1 (sprintf "round %d: one move" round)
                let winner = Array.findIndex id moved
                Expect.equal (File.ReadAllText target) (string winner) (sprintf "round %d: the target is the winner's file" round)
                Expect.equal (File.ReadAllText sources[1 - winner]) (string (1 - winner)) (sprintf "round %d: the other file where it was" round)
            Directory.Delete(dir, true)
        }

        test "export's default --output (beside --weights) refused is named as the default, not as an --output given ('--output' once)" {
            let dir = DataTests.tempDir "export-default-output"
            let weights = Path.Combine(dir, "w.safetensors")
            writeTinyBackbone weights
            Directory.CreateDirectory(Path.Combine(dir, "w.backbone.json")) |> ignore
            let code, _, err = croc 120 [ "export"; "--weights"; weights ]
            Expect.equal code 2 err
            Expect.stringContains err "--output (by default beside --weights) '" "named as the default"
            Directory.Delete(dir, true)
        }

        test "an export whose --output would replace its own --weights is refused, --overwrite or not, through a link too; the weights stay as they were" {
            let dir = DataTests.tempDir "export-input"
            let weights = Path.Combine(dir, "w.safetensors")
            writeTinyBackbone weights
            let link = Path.Combine(dir, "link.safetensors")
            File.CreateSymbolicLink(link, weights) |> ignore
            let before = File.ReadAllBytes weights
            for input, overwrite in List.allPairs [ weights; link ] [ []; [ "--overwrite" ] ] do
                let code, message = TrainingTests.cli (Array.ofList ([ "export"; "--weights"; input; "--output"; Path.Combine(dir, "w") ] @ overwrite))
                Expect.equal code 2 message
                Expect.stringContains message "is this command's input file" "says why"
            Expect.sequenceEqual (File.ReadAllBytes weights) before "the weights untouched"
            Directory.Delete(dir, true)
        }

        test "export keeps a checkpoint's config metadata that is not JSON (another tool's) as text in the model card, and says whether every tensor loaded (a re-export of an incomplete export too)" {
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
            // Its re-export stays incomplete and says so ("complete": true, silently, once); clusters warns of it too (never did).
            let code, out, err = croc 120 [ "export"; "--weights"; Path.Combine(dir, "p.safetensors"); "--output"; Path.Combine(dir, "again") ]
            Expect.equal code 0 (out + err)
            Expect.stringContains out "warning: this file is an incomplete export" "said"
            let card = present (System.Text.Json.Nodes.JsonNode.Parse(File.ReadAllText(Path.Combine(dir, "again.json"))))
            Expect.equal ((present card.["complete"]).GetValue<bool>()) false "still incomplete"
            Expect.stringContains (string card.["binding"]) "missing from the file: norm.weight" "what the first export lacked"
            let picture = Path.Combine(dir, "x.png")
            writeBlankPng picture
            let code, out, err = croc 120 [ "clusters"; "--weights"; Path.Combine(dir, "again.safetensors"); "--image"; picture ]
            Expect.equal code 0 err
            Expect.stringContains out "warning: this file is an incomplete export (made with --non-strict" "clusters warns as eval-knn does"
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
            Expect.isFalse (HeadCount.Resolve(Nullable(), readOnlyDict [ "model_card", """{"heads": 0}""" ])).Heads.HasValue "a card's 0 heads are no count (they divided by 0 once)"
            // an export's own guess (a .pth of another program, no --heads): it loaded as "the model card in the file", without
            // the note, and a re-export recorded it so, once: a 3-head model then ran as 1 head without a word
            let guessed = HeadCount.Resolve(Nullable(), readOnlyDict [ "model_card", """{"heads": 1, "heads_source": "D/64 (not recorded in the weights)", "heads_guessed": true}""" ])
            Expect.isTrue guessed.Guessed "an export's guess stays a guess"
            let older (trainingConfig: string) = HeadCount.Resolve(Nullable(), readOnlyDict [ "model_card", """{"heads": 1, "heads_source": "D/64 (not recorded in the weights)" """ + trainingConfig + "}" ])
            Expect.isTrue (older "").Guessed "a card from before heads_guessed: by its source"
            Expect.isFalse (older """, "training_config": {"arch": "tiny"}""").Guessed "not an export of croc-host's own checkpoint (whose count is certain), which said the same then"
            Expect.isFalse (HeadCount.Resolve(Nullable(), readOnlyDict [ "model_card", """{"heads": 1, "heads_source": "D/64 (not recorded in the weights)", "heads_guessed": false}""" ])).Guessed "the flag decides"
            Expect.equal guessed.Heads (Nullable 1) "its count"
            Expect.equal guessed.Source "D/64 (not recorded in the weights)" "and a re-export records it as one"
            Expect.stringContains (nonNull (guessed.Doubt(1, 64))) "taken as D/64" "said at every load"
            Expect.isFalse (said.Contains "taken as D/64") "no doubt"
            Expect.equal (BackboneLoader.Load(Path.Combine(dir, "h4.safetensors")).Config.Heads) 4 "every command's loader"
            export [ "--weights"; Path.Combine(dir, "w.safetensors"); "--output"; Path.Combine(dir, "named.safetensors") ]
            Expect.isTrue (File.Exists(Path.Combine(dir, "named.pth")) && File.Exists(Path.Combine(dir, "named.json"))) "--output x.safetensors names the export x"
            Expect.isFalse (File.Exists(Path.Combine(dir, "named.safetensors.safetensors"))) "not x.safetensors.safetensors (written once)"
            export [ "--weights"; Path.Combine(dir, "w.safetensors"); "--output"; Path.Combine(dir, "upper.SAFETENSORS") ]
            Expect.isTrue (File.Exists(Path.Combine(dir, "upper.pth"))) "whatever the ending's case"
            let said = exportSaying [ "--weights"; Path.Combine(dir, "w.safetensors"); "--output"; Path.Combine(dir, "named"); "--format"; "pth"; "--overwrite" ]
            Expect.stringContains said "named.safetensors, of an earlier export, is left as it was" "a file the new card does not describe is named"
            // an official full checkpoint, twice, in two processes (a Hashtable's order differs between them)
            for name in [ "a"; "b" ] do export [ "--weights"; Fixtures.path "croc_full_checkpoint.pth"; "--output"; Path.Combine(dir, name) ]
            for ext in [ ".pth"; ".safetensors"; ".json" ] do
                Expect.sequenceEqual (File.ReadAllBytes(Path.Combine(dir, "b" + ext))) (File.ReadAllBytes(Path.Combine(dir, "a" + ext))) ("the same bytes: " + ext)
            // another program's checkpoint records no head count: the card records its guess as one (a re-export keeps the doubt)
            Expect.isTrue ((present (cardOf "a").["heads_guessed"]).GetValue<bool>()) "heads_guessed"
            Expect.isFalse ((present card.["heads_guessed"]).GetValue<bool>()) "croc-host's own checkpoint: no guess"
            let notes = [ for n in (present (cardOf "a").["notes"]).AsArray() -> string n ]
            Expect.isGreaterThan notes.Length 1 "several notes"
            Expect.sequenceEqual notes (List.sortWith (fun x y -> System.String.CompareOrdinal(x, y)) notes) "in key order"
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
            // A storage key that is not text (torch writes "0", "1", …): a huge integer there took minutes to format (136 s for a 1.6 KB file).
            let numericKey = editedPickle "numeric-key" (NamedTensors([ "w", torch.ones(1L) ])) (replace "X\001\000\000\0000"B "J\007\000\000\000"B)
            let e = thrown<WeightsException> (fun () -> PthReader.Read numericKey |> ignore) "refused"
            Expect.stringContains e.Message "a storage key in the pickle that is not text" "says why"
            // 30 levels of 10 references to the level below (10³⁰ paths in a few hundred bytes): refused before the copy allocates (2.9 GB once)
            let level = Text.Encoding.Latin1.GetBytes("q\u0000" + "0" + "](" + String.replicate 10 "h\u0000" + "e")
            let dag = Array.concat [ Text.Encoding.Latin1.GetBytes "\u0080\u0002]"; Array.concat (List.replicate 30 level); "."B ]
            let before = GC.GetAllocatedBytesForCurrentThread()
            let e = thrown<WeightsException> (fun () -> PthReader.Read(editedPickle "dag" (NamedTensors([ "w", torch.ones(1L) ])) (fun _ -> dag)) |> ignore) "refused"
            Expect.stringContains e.Message "more than 10000000 objects" "says why"
            Expect.isLessThan (GC.GetAllocatedBytesForCurrentThread() - before) (64L <<< 20) "nothing copied first"
            // Before unpickling, the opcodes: a deflated pickle of 12 M references to one list (60 M cost 33 GB of
            // allocations once, the tree's size refused after), integers wider than 256 bits (a decimal one of 32 M
            // digits took 92 s to parse), an opcode of no protocol and an argument running past the end.
            let pickleFile name (body: byte[]) = editedPickle name (NamedTensors([ "w", torch.ones(1L) ])) (fun _ -> Array.concat [ [| 0x80uy; 2uy |]; body; "."B ])
            let manyReferences = pickleFile "references" (Array.concat [ "]q\000]("B; Array.init 24_000_000 (fun i -> if i % 2 = 0 then byte 'h' else 0uy); "e"B ])
            let before = GC.GetAllocatedBytesForCurrentThread()
            let e = thrown<WeightsException> (fun () -> PthReader.Read manyReferences |> ignore) "refused"
            Expect.stringContains e.Message "makes more than 10000000 values, marks and memo entries" "says why"
            Expect.isLessThan (GC.GetAllocatedBytesForCurrentThread() - before) (80L <<< 20) "refused before unpickling: the pickle's bytes read (24 MB, twice), nothing built"
            let digits n = Text.Encoding.ASCII.GetBytes(String.replicate n "7")
            let binaryInteger (count: byte[]) n = Array.concat [ count; Array.create n 1uy ]
            for what, body, says in
                [ "a decimal LONG of 10⁶ digits", Array.concat [ "L"B; digits 1_000_000; "L\n"B ], "an integer of 1000001 characters, more than 80"
                  "a decimal INT of 81 digits", Array.concat [ "I"B; digits 81; "\n"B ], "an integer of 81 characters"
                  "a LONG1 of 33 bytes", binaryInteger [| 0x8auy; 33uy |] 33, "an integer of 33 bytes, more than 32"
                  "a LONG4 of 10⁶ bytes", binaryInteger (Array.append [| 0x8buy |] (BitConverter.GetBytes 1_000_000)) 1_000_000, "an integer of 1000000 bytes"
                  "10⁷ marks and a value", Array.append (Array.create 10_000_000 (byte '(')) "N"B, "makes more than 10000000 values, marks and memo entries"
                  "an opcode of no protocol", [| 0xffuy |], "an opcode no pickle protocol defines (0xff)"
                  "a string claiming 2 GB", Array.append [| byte 'X'; 0xffuy; 0xffuy; 0xffuy; 0x7fuy |] "abc"B, "it ends early"
                  "a BININT of 4 bytes with 3 left (STOP the third)", [| byte 'J'; 1uy; 2uy |], "it ends early" ] do
                let e = thrown<WeightsException> (fun () -> PthReader.Read(pickleFile "scan" body) |> ignore) what
                Expect.stringContains e.Message says what
            let e = thrown<WeightsException> (fun () -> PthReader.Read(editedPickle "no-stop" (NamedTensors([ "w", torch.ones(1L) ])) (fun _ -> [| 0x80uy; 2uy; byte 'N' |])) |> ignore) "no STOP"
            Expect.stringContains e.Message "it ends early" "a pickle without its STOP opcode"
            // the widest integers allowed read as the numbers they are
            Expect.equal (PthReader.Read(pickleFile "wide" (Array.concat [ "L"B; digits 79; "L\n"B ]))) (box (Numerics.BigInteger.Parse(String.replicate 79 "7"))) "79 digits and the suffix"
            Expect.equal (PthReader.Read(pickleFile "wide" (binaryInteger [| 0x8auy; 32uy |] 32))) (box (Numerics.BigInteger(Array.create 32 1uy))) "32 bytes"
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
            for name, shape, why in [ "pos_embed", [| 1L; 1L; 192L |], "pos_embed holds 0 patch positions"; "pos_embed", [| 1L; 13L; 192L |], "12 patch positions, not a square grid"; "blocks.0.mlp.fc1.weight", [| 96L; 192L |], "hidden width 96 is not a whole multiple of the width 192" ] do
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
            Expect.equal (BackboneLoader.Load(studentOnly).Network) "student" "loads the student, named so (\"single network\" once)"
            // and the teacher alone likewise ("no ViT weights recognised" once, though a .pth full checkpoint was read so)
            let teacherOnly = Path.Combine(dir, "teacher-only.safetensors")
            Safetensors.Write(teacherOnly, vit.WithPrefix("backbone.").WithPrefix("teacher."))
            let imported = CheckpointImport.Import teacherOnly
            Expect.contains imported.Notes "no student.* tensors: the teacher's weights stand for both" "noted"
            Expect.equal (BackboneLoader.Load(teacherOnly, NetworkChoice.Teacher).Config.Dim) (BackboneLoader.Load(studentOnly).Config.Dim) "loads"
            Expect.equal (BackboneLoader.Load(teacherOnly, NetworkChoice.Student).Network) "teacher" "asked for the student, the teacher is named (\"student\" once)"
            Directory.Delete(dir, true)
        }
    ]
