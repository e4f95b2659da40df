/// Hostile files: thousands of random mutations (bit flips, truncations, overwritten spans, header
/// edits) of small valid .pth, .safetensors, checkpoint, image, mask and tar files. Each must end in a
/// clear refusal (the reader's own exception) or a load — never another exception, a hang or a
/// runaway allocation — and the whole test must fit a fixed time budget.
module CrOC.Tests.FuzzTests

open System
open System.Diagnostics
open System.IO
open System.IO.Compression
open System.Text
open System.Threading.Tasks
open Expecto
open TorchSharp
open CrOC.Data
open CrOC.Host.Training
open CrOC.Host.Weights

/// Mutations per format; the budget holds all formats.
[<Literal>]
let CasesPerFormat = 1000

let private budget = TimeSpan.FromSeconds 90.0
let private perCase = TimeSpan.FromSeconds 10.0
/// Managed bytes one case may allocate, loaded or refused (the readers check sizes before allocating).
let private allocationLimit = 512L <<< 20

/// The exceptions that are a reader's clear refusal.
let private refusal (e: exn) =
    match e with
    | :? WeightsException | :? DecodeException | :? DatasetException | :? ConfigException -> true
    | _ -> false

type private Mutation = { Kind: string; Bytes: byte[] }

let private flipBits (rng: Random) (bytes: byte[]) =
    let copy = Array.copy bytes
    for _ in 1 .. rng.Next(1, 9) do
        let i = rng.Next copy.Length
        copy.[i] <- copy.[i] ^^^ (1uy <<< rng.Next 8)
    { Kind = "bit flips"; Bytes = copy }

let private truncate (rng: Random) (bytes: byte[]) = { Kind = "truncation"; Bytes = bytes.[.. rng.Next(bytes.Length) - 1] }

let private overwrite (rng: Random) (bytes: byte[]) =
    let copy = Array.copy bytes
    let start = rng.Next copy.Length
    let length = min (rng.Next(1, 64)) (copy.Length - start)
    let fill = match rng.Next 3 with 0 -> (fun _ -> 0uy) | 1 -> (fun _ -> 0xFFuy) | _ -> (fun _ -> byte (rng.Next 256))
    for i in start .. start + length - 1 do copy.[i] <- fill i
    { Kind = "overwritten span"; Bytes = copy }

/// Replaces one number in the ASCII text between `first` and `last` by a hostile one.
let private editNumber (rng: Random) (first: int) (last: int) (bytes: byte[]) =
    let text = Encoding.Latin1.GetString(bytes, first, last - first)
    let digits = [| for m in RegularExpressions.Regex.Matches(text, @"\d+") -> m |]
    if digits.Length = 0 then flipBits rng bytes
    else
        let m = digits.[rng.Next digits.Length]
        let hostile = [| "0"; "1"; "-1"; "4611686018427387904"; "9223372036854775807"; "99999999999999999999"; string (rng.Next()) |]
        let replacement = hostile.[rng.Next hostile.Length]
        let edited = text.Substring(0, m.Index) + replacement + text.Substring(m.Index + m.Length)
        { Kind = "header number edit"; Bytes = Array.concat [ bytes.[.. first - 1]; Encoding.Latin1.GetBytes edited; bytes.[last ..] ] }

/// A .pth whose data.pkl is mutated and re-zipped with a correct CRC (so the pickle itself is fuzzed).
let private repickle (rng: Random) (pth: byte[]) =
    use source = new ZipArchive(new MemoryStream(pth), ZipArchiveMode.Read)
    let output = new MemoryStream()
    do
        use target = new ZipArchive(output, ZipArchiveMode.Create, true)
        for entry in source.Entries do
            use content = entry.Open()
            use buffer = new MemoryStream()
            content.CopyTo buffer
            let bytes = buffer.ToArray()
            let bytes = if entry.FullName.EndsWith "data.pkl" && bytes.Length > 0 then (match rng.Next 3 with 0 -> flipBits rng bytes | 1 -> truncate rng bytes | _ -> overwrite rng bytes).Bytes else bytes
            use written = target.CreateEntry(entry.FullName, CompressionLevel.NoCompression).Open()
            written.Write(bytes, 0, bytes.Length)
    { Kind = "mutated pickle, re-zipped"; Bytes = output.ToArray() }

let private generic (rng: Random) (bytes: byte[]) =
    match rng.Next 3 with
    | 0 -> flipBits rng bytes
    | 1 -> truncate rng bytes
    | _ -> overwrite rng bytes

/// A 32-bit little-endian value at `at` set to a boundary: 0, 8, the file's length, 2³¹−1 or 2³²−1 (offsets and sizes).
let private boundaryWordAt (rng: Random) (at: int) (bytes: byte[]) =
    let copy = Array.copy bytes
    BitConverter.TryWriteBytes(Span(copy, at, 4), [| 0u; 8u; uint32 copy.Length; 0x7FFFFFFFu; 0xFFFFFFFFu |].[rng.Next 5]) |> ignore
    { Kind = sprintf "the 32-bit field at byte %d set to a boundary" at; Bytes = copy }

