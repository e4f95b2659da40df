/// Images inside tar archives (WebDataset-style shards): indexing, reading in place, broken members.
module CrOC.Tests.TarTests

open System
open System.Formats.Tar
open System.IO
open Expecto
open TorchSharp
open CrOC.Data
open CrOC.Tests.TestUtil

/// Writes `members` (name, bytes) into a new tar archive of the given format at `path`.
let writeTar (format: TarEntryFormat) (path: string) (members: (string * byte[]) list) =
    use stream = File.Create path
    use writer = new TarWriter(stream, format, false)
    for name, bytes in members do
        let entry: TarEntry =
            match format with
            | TarEntryFormat.Pax -> PaxTarEntry(TarEntryType.RegularFile, name)
            | TarEntryFormat.Gnu -> GnuTarEntry(TarEntryType.RegularFile, name)
            | _ -> UstarTarEntry(TarEntryType.RegularFile, name)
        entry.DataStream <- new MemoryStream(bytes)
        writer.WriteEntry entry
    path

/// The files of a folder as archive members named `prefix` + file name, in name order.
let membersOf (prefix: string) (folder: string) =
    [ for f in Directory.GetFiles folder |> Array.sort -> prefix + Path.GetFileName f, File.ReadAllBytes f ]

/// The synthetic scenes of `DataTests.sceneFolder` packed into a tar, with the folder.
let sceneTar (n: int) (extra: (string * byte[]) list) =
    let folder = DataTests.sceneFolder n 96 80
    let tar = writeTar TarEntryFormat.Pax (Path.Combine(folder, "..", DirectoryInfo(folder).Name + ".tar") |> Path.GetFullPath) (membersOf "" folder @ extra)
    folder, tar

let private garbage = Array.init 3000 (fun i -> byte ((i * 7919) % 251))

/// A tar header block made by hand: `name`, type flag `kind` and the 12-byte size field `size` as
/// given (what TarWriter never writes for small members), ustar magic, checksum computed.
let private rawHeader (name: string) (kind: char) (size: byte[]) =
    let header = Array.zeroCreate<byte> 512
    Text.Encoding.ASCII.GetBytes(name).CopyTo(header, 0)
    Text.Encoding.ASCII.GetBytes("0000644\000").CopyTo(header, 100)
    size.CopyTo(header, 124)
    header.[156] <- byte kind
    Text.Encoding.ASCII.GetBytes("ustar\00000").CopyTo(header, 257)
    let sum = header |> Array.mapi (fun i b -> if i >= 148 && i < 156 then 32 else int b) |> Array.sum
    Text.Encoding.ASCII.GetBytes(sprintf "%06o\000 " sum).CopyTo(header, 148)
    header

/// A size field in octal, and in GNU's base-256 form (high bit set, big-endian), as tar writes for members of 8 GiB and more.
let private octalSize (n: int64) = Text.Encoding.ASCII.GetBytes(sprintf "%011o\000" n)
let private base256Size (n: int64) = Array.append [| 0x80uy; 0uy; 0uy; 0uy |] (BitConverter.GetBytes n |> Array.rev)

/// `bytes` padded with zeros to whole 512-byte blocks.
let private blocks (bytes: byte[]) = Array.append bytes (Array.zeroCreate ((512 - bytes.Length % 512) % 512))