/// A BMP header field (file size, pixel offset, header size, sides, planes and bits, compression, image size) at a boundary.
let private bmpHeaderWord (rng: Random) (bytes: byte[]) = boundaryWordAt rng ([| 2; 10; 14; 18; 22; 26; 30; 34 |].[rng.Next 8]) bytes

/// A value field of one of a little-endian TIFF's first-directory entries at a boundary (a strip offset of 0 is the TIFF itself).
let private tiffEntryWord (rng: Random) (bytes: byte[]) =
    let directory = int (BitConverter.ToUInt32(bytes, 4))
    boundaryWordAt rng (directory + 2 + 12 * rng.Next(int (BitConverter.ToUInt16(bytes, directory))) + 8) bytes

/// Runs `attempt` on `count` mutations of `seed`; returns (loaded, refused) or fails on anything else.
let private fuzz (name: string) (seed: byte[]) (mutate: Random -> byte[] -> Mutation) (attempt: string -> unit) (deadline: Stopwatch) =
    // Seeded from the name's characters (string.GetHashCode differs per process): the same mutations every
    // run, but for the checkpoint's (its config names temporary folders, whose names and lengths vary).
    let rng = Random(name |> Seq.fold (fun h c -> (h * 31 + int c) &&& 0xFFFFFF) 17)
    let file = TestUtil.scratchPath ("fuzz-" + name) (TestUtil.present (Path.GetExtension name))
    let mutable loaded, refused = 0, 0
    try
        for case in 1 .. CasesPerFormat do
            let mutation = mutate rng seed
            File.WriteAllBytes(file, mutation.Bytes)
            // No dispose scope: the few tensors of successful loads are left to the GC, and the
            // checkpoint's state (reused by every case) stays valid.
            let work = Task.Run(fun () ->
                let before = GC.GetAllocatedBytesForCurrentThread()
                let outcome = try Ok (attempt file) with e -> Error e
                outcome, GC.GetAllocatedBytesForCurrentThread() - before)
            if not (work.Wait perCase) then failtestf "%s case %d (%s): no answer within %O (a hang)" name case mutation.Kind perCase
            let outcome, allocated = work.Result
            // A refusal too: a reader that allocates what a damaged length claims before finding it absent is slow (seconds per GB) and may run out of memory.
            Expect.isLessThan allocated allocationLimit (sprintf "%s case %d (%s) allocated %d bytes" name case mutation.Kind allocated)
            match outcome with
            | Ok () -> loaded <- loaded + 1
            | Error e when refusal e -> refused <- refused + 1
            | Error e -> failtestf "%s case %d (%s): %s instead of a clear refusal:\n%O" name case mutation.Kind (e.GetType().Name) e
            if deadline.Elapsed > budget then failtestf "over the %O budget after %d cases of %s" budget case name
    finally
        if File.Exists file then File.Delete file
    loaded, refused

let private sampleTensors () =
    use generator = new torch.Generator(5UL) // the same seed files every run
    NamedTensors(
        [ "backbone.cls_token", torch.randn(1L, 1L, 8L, generator = generator)
          "head.weight", torch.randn(3L, 4L, generator = generator)
          "steps", torch.tensor([| 1L; 2L; 3L |])
          "half", torch.randn(2L, 2L, generator = generator).to_type(torch.bfloat16) ])

let private tinyCheckpoint () =
    let output = DataTests.tempDir "fuzz-checkpoint"
    let config = TrainingTests.tinyConfig output [ "depth", "1"; "out-dim", "16"; "out-dim-c", "8"; "head-hidden", "16"; "head-bottleneck", "8" ]
    let state = TrainingState.Fresh(config, CrocSetup.Croc(config))
    config, Checkpoints.Save(output, config, state, 1)