let tests =
    testList "Tar" [
        test "ustar, pax and GNU archives (long names, folders, non-image members) index to their image members with exact bytes" {
            let dir = DataTests.tempDir "tar-formats"
            let longFolder = String.replicate 12 "very-long-folder-name/"
            let prefixed = String.replicate 6 "folder-name-long/" + "four.jpg" // 110 characters: ustar's prefix field holds its folders
            let members = [ "a/one.jpg", [| 1uy; 2uy; 3uy |]; longFolder + "two.png", Array.init 1500 byte; "notes.txt", [| 9uy |]; "c/three.JPEG", [||]; prefixed, [| 4uy |] ]
            for format in [ TarEntryFormat.Ustar; TarEntryFormat.Pax; TarEntryFormat.Gnu ] do
                let usable = if format = TarEntryFormat.Ustar then List.filter (fun (n: string, _) -> n.Length <= 255) members else members
                let path = writeTar format (Path.Combine(dir, sprintf "%A.tar" format)) usable
                let archive = TarArchive.Open path
                Expect.isNull archive.Problem (sprintf "%A: a clean archive" format)
                Expect.sequenceEqual [ for m in archive.Members -> m.Name ] [ for n, _ in usable -> n ] (sprintf "%A: every member, in order" format)
                for m, (_, bytes) in Seq.zip archive.Members usable do
                    Expect.sequenceEqual (archive.Read m) bytes (sprintf "%A: bytes of %s" format m.Name)
                let images = ImageSources.Find([ path ])
                Expect.sequenceEqual [ for e in images -> present e.Member ] [ for n, _ in usable |> List.filter (fun (n, _) -> ImageSources.IsImage n) |> List.sortWith (fun (a, _) (b, _) -> String.CompareOrdinal(a, b)) -> n ] "image members only, ordinal order"
                Expect.isTrue (images |> Seq.forall (fun e -> e.Name.StartsWith(path + "#"))) "named archive#member"
            Directory.Delete(dir, true)
        }

        test "a tar of the scenes gives the same batches as their folder, with 0, 1 and 3 workers" {
            use _ = torch.NewDisposeScope()
            let folder, tar = sceneTar 10 []
            let spec = MultiCropSpec.Croc(32, 8)
            let run files workers =
                let loader = ImageLoader(files, spec, LoaderOptions(3, workers, 2, 5L))
                [ for b in loader.Epoch(1L) -> DataTests.bytesOf b.Globals, DataTests.bytesOf b.GlobalPositions, b.Indices ]
            let fromFolder = run (ImageSources.Find([ folder ])) 1
            Expect.equal fromFolder.Length 3 "10 / 3 full batches"
            for files, workers in [ ImageSources.Find([ tar ]), 0; ImageSources.Find([ tar ]), 1; ImageSources.Find([ tar ]), 3 ] do
                Expect.isTrue (run files workers = fromFolder) (sprintf "tar, %d workers: bit for bit" workers)
            Directory.Delete(folder, true)
            File.Delete tar
        }

        test "broken members are skipped, counted and reported once; the epoch finishes" {
            use _ = torch.NewDisposeScope()
            let png = Path.Combine(DataTests.tempDir "tar-png", "whole.png")
            do
                use image = new SixLabors.ImageSharp.Image<SixLabors.ImageSharp.PixelFormats.Rgb24>(40, 30)
                SixLabors.ImageSharp.ImageExtensions.SaveAsPng(image, png)
            let pngBytes = File.ReadAllBytes png
            let broken = [ "corrupt.jpg", garbage; "empty.jpg", [||]; "text.jpg", Text.Encoding.UTF8.GetBytes "no image"
                           "huge.png", DataTests.hugePngHeader 100000u 100000u; "truncated.png", pngBytes.[.. pngBytes.Length / 2]
                           "forged\nfinished at step 999.jpg", garbage ]
            let folder, tar = sceneTar 6 broken
            let files = ImageSources.Find([ tar ])
            Expect.equal files.Count 12 "6 scenes + 6 broken members"
            let reported = Collections.Concurrent.ConcurrentQueue<string>()
            let loader = ImageLoader(files, MultiCropSpec.Croc(32, 8), LoaderOptions(3, 2), warn = Action<string>(reported.Enqueue))
            let batches = loader.Epoch(0L) |> Seq.map (fun b -> b.Indices) |> Seq.toList
            Expect.equal batches.Length 4 "12 / 3 batches, all full"
            Expect.equal reported.Count 6 "each skipped file reported once, where the caller says (train.log for a run)"
            Expect.isTrue (reported |> Seq.forall (fun l -> l.StartsWith("skipped " + tar + "#"))) "naming the member"
            // a name with a newline wrote a line of its choosing into train.log once
            Expect.isTrue (reported |> Seq.forall (fun l -> not (l.Contains '\n'))) "each on one line"
            Expect.exists reported (fun l -> l.Contains "#forged\\nfinished at step 999.jpg: ") "the newline escaped"
            let skipped = loader.Stats.Skipped.Keys |> Seq.map (fun k -> k.Substring(k.LastIndexOf '#' + 1)) |> Seq.sort |> Seq.toList
            Expect.equal skipped [ "corrupt.jpg"; "empty.jpg"; "forged\nfinished at step 999.jpg"; "huge.png"; "text.jpg"; "truncated.png" ] "exactly the broken members"
            Expect.stringContains loader.Stats.Skipped.[tar + "#huge.png"] "exceed" "refused before decoding"
            Directory.Delete(folder, true)
            File.Delete tar
        }

        test "the storage failing (an archive whose reads fail with an I/O error, not a missing or short file): each read is retried, then skipped as the storage's; a row of them is an I/O error (exit 1), not a bad dataset" {
            Expect.isTrue (ImageDecoder.IsStorageFailure(IOException "Input/output error")) "EIO"
            for e in [ FileNotFoundException() :> exn; DirectoryNotFoundException(); EndOfStreamException(); InvalidDataException() ] do
                Expect.isFalse (ImageDecoder.IsStorageFailure e) (e.GetType().Name + ": the file's")
            let folder, tar = sceneTar 3 []
            let files = ImageSources.Find([ tar ])
            // The indexed archive becomes a link to the reader's own memory file: it opens and seeks, and reading a
            // member's offset (an address never mapped, below mmap_min_addr) fails with EIO, as a failing disk's reads do.
            // (A Unix socket served once; its open's ENXIO says no regular file is there: the file's, not the storage's.)
            File.Delete tar
            File.CreateSymbolicLink(tar, "/proc/self/mem") |> ignore
            let decoder = ImageDecoder(StorageRetryWaits = [| TimeSpan.FromMilliseconds 40.0; TimeSpan.FromMilliseconds 40.0 |])
            let watch = Diagnostics.Stopwatch.StartNew()
            let e = Expect.throwsC (fun () -> decoder.Read files.[0] |> ignore) id
            Expect.isGreaterThanOrEqual watch.ElapsedMilliseconds 80L "after its two retries"
            Expect.isTrue (e :? DecodeException && (e :?> DecodeException).Storage) (sprintf "reported as the storage's failure: %s" e.Message)
            let missing = Expect.throwsC (fun () -> decoder.Read(ImageEntry.File(Path.Combine(folder, "absent.jpg"))) |> ignore) id
            Expect.isFalse (missing :?> DecodeException).Storage "a missing file is the file's"
            let loader = ImageLoader(files, MultiCropSpec.Croc(32, 8), LoaderOptions(1, 0), decoder, Action<string>(ignore))
            let row = Expect.throwsC (fun () -> loader.Epoch(0L) |> Seq.head |> ignore) id
            Expect.isTrue (row :? IOException) (sprintf "an I/O error, not a DatasetException: %s" row.Message)
            Expect.stringContains row.Message "3 files in a row could not be read" "counts them"
            Directory.Delete(folder, true)
            File.Delete tar
        }

        test "a damaged archive: the members before a bad header or a truncation are used, the damage is reported" {
            let folder, tar = sceneTar 4 []
            let bytes = File.ReadAllBytes tar
            let members = (TarArchive.Open tar).Members
            // Corrupt the header of the third member (the pax record precedes it: damage both blocks).
            let third = members.[2]
            let damaged = Array.copy bytes
            for i in int third.Offset - 512 .. int third.Offset - 1 do damaged.[i] <- damaged.[i] ^^^ 0x5Auy
            File.WriteAllBytes(tar, damaged)
            let warnings = ResizeArray<string>()
            let found = ImageSources.Find([ tar ], Action<string>(warnings.Add))
            Expect.equal found.Count 2 "the two members before the damage"
            Expect.stringContains (String.Join("\n", warnings)) "bad header checksum" "reported"
            // One byte of the third member's name changed: only the checksum tells.
            let renamed = Array.copy bytes
            renamed.[int third.Offset - 512] <- renamed.[int third.Offset - 512] ^^^ 1uy
            File.WriteAllBytes(tar, renamed)
            let archive = TarArchive.Open tar
            Expect.equal archive.Members.Count 2 "the two members before the changed header"
            Expect.stringContains (present archive.Problem) "bad header checksum" "reported"
            // Cut right after the last member's data (no padding, no end blocks): nothing is missing.
            let last = Seq.last members
            File.WriteAllBytes(tar, bytes.[.. int (last.Offset + last.Length) - 1])
            let archive = TarArchive.Open tar
            Expect.equal archive.Members.Count 4 "every member"
            Expect.isNull archive.Problem "no damage"
            Expect.sequenceEqual (archive.Read(Seq.last archive.Members)) (File.ReadAllBytes(Path.Combine(folder, present (Path.GetFileName last.Name)))) "the last member whole"
            // Truncated in the middle of the last member's data.
            File.WriteAllBytes(tar, bytes.[.. int (Seq.last members).Offset + 100])
            warnings.Clear()
            let found = ImageSources.Find([ tar ], Action<string>(warnings.Add))
            Expect.equal found.Count 3 "all members but the cut one"
            Expect.stringContains (String.Join("\n", warnings)) "truncated archive" "reported"
            // Not an archive at all.
            File.WriteAllBytes(tar, garbage)
            Expect.throwsT<DatasetException> (fun () -> ImageSources.Find([ tar ], ignore) |> ignore) "no images: a clear error"
            Directory.Delete(folder, true)
            File.Delete tar
        }

        test "an archive that is a FIFO is refused at once: every data command waited for its writer (and with one, an internal error: its stream cannot seek)" {
            let dir = DataTests.tempDir "fifo-tar"
            let fifo = Path.Combine(dir, "shard.tar")
            makeFifo fifo
            let list = Path.Combine(dir, "list.txt")
            File.WriteAllText(list, fifo + "\n")
            for root in [ fifo; fifo + "#train"; list ] do
                let finding = Threading.Tasks.Task.Run(fun () -> ImageSources.Find([ root ], ignore) |> ignore)
                let finished = try finding.Wait(TimeSpan.FromSeconds 20.0) with :? AggregateException -> true
                Expect.isTrue finished $"{root}: refused, not waited for"
                let e = present (present finding.Exception).InnerException
                Expect.isTrue (e :? DatasetException) $"{root}: the data's refusal ({e.GetType().Name})"
                Expect.stringContains e.Message $"cannot read the archive '{fifo}': not a regular file (a FIFO, a socket or a terminal?)" $"{root}: says why"
            // a link to nothing is named as missing, as before (not taken for a FIFO)
            let dangling = Path.Combine(dir, "gone.tar")
            File.CreateSymbolicLink(dangling, Path.Combine(dir, "nowhere.tar")) |> ignore
            let e = Expect.throwsC (fun () -> TarArchive.Open dangling |> ignore) id
            Expect.stringContains e.Message $"cannot read the archive '{dangling}': No such file or directory" "the system's reason"
            Directory.Delete(dir, true)
        }

        test "a pax record whose length leaves no room for its newline, or overflows, is a malformed header, reported; the members before it are used" {
            // The second member's pax data block (before its own header): "2 \n" claims a 2-byte record;
            // a length near int.MaxValue after a first record must not wrap around.
            for records in [ "2 \n"B; "9 a=bcde\n2147483647 x=y\n"B ] do
                let folder, tar = sceneTar 3 []
                let bytes = File.ReadAllBytes tar
                let pax = int (TarArchive.Open tar).Members.[1].Offset - 1024
                Array.fill bytes pax 512 0uy
                Array.blit records 0 bytes pax records.Length
                File.WriteAllBytes(tar, bytes)
                let archive = TarArchive.Open tar
                Expect.equal archive.Members.Count 1 "the member before the damage"
                Expect.stringContains (present archive.Problem) "malformed pax header" "reported, not thrown"
                Directory.Delete(folder, true)
                File.Delete tar
        }

        test "an image reached twice through a link (a file, an archive) counts once, said; hidden names are skipped by patterns and archives as by folders" {
            let dir = DataTests.tempDir "links-hidden"
            let file (path: string) = Directory.CreateDirectory(present (Path.GetDirectoryName path)) |> ignore; File.WriteAllBytes(path, Array.init 10 byte); path
            let a = file (Path.Combine(dir, "imgs", "a.jpg"))
            file (Path.Combine(dir, "imgs", "b.jpg")) |> ignore
            File.CreateSymbolicLink(Path.Combine(present (Path.GetDirectoryName(file (Path.Combine(dir, "other", "c.jpg")))), "copy.jpg"), a) |> ignore
            let archive = Path.Combine(dir, "shard.tar")
            writeTar TarEntryFormat.Pax archive [ "train/x.jpg", Array.init 10 byte; "train/.ipynb_checkpoints/y.jpg", Array.init 10 byte; "train/._x.jpg", Array.init 10 byte ] |> ignore
            File.CreateSymbolicLink(Path.Combine(dir, "link.tar"), archive) |> ignore
            let warnings = ResizeArray<string>()
            let found = ImageSources.Find([ Path.Combine(dir, "imgs"); Path.Combine(dir, "other"); archive; Path.Combine(dir, "link.tar") ], Action<string>(warnings.Add))
            Expect.equal [ for e in found -> e.Name.Replace(dir + "/", "") ] [ "imgs/a.jpg"; "imgs/b.jpg"; "other/c.jpg"; "shard.tar#train/x.jpg" ] "each file once (twice through copy.jpg and link.tar once), no hidden member"
            Expect.exists warnings (fun w -> w.Contains "2 image(s) reached again through a link") (sprintf "said: %A" warnings)
            file (Path.Combine(dir, "mac", "._x.jpg")) |> ignore
            file (Path.Combine(dir, "mac", ".ipynb_checkpoints", "y.jpg")) |> ignore
            file (Path.Combine(dir, "mac", "x.jpg")) |> ignore
            Expect.equal [ for e in ImageSources.Find([ Path.Combine(dir, "mac", "*") ], ignore) -> Path.GetFileName e.Path ] [ "x.jpg" ] "a pattern skips hidden names as a folder search does"
            // a link up to a folder that holds the root would bring in that folder's whole tree (every image under dir, once)
            Directory.CreateSymbolicLink(Path.Combine(dir, "mac", "up"), "..") |> ignore
            let warnings = ResizeArray<string>()
            Expect.equal [ for e in ImageSources.Find([ Path.Combine(dir, "mac") ], Action<string>(warnings.Add)) -> Path.GetFileName e.Path ] [ "x.jpg" ] "the link up left out"
            Expect.exists warnings (fun w -> w.Contains "which holds the dataset root") (sprintf "said: %A" warnings)
            // a pattern or a list of folders searched before counts once, said ("no images under 'sh/*'", exit 2, once)
            file (Path.Combine(dir, "sh", "part-000", "p.jpg")) |> ignore
            file (Path.Combine(dir, "sh", "part-001", "q.jpg")) |> ignore
            File.WriteAllLines(Path.Combine(dir, "parts.txt"), [ "sh/part-000" ])
            let warnings = ResizeArray<string>()
            let found = ImageSources.Find([ Path.Combine(dir, "sh"); Path.Combine(dir, "sh", "*"); Path.Combine(dir, "parts.txt") ], Action<string>(warnings.Add))
            Expect.equal found.Count 2 "p and q"
            Expect.equal (warnings |> Seq.filter (fun w -> w.Contains "already searched") |> Seq.length) 2 (sprintf "said for the pattern and the list: %A" warnings)
            // a folder and a pattern of its files: the files count once, said
            let warnings = ResizeArray<string>()
            Expect.equal (ImageSources.Find([ Path.Combine(dir, "sh", "part-000"); Path.Combine(dir, "sh", "part-000", "*.jpg") ], Action<string>(warnings.Add))).Count 1 "p once"
            Expect.exists warnings (fun w -> w.Contains "1 image(s) named by more than one root") (sprintf "said (nothing was said once): %A" warnings)
            // a wildcard in a folder component, as a shell expands it ("'sh/*' is not a folder" once)
            Expect.equal [ for e in ImageSources.Find([ Path.Combine(dir, "sh", "*", "*.jpg") ], ignore) -> Path.GetFileName e.Path ] [ "p.jpg"; "q.jpg" ] "sh/*/*.jpg"
            Expect.throwsC (fun () -> ImageSources.Find([ Path.Combine(dir, "sh", "nothing-*", "*.jpg") ], ignore) |> ignore)
                (fun e -> Expect.stringContains e.Message "no folder matches" "said")
            // names that are not valid UTF-8 (Latin-1 bytes) read as U+FFFD and open nothing: left out at start, said (one dropped as a duplicate name, the other 'file not found' once)
            let latin = Directory.CreateDirectory(Path.Combine(dir, "latin")).FullName
            File.Copy(Path.Combine(dir, "imgs", "b.jpg"), Path.Combine(latin, "ok.jpg"))
            // a folder so named: left out too (the whole dataset was refused as "cannot be read … Could not find a part of the path" once)
            let copy = Diagnostics.Process.Start("bash", [| "-c"; "cd \"$0\" && cp ok.jpg $'caf\\xe9.jpg' && cp ok.jpg $'caf\\xe8.jpg' && mkdir $'dossier\\xe9' && cp ok.jpg $'dossier\\xe9/in.jpg'"; latin |])
            copy.WaitForExit()
            Expect.equal copy.ExitCode 0 "two Latin-1 names and a Latin-1 folder made"
            let warnings = ResizeArray<string>()
            Expect.equal [ for e in ImageSources.Find([ latin ], Action<string>(warnings.Add)) -> Path.GetFileName e.Path ] [ "ok.jpg" ] "the readable one"
            Expect.exists warnings (fun w -> w.StartsWith "2 file name(s) are not valid UTF-8") (sprintf "said: %A" warnings)
            Expect.exists warnings (fun w -> w.StartsWith "the folder '" && w.Contains "dossier" && w.Contains "not valid UTF-8") (sprintf "the folder said: %A" warnings)
            File.Delete(Path.Combine(latin, "ok.jpg"))
            Expect.throwsC (fun () -> ImageSources.Find([ latin ], ignore) |> ignore) (fun e -> Expect.stringContains e.Message "must be valid UTF-8" "none left: refused at start")
            Diagnostics.Process.Start("rm", [| "-rf"; latin |]).WaitForExit() // .NET cannot delete such names either
            // a list's lines other than image files are roots of their own: archive#folder, pattern, nested list (once each)
            File.WriteAllLines(Path.Combine(dir, "mixed.txt"), [ "shard.tar#train"; "sh/*"; "parts.txt"; "mixed.txt"; "imgs/b.jpg" ])
            let names = [ for e in ImageSources.Find([ Path.Combine(dir, "mixed.txt") ], ignore) -> e.Name.Replace(dir + "/", "") ]
            Expect.equal names [ "imgs/b.jpg"; "sh/part-000/p.jpg"; "sh/part-001/q.jpg"; "shard.tar#train/x.jpg" ] "each line resolved (taken as image files, 'file not found' mid-run, once)"
            File.WriteAllLines(Path.Combine(dir, "missing.txt"), [ "no-such-folder" ])
            Expect.throwsT<DatasetException> (fun () -> ImageSources.Find([ Path.Combine(dir, "missing.txt") ], ignore) |> ignore) "a line naming nothing is refused at start"
            // a list written on Windows (byte-order mark, CRLF) reads as any other; a list linked to a device that never ends is refused (it read one endless line until out of memory)
            File.WriteAllText(Path.Combine(dir, "windows.txt"), "\uFEFFimgs/b.jpg\r\n# a comment\r\nsh/part-000\r\n", Text.UTF8Encoding(true))
            Expect.equal [ for e in ImageSources.Find([ Path.Combine(dir, "windows.txt") ], ignore) -> e.Name.Replace(dir + "/", "") ] [ "imgs/b.jpg"; "sh/part-000/p.jpg" ] "BOM and CRLF"
            File.WriteAllLines(Path.Combine(dir, "spaced.txt"), [ "  imgs/b.jpg  "; "   # an indented comment"; "\tsh/part-000" ])
            Expect.equal [ for e in ImageSources.Find([ Path.Combine(dir, "spaced.txt") ], ignore) -> e.Name.Replace(dir + "/", "") ] [ "imgs/b.jpg"; "sh/part-000/p.jpg" ] "lines trimmed; an indented # is a comment"
            File.WriteAllText(Path.Combine(dir, "powershell.txt"), "imgs/b.jpg\rsh/part-000\r", Text.UnicodeEncoding(false, true)) // `>` of Windows PowerShell 5: UTF-16 with its mark; lone \r line ends (classic Mac)
            Expect.equal [ for e in ImageSources.Find([ Path.Combine(dir, "powershell.txt") ], ignore) -> e.Name.Replace(dir + "/", "") ] [ "imgs/b.jpg"; "sh/part-000/p.jpg" ] "UTF-16 and lone \\r (read as one UTF-8 line once: it named nothing)"
            File.CreateSymbolicLink(Path.Combine(dir, "endless.txt"), "/dev/zero") |> ignore
            Expect.throwsC (fun () -> ImageSources.Find([ Path.Combine(dir, "endless.txt") ], ignore) |> ignore)
                (fun e -> Expect.stringContains e.Message "holds more than" "a list of more than 256 MiB is refused, named")
            // "a.tar#folder,other" is two roots, not one folder of that name inside the archive
            Expect.sequenceEqual (CrOC.Host.CommandLine.Arguments.PathItems(archive + "#train," + Path.Combine(dir, "imgs"))) [ archive + "#train"; Path.Combine(dir, "imgs") ] "two roots"
            Directory.Delete(dir, true)
        }

        test "roots taken literally: a folder named imgs?, an archive under run#1/, members named ./train/…; ~/ as home" {
            let dir = DataTests.tempDir "tar-literal"
            let entry (name: string) = name, Array.init 10 byte
            let odd = Directory.CreateDirectory(Path.Combine(dir, "imgs?")).FullName
            File.WriteAllBytes(Path.Combine(odd, "a.jpg"), Array.init 10 byte)
            Expect.equal [ for e in ImageSources.Find([ odd ], ignore) -> Path.GetFileName e.Path ] [ "a.jpg" ] "the folder itself, not a pattern matching itself"
            let hashed = Directory.CreateDirectory(Path.Combine(dir, "run#1")).FullName
            let dotted = writeTar TarEntryFormat.Pax (Path.Combine(hashed, "shard.tar")) [ entry "./train/cat/a.jpg"; entry "./val/cat/b.jpg"; entry "/train/dog/c.jpg"; entry "./trainval/d.jpg" ]
            let members roots = [ for e in ImageSources.Find(roots, ignore) -> present e.Member ]
            Expect.equal (members [ dotted ]) [ "train/cat/a.jpg"; "train/dog/c.jpg"; "trainval/d.jpg"; "val/cat/b.jpg" ] "an archive under a folder with '#'; names without ./ and /"
            Expect.equal (members [ dotted + "#train" ]) [ "train/cat/a.jpg"; "train/dog/c.jpg" ] "a folder inside it (not trainval/, whose name begins alike)"
            Expect.sequenceEqual (TarArchive.ReadFileOrMember(dotted + "#val/cat/b.jpg", 10)) (Array.init 10 byte) "a member read by name"
            Expect.throwsT<DatasetException> (fun () -> TarArchive.ReadFileOrMember(dotted + "#val/cat/b.jpg", 9) |> ignore) "a member beyond the limit"
            Expect.equal (ImageSources.HomeExpanded("~/coco/train", "/home/u")) "/home/u/coco/train" "~/ is the home folder (no shell expands it after a comma or in a config file)"
            Expect.equal (ImageSources.HomeExpanded("a~/b", "/home/u")) "a~/b" "only a leading ~/"
            Expect.equal (TarArchive.SplitName "~/in-{000..009}.tar#train/x").Value (struct ("~/in-{000..009}.tar", "train/x")) "the folder inside a shard range, by name"
            for root, location in [ "/data/shards/train-{000..009}.tar", "/data/shards"; "/data/coco/*2017", "/data/coco"; "/data/a.tar#train", "/data/a.tar"; "/data/list.txt", "/data/list.txt" ] do
                Expect.equal (ImageSources.Location root) location (root + ": where its images are (the folder before a range or a wildcard)")
            Directory.Delete(dir, true)
        }

        test "hand-made headers: a base-256 size (GNU tar's, from 8 GiB), a pax size over a ustar size of 0, a GNU long name taken by the folder it names" {
            let dir = DataTests.tempDir "tar-raw"
            let data = Array.init 700 (fun i -> byte (i % 251))
            let longFolder = String.replicate 8 "long-folder-name/" // 136 characters: a GNU long name ('L') before the folder's header
            let path = Path.Combine(dir, "raw.tar")
            File.WriteAllBytes(path, Array.concat [
                rawHeader "big.jpg" '0' (base256Size 700L); blocks data
                rawHeader "PaxHeaders/paxed.jpg" 'x' (octalSize 12L); blocks "12 size=700\n"B; rawHeader "paxed.jpg" '0' (octalSize 0L); blocks data
                rawHeader "././@LongLink" 'L' (octalSize (int64 longFolder.Length + 1L)); blocks (Text.Encoding.ASCII.GetBytes(longFolder + "\000")); rawHeader longFolder.[.. 98] '5' (octalSize 0L)
                rawHeader "after.jpg" '0' (octalSize 700L); blocks data
                Array.zeroCreate 1024 ])
            let archive = TarArchive.Open path
            Expect.isNull archive.Problem "a clean archive"
            Expect.sequenceEqual [ for m in archive.Members -> m.Name ] [ "big.jpg"; "paxed.jpg"; "after.jpg" ] "every file, the one after the folder under its own name"
            for m in archive.Members do Expect.sequenceEqual (archive.Read m) data (m.Name + ": its bytes")
            // a pax size that is no number is named as such ("pax size -1 … runs past the end of the file" once)
            for size in [ "7x0"; "-5" ] do
                let record = $"{9 + size.Length} size={size}\n"
                File.WriteAllBytes(path, Array.concat [ rawHeader "first.jpg" '0' (octalSize 700L); blocks data
                                                        rawHeader "PaxHeaders/bad.jpg" 'x' (octalSize (int64 record.Length)); blocks (Text.Encoding.ASCII.GetBytes record)
                                                        rawHeader "bad.jpg" '0' (octalSize 0L); blocks data; Array.zeroCreate 1024 ])
                let archive = TarArchive.Open path
                Expect.sequenceEqual [ for m in archive.Members -> m.Name ] [ "first.jpg" ] $"pax size {size}: the member before it"
                Expect.stringContains (present archive.Problem) "bad pax size of the member at byte" $"pax size {size}: named"
            Directory.Delete(dir, true)
        }

        test "links and repeated names read as extraction leaves them: hard and symbolic links give their file's bytes, a name given twice its last member, a link to nothing (or out of the archive) is left out and counted" {
            let dir = DataTests.tempDir "tar-links"
            let path = Path.Combine(dir, "links.tar")
            do
                use stream = File.Create path
                use writer = new TarWriter(stream, TarEntryFormat.Pax, false)
                let add (kind: TarEntryType) (name: string) (link: string) (bytes: byte[]) =
                    let entry = PaxTarEntry(kind, name)
                    if link <> "" then entry.LinkName <- link
                    if kind = TarEntryType.RegularFile then entry.DataStream <- new MemoryStream(bytes)
                    writer.WriteEntry entry
                add TarEntryType.RegularFile "a/one.jpg" "" [| 1uy |]
                add TarEntryType.HardLink "a/hard.jpg" "a/one.jpg" [||] // the file as it is here: [1]
                add TarEntryType.HardLink "a/dot.jpg" "./a/one.jpg" [||] // named as `tar -C dir .` names it: the same file
                add TarEntryType.RegularFile "a/one.jpg" "" [| 2uy; 2uy |] // replaces it
                add TarEntryType.SymbolicLink "b/sym.jpg" "../a/one.jpg" [||] // the final file: [2; 2]
                add TarEntryType.SymbolicLink "b/chain.jpg" "sym.jpg" [||]
                add TarEntryType.SymbolicLink "b/dangling.jpg" "absent.jpg" [||]
                add TarEntryType.SymbolicLink "b/out.jpg" "../../a/one.jpg" [||] // out of the archive, though a/one.jpg is in it
                add TarEntryType.SymbolicLink "b/loop.jpg" "loop.jpg" [||]
                add TarEntryType.SymbolicLink "b/absolute.jpg" "/a/one.jpg" [||] // "/" is the archive's root
                add TarEntryType.RegularFile "c/gone.jpg" "" [| 3uy |]
                add TarEntryType.SymbolicLink "c/gone.jpg" "absent.jpg" [||] // replaces the file with a link to nothing
                add TarEntryType.HardLink "c/hard.jpg" "c/gone.jpg" [||] // a hard link to that link: no file either
            let archive = TarArchive.Open path
            let read = Map [ for m in archive.Members -> m.Name, archive.Read m ]
            Expect.sequenceEqual [ for m in archive.Members -> m.Name ] [ "a/hard.jpg"; "a/dot.jpg"; "a/one.jpg"; "b/sym.jpg"; "b/chain.jpg"; "b/absolute.jpg" ] "one member per name that resolves to a file, in archive order (a repeated name where its last member is)"
            for name in [ "a/hard.jpg"; "a/dot.jpg" ] do Expect.equal read.[name] [| 1uy |] (name + ": a hard link, the file it named when it was written")
            for name in [ "a/one.jpg"; "b/sym.jpg"; "b/chain.jpg"; "b/absolute.jpg" ] do Expect.equal read.[name] [| 2uy; 2uy |] (name + ": the last member of that name")
            let notes = String.Join("\n", archive.Notes)
            Expect.stringContains notes "5 link member(s) name no file" "dangling, outside, loop, the file replaced by a dangling link and the hard link to it: counted"
            Expect.stringContains notes "2 member(s) repeat an earlier name" "the repeated names counted"
            // GNU tar, extracting, leaves the same bytes under each name it makes a file of.
            let out = Directory.CreateDirectory(Path.Combine(dir, "extracted")).FullName
            let tar = Diagnostics.Process.Start("tar", [| "-xf"; path; "-C"; out |])
            tar.WaitForExit()
            for KeyValue(name, bytes) in read do
                if name <> "b/absolute.jpg" then Expect.equal (File.ReadAllBytes(Path.Combine(out, name))) bytes (name + " as tar extracts it") // tar keeps an absolute target absolute
            let warnings = ResizeArray<string>()
            Expect.equal (ImageSources.Find([ path ], Action<string>(warnings.Add))).Count 6 "the dataset sees the same members"
            Expect.equal warnings.Count 2 "the notes said once each, naming the archive"
            Expect.isTrue (warnings |> Seq.forall (fun w -> w.StartsWith path)) "naming the archive"
            Directory.Delete(dir, true)
        }

        test "roots: a folder inside an archive (a.tar#sub), shard ranges {0..1}, patterns *.tar, lists of archives" {
            let dir = DataTests.tempDir "tar-roots"
            let entry (name: string) = name, Array.init 10 byte
            let shard i = writeTar TarEntryFormat.Pax (Path.Combine(dir, sprintf "shard-%02d.tar" i)) [ entry (sprintf "train/s%d.jpg" i); entry (sprintf "val/v%d.jpg" i) ]
            let shards = [ for i in 0 .. 2 -> shard i ]
            let names roots = [ for e in ImageSources.Find(roots, ignore) -> FileInfo(e.Path).Name + "#" + present e.Member ]
            Expect.equal (names [ shards.[0] + "#train" ]) [ "shard-00.tar#train/s0.jpg" ] "a folder inside the archive"
            Expect.equal (names [ Path.Combine(dir, "shard-{00..01}.tar") ]) [ "shard-00.tar#train/s0.jpg"; "shard-00.tar#val/v0.jpg"; "shard-01.tar#train/s1.jpg"; "shard-01.tar#val/v1.jpg" ] "a zero-padded range"
            Expect.equal (names [ Path.Combine(dir, "*.tar") ]).Length 6 "a pattern"
            let list = Path.Combine(dir, "shards.txt")
            File.WriteAllLines(list, [ "shard-02.tar"; "# a comment" ])
            Expect.equal (names [ list ]) [ "shard-02.tar#train/s2.jpg"; "shard-02.tar#val/v2.jpg" ] "a list naming an archive"
            Expect.throwsT<DatasetException> (fun () -> ImageSources.Find([ shards.[0] + "#absent" ], ignore) |> ignore) "an empty folder inside an archive is an error"
            // two ranges of 10^6 in a row name 10^12 paths: refused at once, not searched (a minute without a line, and no end, once)
            let watch = Diagnostics.Stopwatch.StartNew()
            let refusal = Expect.throwsC (fun () -> ImageSources.Find([ Path.Combine(dir, "x{0..999999}{0..999999}*.png") ], ignore) |> ignore) id
            Expect.stringContains refusal.Message "name 1,000,000,000,000 paths together, more than 10,000,000" "says why"
            Expect.isLessThan watch.Elapsed.TotalSeconds 5.0 "at once"
            let reversed = Expect.throwsC (fun () -> ImageSources.Find([ Path.Combine(dir, "x{0..9}{9..0}.png") ], ignore) |> ignore) id
            Expect.stringContains reversed.Message (sprintf "bad range '{9..0}' in '%s'" (Path.Combine(dir, "x{0..9}{9..0}.png"))) "a later range is checked up front, in the root as given"
            // a tree 1,500 folders deep is searched in linear time (each folder's real path was resolved anew: 33 s)
            let deep = Path.Combine(dir, "deep")
            let bottom = Seq.fold (fun path _ -> Path.Combine(path, "d")) deep [ 1 .. 1500 ]
            Directory.CreateDirectory bottom |> ignore
            File.WriteAllBytes(Path.Combine(bottom, "x.png"), DataTests.hugePngHeader 1u 1u)
            let watch = Diagnostics.Stopwatch.StartNew()
            Expect.equal (ImageSources.Find([ deep ], ignore).Count) 1 "the image at the bottom"
            Expect.isLessThan watch.Elapsed.TotalSeconds 10.0 "not cubic in the depth"
            // a list that repeats a line searches it once (each repetition was searched, then its images counted once)
            let repeated = Path.Combine(dir, "repeated.txt")
            File.WriteAllLines(repeated, Array.create 20000 "*.tar")
            let warnings = Collections.Generic.List<string>()
            Expect.equal (ImageSources.Find([ repeated ], (fun w -> warnings.Add w)).Count) 6 "the pattern's images"
            Expect.isEmpty (warnings |> Seq.filter (fun w -> w.Contains "more than one root")) "not 119,994 images named twice"
            Expect.contains warnings (sprintf "'%s' repeats 19999 lines: each counts once" repeated) "the repetition is said once"
            // a missing root of a megabyte is quoted shortened, not whole
            let huge = Path.Combine(dir, String('a', 1 <<< 20))
            let missing = Expect.throwsC (fun () -> ImageSources.Find([ huge ], ignore) |> ignore) id
            Expect.stringContains missing.Message (sprintf "(%s characters)" (huge.Length.ToString "N0")) "its length is said"
            Expect.isLessThan missing.Message.Length 600 "the line stays short"
            Directory.Delete(dir, true)
        }
    ]