let tests =
    testSequenced <| testList "Fuzz" [
        test "thousands of mutated .pth, .safetensors, checkpoint, image (JPEG, PNG, BMP, GIF, JPEG-compressed TIFF), mask and tar files: a clear refusal or a load, never a crash or a hang" {
            use _ = torch.NewDisposeScope()
            let deadline = Stopwatch.StartNew()
            let dir = DataTests.tempDir "fuzz-seeds"
            let pth = Path.Combine(dir, "seed.pth")
            PthWriter.Write(pth, sampleTensors ())
            let safetensors = Path.Combine(dir, "seed.safetensors")
            Safetensors.Write(safetensors, sampleTensors ())
            let config, checkpoint = tinyCheckpoint ()
            // A refused file leaves the state as it was; one state serves every case.
            let state = TrainingState.Fresh(config, CrocSetup.Croc(config))
            let struct (scene, _) = SyntheticScenes.Generate(3L, 1, SyntheticScenes.SceneOptions(40, 32))
            let jpeg = Path.Combine(dir, "seed.jpg")
            SyntheticScenes.SaveJpeg(scene, jpeg)
            let png = Path.Combine(dir, "seed.png")
            do
                use image = new SixLabors.ImageSharp.Image<SixLabors.ImageSharp.PixelFormats.Rgb24>(24, 16)
                SixLabors.ImageSharp.ImageExtensions.SaveAsPng(image, png)
            // eval-seg's saved prediction: a VOC-coloured mask with croc-host's mark (read as a mask and as an output to replace)
            let mask = Path.Combine(dir, "seed-mask.png")
            do
                use file = File.Create mask
                VocSegmentation.SaveMask(Array.init (12 * 8) (fun i -> byte (i % 3)), 12, 8, file, marked = true)
            let tar = TarTests.writeTar Formats.Tar.TarEntryFormat.Pax (Path.Combine(dir, "seed.tar")) [ "a/one.jpg", File.ReadAllBytes jpeg; "b/two.png", File.ReadAllBytes png ]
            // 13 × 9 noise as BMP, GIF and a JPEG-compressed TIFF (ImageSharp decodes its strips outside the decoder's limits)
            let saved (encoder: SixLabors.ImageSharp.Formats.IImageEncoder) = DataTests.encodedNoise 13 9 encoder
            let headerEnd (bytes: byte[]) = 8 + int (BitConverter.ToUInt64(bytes, 0))
            let safeBytes = File.ReadAllBytes safetensors
            let decoder = ImageDecoder()
            let formats : (string * byte[] * (Random -> byte[] -> Mutation) * (string -> unit)) list =
                [ "weights.pth", File.ReadAllBytes pth,
                  (fun rng bytes -> if rng.Next 2 = 0 then repickle rng bytes else generic rng bytes),
                  (fun file -> CheckpointImport.Import file |> ignore)
                  "weights.safetensors", safeBytes,
                  (fun rng bytes -> if rng.Next 2 = 0 then editNumber rng 8 (min bytes.Length (headerEnd safeBytes)) bytes else generic rng bytes),
                  (fun file -> CheckpointImport.Import file |> ignore)
                  "checkpoint.safetensors", File.ReadAllBytes checkpoint,
                  (fun rng bytes -> if rng.Next 2 = 0 then editNumber rng 8 (min bytes.Length (headerEnd bytes)) bytes else generic rng bytes),
                  (fun file -> Checkpoints.Restore(file, config, state))
                  "image.jpg", File.ReadAllBytes jpeg, generic, (fun file -> decoder.Decode file |> ignore)
                  "image.png", File.ReadAllBytes png, generic, (fun file -> decoder.Decode file |> ignore)
                  "image.bmp", saved (SixLabors.ImageSharp.Formats.Bmp.BmpEncoder(BitsPerPixel = SixLabors.ImageSharp.Formats.Bmp.BmpBitsPerPixel.Pixel8)), (fun rng bytes -> if rng.Next 2 = 0 then bmpHeaderWord rng bytes else generic rng bytes), (fun file -> decoder.Decode file |> ignore)
                  "image.gif", saved (SixLabors.ImageSharp.Formats.Gif.GifEncoder()), generic, (fun file -> decoder.Decode file |> ignore)
                  // a strip pointing at the TIFF itself overflowed the stack once, ending the process
                  "image.tif", saved (SixLabors.ImageSharp.Formats.Tiff.TiffEncoder(Compression = SixLabors.ImageSharp.Formats.Tiff.Constants.TiffCompression.Jpeg)),
                  (fun rng bytes -> if rng.Next 2 = 0 then tiffEntryWord rng bytes else generic rng bytes), (fun file -> decoder.Decode file |> ignore)
                  "mask.png", File.ReadAllBytes mask, generic, (fun file -> VocSegmentation.LoadMask(file) |> ignore)
                  // whether an output path holds croc-host's picture: an answer for every file (an internal error once)
                  "picture.png", File.ReadAllBytes mask, generic, (fun file -> PictureMark.IsOn file |> ignore)
                  "shard.tar", File.ReadAllBytes tar,
                  (fun rng bytes -> if rng.Next 2 = 0 then editNumber rng 0 (min bytes.Length 1536) bytes else generic rng bytes),
                  (fun file -> for e in ImageSources.Find([ file ], ignore) do (try decoder.Decode e |> ignore with :? DecodeException -> ())) ]
            let counts =
                [ for name, seed, mutate, attempt in formats ->
                    let started = deadline.Elapsed
                    let loaded, refused = fuzz name seed mutate attempt deadline
                    Expect.equal (loaded + refused) CasesPerFormat name
                    sprintf "%s: %d loaded, %d refused (%.1f s)" name loaded refused (deadline.Elapsed - started).TotalSeconds ]
            printfn "fuzz (%d cases per format, %.1f s): %s" CasesPerFormat deadline.Elapsed.TotalSeconds (String.Join("; ", counts))
            Directory.Delete(dir, true)
        }
    ]
