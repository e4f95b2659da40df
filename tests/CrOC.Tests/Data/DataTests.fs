module CrOC.Tests.DataTests

open System
open System.IO
open Expecto
open TorchSharp
open SixLabors.ImageSharp
open SixLabors.ImageSharp.PixelFormats
open SixLabors.ImageSharp.Formats.Png
open CrOC.Data
open CrOC.Tests.TestUtil

let tempDir (name: string) =
    let dir = scratchPath ("data-" + name) ""
    Directory.CreateDirectory(dir).FullName

/// Writes n synthetic scenes of the given size as JPEGs into a folder and returns it.
let sceneFolder (n: int) (width: int) (height: int) =
    let dir = tempDir "scenes"
    for i in 0 .. n - 1 do
        let struct (image, _) = SyntheticScenes.Generate(5L, i, SyntheticScenes.SceneOptions(width, height))
        SyntheticScenes.SaveJpeg(image, Path.Combine(dir, sprintf "img_%03d.jpg" i))
    dir

let bytesOf (t: torch.Tensor) = t.contiguous().bytes.ToArray()

/// The CRC-32 of PNG chunks (ISO 3309, reflected, polynomial 0xEDB88320).
let private crc32 (bytes: byte[]) =
    let mutable crc = 0xFFFFFFFFu
    for b in bytes do
        crc <- crc ^^^ uint32 b
        for _ in 1 .. 8 do crc <- if crc &&& 1u = 1u then (crc >>> 1) ^^^ 0xEDB88320u else crc >>> 1
    crc ^^^ 0xFFFFFFFFu

let private bigEndian (v: uint32) = [| byte (v >>> 24); byte (v >>> 16); byte (v >>> 8); byte v |]

/// A PNG chunk: length, type, data, CRC.
let pngChunk (kind: string) (data: byte[]) =
    let typed = Array.append (Text.Encoding.ASCII.GetBytes kind) data
    Array.concat [ bigEndian (uint32 data.Length); typed; bigEndian (crc32 typed) ]

let private pngSignature = [| 137uy; 80uy; 78uy; 71uy; 13uy; 10uy; 26uy; 10uy |]

let private pngHeader (width: uint32) (height: uint32) (colourType: byte) =
    pngChunk "IHDR" (Array.concat [ bigEndian width; bigEndian height; [| 8uy; colourType; 0uy; 0uy; 0uy |] ])

let zlib (bytes: byte[]) =
    use memory = new MemoryStream()
    (use z = new Compression.ZLibStream(memory, Compression.CompressionLevel.Optimal) in z.Write(bytes, 0, bytes.Length))
    memory.ToArray()

/// A palette PNG written chunk by chunk (8-bit indices, row filter 0), so that its table is
/// exactly `table` (and `alpha`, when not empty, its tRNS chunk): encoders reorder tables.
let indexedPng (width: int) (height: int) (indices: byte[]) (table: (byte * byte * byte) list) (alpha: byte list) =
    let rows = [| for y in 0 .. height - 1 do yield 0uy; yield! indices.[y * width .. y * width + width - 1] |]
    Array.concat
        [ yield pngSignature
          yield pngHeader (uint32 width) (uint32 height) 3uy
          yield pngChunk "PLTE" [| for r, g, b in table do yield r; yield g; yield b |]
          yield (if List.isEmpty alpha then [||] else pngChunk "tRNS" (Array.ofList alpha))
          yield! zlib rows |> Array.chunkBySize 64 |> Array.map (pngChunk "IDAT") // several, as libpng writes large images
          yield pngChunk "IEND" [||] ]

/// Adam7's passes (first column, first row, column step, row step), as the PNG specification lists them.
let private adam7 = [ 0, 0, 8, 8; 4, 0, 8, 8; 0, 4, 4, 8; 2, 0, 4, 4; 0, 2, 2, 4; 1, 0, 2, 2; 0, 1, 1, 2 ]

/// A palette image's scanlines before compression: `bits` per index (1, 2, 4, 8), packed from each byte's
/// high bits, Adam7's passes when `interlaced`, each pass's row r filtered with type r % 5 (None, Sub, Up,
/// Average, Paeth in turn) as the PNG specification defines them.
let paletteScanlines (width: int) (height: int) (bits: int) (interlaced: bool) (indices: byte[]) =
    let paeth a b c =
        let p = a + b - c
        if abs (p - a) <= abs (p - b) && abs (p - a) <= abs (p - c) then a elif abs (p - b) <= abs (p - c) then b else c
    let pass (x0, y0, dx, dy) =
        let columns, rows = (if width > x0 then (width - x0 + dx - 1) / dx else 0), (if height > y0 then (height - y0 + dy - 1) / dy else 0)
        let rowBytes = (columns * bits + 7) / 8
        let packed =
            Array.init (if columns = 0 then 0 else rows) (fun r ->
                let row = Array.zeroCreate rowBytes
                for c in 0 .. columns - 1 do
                    row.[c * bits / 8] <- row.[c * bits / 8] ||| byte (int indices.[(y0 + r * dy) * width + x0 + c * dx] <<< (8 - bits - c * bits % 8))
                row)
        [| for r in 0 .. packed.Length - 1 do
             let at (row: int) (i: int) = if row < 0 || i < 0 then 0 else int packed.[row].[i]
             yield byte (r % 5)
             for i in 0 .. rowBytes - 1 do
                 let left, above, upLeft = at r (i - 1), at (r - 1) i, at (r - 1) (i - 1)
                 let predictor = match r % 5 with 0 -> 0 | 1 -> left | 2 -> above | 3 -> (left + above) / 2 | _ -> paeth left above upLeft
                 yield byte ((int packed.[r].[i] - predictor) &&& 0xFF) |]
    Array.concat [ for p in (if interlaced then adam7 else [ 0, 0, 1, 1 ]) -> pass p ]

/// A palette PNG of `bits` per index whose IDAT chunk holds `idat` (the zlib stream of `paletteScanlines`, or a damaged one).
let palettePng (width: int) (height: int) (bits: int) (interlaced: bool) (table: (byte * byte * byte) list) (idat: byte[]) =
    Array.concat
        [ pngSignature
          pngChunk "IHDR" (Array.concat [ bigEndian (uint32 width); bigEndian (uint32 height); [| byte bits; 3uy; 0uy; 0uy; (if interlaced then 1uy else 0uy) |] ])
          pngChunk "PLTE" [| for r, g, b in table do yield r; yield g; yield b |]
          pngChunk "IDAT" idat
          pngChunk "IEND" [||] ]

/// A black 8×8 RGB PNG with `chunks` between its header and its image data.
let rgbPngWith (chunks: byte[] list) =
    Array.concat
        [ yield pngSignature
          yield pngHeader 8u 8u 2uy
          yield! chunks
          yield pngChunk "IDAT" (zlib (Array.zeroCreate (8 * (1 + 8 * 3))))
          yield pngChunk "IEND" [||] ]

/// A `width`×`height` image of coloured noise (the same pixels every run) as `encoder` writes it.
let encodedNoise (width: int) (height: int) (encoder: Formats.IImageEncoder) =
    use image = Image.LoadPixelData<Rgb24>([| for i in 0 .. width * height - 1 -> Rgb24(byte (i * 37), byte (i * 101), byte (i * 7)) |], width, height)
    use memory = new MemoryStream()
    image.Save(memory, encoder)
    memory.ToArray()

/// A zlib stream of `count` zero bytes.
let zlibZeros (count: int) = zlib (Array.zeroCreate count)

/// A 64×64 grey progressive JPEG of flat grey: a DC scan, then `acScans` scans of the AC band 1–63 (all
/// zero: one end-of-band run of 64 blocks each, a byte). Repeating a band is what a scan bomb does.
let progressiveJpeg (acScans: int) =
    let segment (marker: byte) (payload: byte[]) = Array.concat [ [| 0xFFuy; marker; byte ((payload.Length + 2) >>> 8); byte (payload.Length + 2) |]; payload ]
    let counts (first: int) = Array.init 16 (fun i -> if i = 0 then byte first else 0uy)
    let tables = Array.concat [ [| 0x00uy |]; counts 1; [| 0x00uy |]        // DC table 0: category 0, code '0'
                                [| 0x10uy |]; counts 1; [| 0x60uy |] ]      // AC table 0: an end-of-band run of 64-127 blocks, code '0'
    let frame = [| 8uy; 0uy; 64uy; 0uy; 64uy; 1uy; 1uy; 0x11uy; 0uy |]      // 8 bits, 64 × 64, one component, table 0
    let scan (spectral: byte[]) (data: byte[]) = Array.append (segment 0xDAuy (Array.append [| 1uy; 1uy; 0x00uy |] spectral)) data
    Array.concat
        [ yield [| 0xFFuy; 0xD8uy |]
          yield segment 0xDBuy (Array.append [| 0uy |] (Array.create 64 1uy))
          yield segment 0xC2uy frame
          yield segment 0xC4uy tables
          yield scan [| 0uy; 0uy; 0uy |] (Array.zeroCreate 8)                 // 64 DC differences of 0, a bit each
          for _ in 1 .. acScans do yield scan [| 1uy; 63uy; 0uy |] [| 0x01uy |] // '0' + run bits 000000, padded with 1
          yield [| 0xFFuy; 0xD9uy |] ]

/// A PNG whose header claims width × height pixels, with no image data.
let hugePngHeader (width: uint32) (height: uint32) =
    Array.concat [ pngSignature; pngHeader width height 2uy; pngChunk "IEND" [||] ]

/// Takes the enumerator's next batch, disposes it and returns a weak reference to its index array
/// (the array the loader's own copy of the batch holds too). Not inlined: no local keeps it alive.
[<System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.NoInlining)>]
let nextBatchWeakly (batches: Collections.Generic.IEnumerator<Batch>) : WeakReference =
    Expect.isTrue (batches.MoveNext()) "a batch"
    batches.Current.Dispose()
    WeakReference(batches.Current.Indices)

let tests =
    testList "Data" [
        test "crop sampler: area fraction within the scale range, aspect within the ratio range, box inside the image" {
            let scale, ratio = struct (0.25, 1.0), struct (3.0 / 4.0, 4.0 / 3.0)
            for i in 0 .. 1999 do
                let random = SampleRandom(1L, 0L, int64 i)
                let width, height = 200 + i % 300, 150 + (i * 7) % 250
                let box = RandomResizedCrop.Sample(random, width, height, scale, ratio)
                Expect.isTrue (box.Left >= 0.0 && box.Top >= 0.0 && box.Left + box.Width <= float width && box.Top + box.Height <= float height) "inside"
                // w and h are rounded, so allow half a pixel on each side.
                let area = box.Width * box.Height / float (width * height)
                let slack = (box.Width + box.Height + 1.0) / 2.0 / float (width * height)
                Expect.isTrue (area >= 0.25 - slack && area <= 1.0 + slack) (sprintf "area fraction %g" area)
                let aspect = box.Width / box.Height
                Expect.isTrue (aspect >= 0.75 * (box.Width - 0.5) / box.Width * box.Height / (box.Height + 0.5) && aspect <= 4.0 / 3.0 * (box.Width + 0.5) / box.Width * box.Height / (box.Height - 0.5)) (sprintf "aspect %g" aspect)
        }

        test "crop sampler falls back to the centre crop clamped to the ratio range" {
            // A 1000×10 strip: no crop of area ≥ 90% has an aspect ratio ≤ 4/3.
            let box = RandomResizedCrop.Sample(SampleRandom(0L, 0L, 0L), 1000, 10, struct (0.9, 1.0), struct (3.0 / 4.0, 4.0 / 3.0))
            Expect.equal box (CropBox(0.0, 493.0, 10.0, 13.0, false)) "h = 10, w = round(10·4/3) = 13, centred"
            let tall = RandomResizedCrop.CentreFallback(10, 1000, struct (3.0 / 4.0, 4.0 / 3.0))
            Expect.equal tall (CropBox(493.0, 0.0, 13.0, 10.0, false)) "w = 10, h = round(10/0.75) = 13"
        }

        test "a crop of an image whose pixels encode their own coordinates decodes to the predicted patch positions" {
            let width, height = 200, 160
            let image = RgbImage(width, height)
            for y in 0 .. height - 1 do
                for x in 0 .. width - 1 do
                    image.[0, y, x] <- float32 x / 1000.0f
                    image.[1, y, x] <- float32 y / 1000.0f
            let size, patch = 64, 8
            for flipped in [ false; true ] do
                let box = CropBox(30.0, 40.0, 96.0, 120.0, flipped)
                let view = Resampling.ResizeBox(image, box.Left, box.Top, box.Width, box.Height, size, size)
                if flipped then ColorAugment.FlipHorizontal(view)
                let predicted = PatchPositions.Compute(box, size, patch)
                let grid = size / patch
                for r in 0 .. grid - 1 do
                    for c in 0 .. grid - 1 do
                        let mean ch = Seq.average (seq { for y in r * patch .. r * patch + patch - 1 do for x in c * patch .. c * patch + patch - 1 -> float view.[ch, y, x] * 1000.0 })
                        let token = r * grid + c
                        Expect.floatClose { absolute = 0.02; relative = 0.0 } (mean 0) (float predicted.[2 * token]) (sprintf "x of patch (%d, %d), flipped %b" r c flipped)
                        Expect.floatClose { absolute = 0.02; relative = 0.0 } (mean 1) (float predicted.[2 * token + 1]) (sprintf "y of patch (%d, %d), flipped %b" r c flipped)
        }

        test "epoch order: same seed and epoch agree, epochs differ, ranks shard disjointly by whole batches, drop_last" {
            let order = EpochOrder(103, 8)
            Expect.sequenceEqual (order.Indices(4L, 1L)) (order.Indices(4L, 1L)) "reproducible"
            Expect.notEqual (order.Indices(4L, 1L)) (order.Indices(4L, 2L)) "reshuffled per epoch"
            Expect.equal order.BatchesPerEpoch 12 "103 / 8 = 12 full batches"
            let shards = [ for r in 0 .. 2 -> EpochOrder(103, 8, r, 3) ]
            for rank, world in [ 3, 3; -1, 3; 0, 0 ] do
                Expect.throwsT<ArgumentException> (fun () -> EpochOrder(103, 8, rank, world).Indices(4L, 1L) |> ignore) (sprintf "no rank %d of world %d" rank world)
            Expect.equal shards.[0].BatchesPerEpoch 4 "103 / 24 = 4 global batches"
            let all = shards |> List.map (fun s -> s.Indices(4L, 1L)) |> Array.concat
            Expect.equal all.Length 96 "4 × 3 × 8"
            Expect.equal (all |> Array.distinct |> Array.length) 96 "no sample twice"
            // Sub-batch g = j·W + r of W ranks is micro-batch g of one rank: the same images.
            for j in 0 .. 3 do
                for r in 0 .. 2 do
                    Expect.sequenceEqual (shards.[r].BatchIndices(4L, 1L, j)) (order.BatchIndices(4L, 1L, j * 3 + r)) (sprintf "batch %d of rank %d" j r)
        }

        test "dataset fingerprint: the same names under other roots agree; another name, order or member size differs" {
            let files (root: string) names = [ for n in names -> ImageEntry.File(Path.Combine(root, n)) ]
            let names = [ "a/1.jpg"; "a/2.jpg"; "b/3.png" ]
            let here = DatasetFingerprint.Of(files "/data/set" names)
            Expect.equal (DatasetFingerprint.Of(files "/mnt/node2/copy" names)) here "another root, the same list"
            Expect.equal (DatasetFingerprint.Of(files "/data/set" [ "1.jpg"; "2.jpg" ])) (DatasetFingerprint.Of(files "/x" [ "1.jpg"; "2.jpg" ])) "one folder's files"
            Expect.notEqual (DatasetFingerprint.Of(files "/data/set" [ "a/1.jpg"; "a/2.jpg"; "b/4.png" ])) here "another name"
            Expect.notEqual (DatasetFingerprint.Of(files "/data/set" [ "a/2.jpg"; "a/1.jpg"; "b/3.png" ])) here "another order"
            Expect.notEqual (DatasetFingerprint.Of(files "/data/set" [ "a/1.jpg"; "a/2.jpg"; "c/3.png" ])) here "another folder"
            Expect.notEqual (DatasetFingerprint.Of(files "/data/set" [ "a/1.jpg"; "ab/2.jpg" ])) (DatasetFingerprint.Of(files "/data/set" [ "a/1.jpg"; "ac/2.jpg" ])) "another folder whose name begins as the first's"
            Expect.notEqual (DatasetFingerprint.Of(files "/data/set" [ "1.jpg"; "2.jpg" ])) (DatasetFingerprint.Of(files "/data/set" [ "1.jpg2.jpg" ])) "two names, not one name of both"
            let shard (root: string) (length: int64) = [ for m in [ "x.jpg"; "y.jpg" ] -> ImageEntry.InArchive(root + "/s.tar", TarMember(m, 512L, length)) ]
            Expect.equal (DatasetFingerprint.Of(shard "/a" 100L)) (DatasetFingerprint.Of(shard "/b" 100L)) "an archive under another root"
            Expect.notEqual (DatasetFingerprint.Of(shard "/a" 100L)) (DatasetFingerprint.Of(shard "/a" 101L)) "another member size"
        }

        test "same seed ⇒ identical batches with 1 and 4 workers (and with none)" {
            use _ = torch.NewDisposeScope()
            let dir = sceneFolder 12 96 80
            let files = ImageSources.Find([ dir ])
            let spec = MultiCropSpec.Croc(32, 8).WithLocals(2, 16)
            let run workers =
                let loader = ImageLoader(files, spec, LoaderOptions(4, workers, 2, 7L))
                [ for b in loader.Epoch(3L) -> bytesOf b.Globals, bytesOf b.GlobalPositions, bytesOf (present b.Locals), b.Indices ]
            let one = run 1
            Expect.equal one.Length 3 "three batches of 4"
            for other in [ run 4; run 0 ] do
                for (g1, p1, l1, i1), (g2, p2, l2, i2) in List.zip one other do
                    Expect.sequenceEqual i2 i1 "indices"
                    Expect.isTrue (g1 = g2 && p1 = p2 && l1 = l2) "views and positions, bit for bit"
            Directory.Delete(dir, true)
        }

        test "counts read as English: 1 image, 2 images; one image gives no full batch of 2" {
            Expect.equal (Counted.Of(1L, "image")) "1 image" "one"
            Expect.equal (Counted.Of(0L, "image")) "0 images" "none"
            Expect.equal (Counted.Of(2L, "class", "classes")) "2 classes" "an irregular plural"
            let dir = sceneFolder 1 64 48
            let refusal = Expect.throwsC (fun () -> ImageLoader(ImageSources.Find([ dir ]), MultiCropSpec.Croc(32, 8), LoaderOptions(2, 1)) |> ignore) id
            Expect.stringStarts refusal.Message "1 image gives no full batch of 2" "not '1 images give'"
            Directory.Delete(dir, true)
        }

        test "the loader lets go of a batch once it has been taken (memory bounded by the prefetch window, not the epoch)" {
            let dir = sceneFolder 12 64 48
            let loader = ImageLoader(ImageSources.Find([ dir ]), MultiCropSpec.Croc(32, 8), LoaderOptions(2, 2, 2))
            use batches = loader.Epoch(0L).GetEnumerator()
            let first = nextBatchWeakly batches
            for _ in 1 .. 4 do nextBatchWeakly batches |> ignore
            GC.Collect()
            GC.WaitForPendingFinalizers()
            GC.Collect()
            Expect.isFalse first.IsAlive "batch 0's arrays are unreachable four batches later"
            Directory.Delete(dir, true)
        }

        test "batch shapes: globals (2B, 3, S, S) view-major, positions (2B, N, 2), locals (L·B, 3, s, s)" {
            use _ = torch.NewDisposeScope()
            let dir = sceneFolder 4 96 80
            let loader = ImageLoader(ImageSources.Find([ dir ]), MultiCropSpec.Croc(32, 8).WithLocals(3, 16), LoaderOptions(2, 1))
            let batch = loader.Epoch(0L) |> Seq.head
            Expect.equal batch.Globals.shape [| 4L; 3L; 32L; 32L |] "globals"
            Expect.equal batch.GlobalPositions.shape [| 4L; 16L; 2L |] "positions"
            Expect.equal (present batch.Locals).shape [| 6L; 3L; 16L; 16L |] "locals"
            Expect.equal (present batch.LocalPositions).shape [| 6L; 4L; 2L |] "local positions"
            Directory.Delete(dir, true)
        }

        test "a folder of broken files: the epoch finishes, exactly the broken ones are skipped and reported" {
            use _ = torch.NewDisposeScope()
            let dir = sceneFolder 6 96 72
            let good = Path.Combine(dir, "img_000.jpg")
            let bytes = File.ReadAllBytes good
            let write name (content: byte[]) = File.WriteAllBytes(Path.Combine(dir, name), content)
            write "corrupt.jpg" (Array.init 5000 (fun i -> byte ((i * 7919) % 251)))
            write "empty.jpg" [||]
            write "text.jpg" (Text.Encoding.UTF8.GetBytes "not an image at all")
            write "huge.png" (hugePngHeader 100000u 100000u)
            use png = new Image<Rgb24>(40, 30)
            let pngPath = Path.Combine(dir, "whole.png")
            png.SaveAsPng(pngPath)
            let pngBytes = File.ReadAllBytes pngPath
            write "truncated.png" pngBytes.[.. pngBytes.Length / 2]
            File.Delete pngPath
            use one = new Image<Rgb24>(1, 1)
            one.SaveAsPng(Path.Combine(dir, "one_pixel.png"))
            use gray16 = new Image<L16>(20, 10)
            gray16.SaveAsPng(Path.Combine(dir, "gray16.png"))
            use alpha = new Image<Rgba32>(20, 10)
            alpha.SaveAsPng(Path.Combine(dir, "alpha.png"))
            File.Copy(Fixtures.path (Path.Combine("images", "cmyk.jpg")), Path.Combine(dir, "cmyk.jpg"))
            let files = ImageSources.Find([ dir ])
            Expect.equal files.Count 15 "6 scenes + 9 odd files"
            let loader = ImageLoader(files, MultiCropSpec.Croc(32, 8), LoaderOptions(3, 2))
            let batches = loader.Epoch(0L) |> Seq.map (fun b -> b.Indices) |> Seq.toList
            Expect.equal batches.Length 5 "15 / 3 batches, all full"
            let skipped = loader.Stats.Skipped.Keys |> Seq.map Path.GetFileName |> Seq.sort |> Seq.toList
            Expect.equal skipped [ "corrupt.jpg"; "empty.jpg"; "huge.png"; "text.jpg"; "truncated.png" ] "exactly the broken files"
            Expect.stringContains loader.Stats.Skipped.[Path.Combine(dir, "huge.png")] "exceed" "refused before decoding"
            Directory.Delete(dir, true)
        }

        test "an image with a side beyond 65535 px is refused before decoding, even under the pixel limit" {
            let e = Expect.throwsC (fun () -> ImageDecoder().Decode(hugePngHeader 12_000_000u 1u, "row.png") |> ignore) id
            Expect.stringContains (e :?> DecodeException).Message "a side exceeds the limit of 65535" "says why"
        }

        test "files found or read earlier that are gone (the data's storage unmounted) are a storage failure, not bad data; a list's missing files are bad data" {
            let gone (readFirst: bool) =
                let dir = sceneFolder 4 48 40
                let loader = ImageLoader(ImageSources.Find([ dir ]), MultiCropSpec.Croc(32, 8), LoaderOptions(2, 0))
                if readFirst then for batch in loader.Epoch(0L) do batch.Dispose() // every file read once
                for file in Directory.GetFiles dir do File.Delete file
                let failure = Expect.throwsC (fun () -> for batch in loader.Epoch(1L) do batch.Dispose()) id
                Expect.isTrue (failure :? IOException) (sprintf "read first %b: an I/O failure (exit 1), not 'is this an image dataset?' (exit 2): %s" readFirst failure.Message)
                Expect.stringContains failure.Message "is the data's storage still there" "says what to check"
                Directory.Delete(dir, true)
            gone true
            gone false // gone before this process read them (its first epoch, or a resume's)
            let dir = tempDir "listed"
            let list = Path.Combine(dir, "list.txt")
            File.WriteAllLines(list, [ "absent-1.jpg"; "absent-2.jpg" ])
            let neverThere = ImageLoader(ImageSources.Find([ list ]), MultiCropSpec.Croc(32, 8), LoaderOptions(2, 0))
            Expect.throwsT<DatasetException> (fun () -> for batch in neverThere.Epoch(0L) do batch.Dispose()) "files a list names that were never there stay bad data"
            // a file both a list names and a folder search found counts as found (the first root's entry won)
            let scenes = sceneFolder 4 48 40
            let moved = Path.Combine(dir, "scenes")
            Directory.Move(scenes, moved)
            File.WriteAllLines(list, [ for f in Directory.GetFiles moved -> Path.GetRelativePath(dir, f) ])
            Expect.isTrue (ImageSources.Find([ list; moved ]) |> Seq.forall (fun e -> not e.NamedOnly)) "found, whichever root came first"
            Directory.Delete(dir, true)
        }

        test "an undecodable file's replacement gets its own views, not a twin of the next slot's sample" {
            use _ = torch.NewDisposeScope()
            let dir = sceneFolder 2 64 64
            File.WriteAllText(Path.Combine(dir, "img_000.jpg"), "not an image")
            let loader = ImageLoader(ImageSources.Find([ dir ]), MultiCropSpec.Croc(32, 8), LoaderOptions(2, 0))
            let batch = loader.Epoch(0L) |> Seq.head
            Expect.sequenceEqual batch.Indices [| 1; 1 |] "the one decodable image fills both slots"
            let rows = batch.Globals.narrow(0L, 0L, 2L)
            Expect.isGreaterThan (maxAbsDiff rows.[0] rows.[1]) 0.01 "different crops"
            Directory.Delete(dir, true)
        }

        test "a dataset of undecodable files is refused saying how many were tried (not 'more than 64' for two files; 64 of 100, not all)" {
            let refusal (count: int) =
                let dir = tempDir "undecodable"
                for i in 1 .. count do File.WriteAllText(Path.Combine(dir, sprintf "%03d.jpg" i), "not an image")
                let loader = ImageLoader(ImageSources.Find([ dir ]), MultiCropSpec.Croc(32, 8), LoaderOptions(1, 0))
                let e = Expect.throwsC (fun () -> loader.Epoch(0L) |> Seq.head |> ignore) id
                Directory.Delete(dir, true)
                e.Message
            Expect.stringContains (refusal 2) "2 files in a row could not be decoded near position 0 (every file of the dataset)" "the count tried"
            Expect.stringContains (refusal 100) "64 files in a row could not be decoded near position 0: is this" "at most 64 tried"
        }

        test "a Pascal VOC root as a dataset gives its JPEGImages, not its masks" {
            let dir = tempDir "voc-root"
            SyntheticScenes.WriteVoc(dir, 4, 2, 3L)
            let warnings = ResizeArray<string>()
            let found = ImageSources.Find([ dir ], Action<string>(warnings.Add))
            Expect.equal found.Count 6 "the 4 + 2 photos"
            Expect.all found (fun e -> e.Name.EndsWith ".jpg") "no mask PNG"
            Expect.exists warnings (fun w -> w.Contains "Pascal VOC layout") "said"
            Directory.Delete(dir, true)
        }

        test "a BMP whose bit count is 0 (the decoder divides by it) is a DecodeException, not a crash" {
            let le16 (v: int) = [| byte v; byte (v >>> 8) |]
            let le32 (v: int) = [| byte v; byte (v >>> 8); byte (v >>> 16); byte (v >>> 24) |]
            let info = Array.concat [ le32 40; le32 4; le32 4; le16 1; le16 0; le32 0; le32 64; le32 2835; le32 2835; le32 0; le32 0 ]
            let bmp = Array.concat [ "BM"B; le32 (54 + 64); le32 0; le32 54; info; Array.create 64 7uy ]
            Expect.throwsT<DecodeException> (fun () -> ImageDecoder().Decode(bmp, "zero-bits.bmp") |> ignore) "a clear skip"
        }

        test "a PNG whose compressed text inflates to 80 MB, a WebP chunk claiming 2 GB and a JPEG of 1,002 scans are refused before the decoder expands them, as images and as masks; small text and few scans decode" {
            let latin1 (s: string) = Text.Encoding.Latin1.GetBytes s
            let bomb = zlibZeros (80 <<< 20) // beyond the 64 MB that ImageMagick's and Photoshop's profiles stay far below
            let ztxt = rgbPngWith [ pngChunk "zTXt" (Array.append (latin1 "Comment\000\000") bomb) ]
            let itxt = rgbPngWith [ pngChunk "iTXt" (Array.append (latin1 "Comment\000\001\000en\000\000") bomb) ]
            let le32 (v: uint32) = BitConverter.GetBytes v
            let vp8x = Array.concat [ latin1 "VP8X"; le32 10u; [| 0x20uy; 0uy; 0uy; 0uy; 7uy; 0uy; 0uy; 7uy; 0uy; 0uy |] ]
            let body = Array.concat [ latin1 "WEBP"; vp8x; latin1 "ICCP"; le32 0x7FFFFFC0u; Array.zeroCreate 64 ]
            let webp = Array.concat [ latin1 "RIFF"; le32 (uint32 body.Length); body ]
            let dir = tempDir "bombs"
            for name, bytes, why in [ "ztxt.png", ztxt, "decompression bomb"; "itxt.png", itxt, "decompression bomb"; "iccp.webp", webp, "ICCP chunk claims 2147483584 bytes" ] do
                let before = GC.GetAllocatedBytesForCurrentThread()
                let refusal = Expect.throwsC (fun () -> ImageDecoder().Decode(bytes, name) |> ignore) id
                Expect.isLessThan (GC.GetAllocatedBytesForCurrentThread() - before) (16L <<< 20) (name + ": bytes allocated")
                Expect.stringContains refusal.Message why name
                let mask = Path.Combine(dir, name)
                File.WriteAllBytes(mask, bytes)
                let maskRefusal = Expect.throwsC (fun () -> VocSegmentation.LoadMask(mask) |> ignore) id
                Expect.isTrue (maskRefusal :? DatasetException && maskRefusal.Message.Contains why) (sprintf "%s as a mask: %s" name maskRefusal.Message)
                let before = GC.GetAllocatedBytesForCurrentThread()
                Expect.isFalse (PictureMark.IsOn mask) (name + " is no picture of croc-host's (the check an output's replacement makes)")
                Expect.isLessThan (GC.GetAllocatedBytesForCurrentThread() - before) (16L <<< 20) (name + ": bytes allocated by that check")
            // a chunk of odd size is followed by a pad byte, which is no part of the next chunk
            let odd = Array.concat [ latin1 "WEBP"; vp8x; latin1 "EXIF"; le32 3u; [| 1uy; 2uy; 3uy; 0uy |]; latin1 "XMP "; le32 2u; [| 4uy; 5uy |] ]
            Expect.isNull (ExpansionBombs.Why(Array.concat [ latin1 "RIFF"; le32 (uint32 odd.Length); odd ])) "a WebP of an odd-sized chunk and its pad byte"
            let scans = Expect.throwsC (fun () -> ImageDecoder().Decode(progressiveJpeg 1001, "scans.jpg") |> ignore) id
            Expect.stringContains scans.Message "a JPEG of 1,002 scans, more than 1,000" "a scan bomb"
            let progressive = ImageDecoder().Decode(progressiveJpeg 3, "progressive.jpg")
            Expect.equal (progressive.Width, progressive.Height) (64, 64) "a progressive JPEG of a few scans decodes"
            Expect.equal (ImageDecoder().Decode(progressiveJpeg 999, "limit.jpg").Width) 64 "1,000 scans, the limit itself, decode"
            // metadata segments are joined anew for each one read (1,000 of 64 KB: 17 s and 62 GB): at most 64
            let withSegments (count: int) =
                let jpeg = progressiveJpeg 3
                let segment = Array.concat [ [| 0xFFuy; 0xE2uy; 0uy; 116uy |]; latin1 "ICC_PROFILE\000"; [| 1uy; 1uy |]; Array.zeroCreate 100 ]
                Array.concat [ jpeg.[.. 1]; Array.concat (List.replicate count segment); jpeg.[2 ..] ]
            Expect.stringContains (Expect.throwsC (fun () -> ImageDecoder().Decode(withSegments 65, "icc.jpg") |> ignore) id).Message "a JPEG of 65 EXIF/XMP/ICC segments (APP1, APP2), more than 64" "refused"
            Expect.equal (ImageDecoder().Decode(withSegments 64, "icc.jpg").Width) 64 "64, the limit itself, decode"
            let small = rgbPngWith [ pngChunk "zTXt" (Array.append (latin1 "Comment\000\000") (zlibZeros 1000))
                                     pngChunk "iTXt" (Array.append (latin1 "Title\000\001\000\000\000") (zlibZeros 1000)) ]
            let image = ImageDecoder().Decode(small, "small-text.png")
            Expect.equal (image.Width, image.Height) (8, 8) "a PNG with a little compressed text decodes"
            // real profiles run to megabytes (ImageMagick's hex profiles, Photoshop's XMP): 2 MB of compressed text and 100 KB of plain iTXt decode
            let noise = Array.zeroCreate<byte> (2 <<< 20)
            Random(3).NextBytes noise
            let profiles = rgbPngWith [ pngChunk "zTXt" (Array.append (latin1 "Raw profile type exif\000\000") (zlib noise))
                                        pngChunk "iTXt" (Array.concat [ latin1 "XML:com.adobe.xmp\000\000\000\000\000"; Array.create 100_000 (byte 'x') ]) ]
            Expect.equal (ImageDecoder().Decode(profiles, "profiles.png").Width) 8 "megabytes of real text decode"
            // a raw profile's claimed length is allocated by the decoder: 2³¹ − 1 in a 189-byte PNG was an OutOfMemoryException that ended a run
            let claim = "\nexif\n 2147483647\n4578696600004d4d002a00000008"
            for kind, data in [ "tEXt", latin1 ("Raw profile type exif\000" + claim); "zTXt", Array.append (latin1 "Raw profile type exif\000\000") (zlib (latin1 claim)) ] do
                let before = GC.GetAllocatedBytesForCurrentThread()
                let refused = Expect.throwsC (fun () -> ImageDecoder().Decode(rgbPngWith [ pngChunk kind data ], "claim.png") |> ignore) id
                Expect.stringContains refused.Message "raw profile text claiming 2,147,483,647 bytes" (kind + ": refused, not decoded")
                Expect.isLessThan (GC.GetAllocatedBytesForCurrentThread() - before) (16L <<< 20) (kind + ": bytes allocated")
            let honest = rgbPngWith [ pngChunk "tEXt" (latin1 "Raw profile type iptc\000\niptc\n       4\n1c020000\n") ]
            Expect.equal (ImageDecoder().Decode(honest, "honest.png").Width) 8 "a raw profile whose text holds its length decodes"
            let longHeader = rgbPngWith [ pngChunk "iTXt" (Array.concat [ latin1 "Comment\000\001\000"; Array.create 70_000 (byte 'l'); latin1 "\000\000"; zlibZeros 10 ]) ]
            let refused = Expect.throwsC (fun () -> ImageDecoder().Decode(longHeader, "long-header.png") |> ignore) id
            Expect.stringContains refused.Message "header runs past 65,536 bytes" "a compressed iTXt whose text cannot be found is refused"
            Directory.Delete(dir, true)
        }

        test "a JPEG cut short (which the decoder fills with grey) is a DecodeException; a whole one, with bytes after its end, decodes" {
            let folder = sceneFolder 1 96 80
            let whole = File.ReadAllBytes(Directory.GetFiles(folder).[0])
            let scan = Seq.findIndex (fun i -> whole.[i] = 0xFFuy && whole.[i + 1] = 0xDAuy) (seq { 0 .. whole.Length - 2 })
            let table = Seq.findIndex (fun i -> whole.[i] = 0xFFuy && whole.[i + 1] = 0xC4uy) (seq { 0 .. whole.Length - 2 })
            let decoder = ImageDecoder()
            // cut inside a Huffman table too: the header fails first ("InvalidImageContentException: … the C4 marker" once)
            for cut in [ table + 10; scan + 14; scan + (whole.Length - scan) / 2; whole.Length - 2 ] do
                let e = Expect.throwsC (fun () -> decoder.Decode(whole.[.. cut - 1], "cut.jpg") |> ignore) id
                Expect.stringContains e.Message "a JPEG cut short" (sprintf "cut at %d of %d bytes" cut whole.Length)
            decoder.Decode(Array.append whole "appended by a camera"B, "trailer.jpg") |> ignore
            // The marker walk itself, on a progressive-like stream: two scans (entropy data with
            // stuffed FF 00s and a restart FF D3), a table between them, the end marker.
            let segment (marker: byte) (body: byte[]) = Array.concat [ [| 0xFFuy; marker; byte ((body.Length + 2) >>> 8); byte (body.Length + 2) |]; body ]
            let entropy = [| 0x12uy; 0xFFuy; 0x00uy; 0x34uy; 0xFFuy; 0xD3uy; 0xFFuy; 0x00uy; 0x56uy |] // a stuffed byte after the restart too
            let stream =
                Array.concat [ [| 0xFFuy; 0xD8uy |]; segment 0xC2uy (Array.zeroCreate 9); segment 0xDAuy [| 1uy; 1uy; 0uy; 0uy; 63uy; 0uy |]; entropy
                               segment 0xC4uy (Array.zeroCreate 5); segment 0xDAuy [| 1uy; 1uy; 0uy; 1uy; 63uy; 0uy |]; entropy; [| 0xFFuy; 0xD9uy |] ]
            Expect.isTrue (JpegEnd.Reached stream) "two scans, then the end"
            for cut in 2 .. stream.Length - 1 do Expect.isFalse (JpegEnd.Reached stream.[.. cut - 1]) (sprintf "cut at %d" cut)
            Expect.isFalse (JpegEnd.Reached [| 0xFFuy; 0xD8uy; 0xFFuy; 0xD9uy |]) "no scan at all"
            Directory.Delete(folder, true)
        }

        test "an image cut short in any supported format is a DecodeException (PNG, GIF, WebP and BMP decoders fill it with black); whole ones decode" {
            let encoded (encoder: Formats.IImageEncoder) = encodedNoise 64 48 encoder
            let decoder = ImageDecoder()
            for name, whole, format in [ "png", encoded (Formats.Png.PngEncoder()), Formats.Png.PngFormat.Instance :> Formats.IImageFormat
                                         "gif", encoded (Formats.Gif.GifEncoder()), Formats.Gif.GifFormat.Instance
                                         "webp", encoded (Formats.Webp.WebpEncoder()), Formats.Webp.WebpFormat.Instance
                                         "bmp", encoded (Formats.Bmp.BmpEncoder()), Formats.Bmp.BmpFormat.Instance ] do
                decoder.Decode(whole, "whole." + name) |> ignore
                Expect.isNull (EncodedEnd.Missing(format, whole)) (name + ": whole")
                for cut in [ whole.Length - 2; whole.Length * 3 / 4; whole.Length / 2 ] do
                    Expect.isNotNull (EncodedEnd.Missing(format, whole.[.. cut - 1])) (sprintf "%s cut at %d of %d" name cut whole.Length)
                    Expect.throwsT<DecodeException> (fun () -> decoder.Decode(whole.[.. cut - 1], "cut." + name) |> ignore) (sprintf "%s cut at %d: skipped" name cut)
            // A PNG of many IDAT chunks cut between two of them: every chunk it holds is intact.
            let png = indexedPng 64 64 (Array.init 4096 (fun i -> byte (i % 3))) [ 0uy, 0uy, 0uy; 128uy, 0uy, 0uy; 0uy, 128uy, 0uy ] []
            let secondIdat = Seq.findIndex (fun i -> png.[i .. i + 3] = "IDAT"B) (seq { png.Length / 2 .. png.Length - 4 }) + png.Length / 2 - 4
            let e = Expect.throwsC (fun () -> decoder.Decode(png.[.. secondIdat - 1], "cut.png") |> ignore) id
            Expect.stringContains e.Message "a PNG cut short" "named as such"
            let mask = Path.Combine(tempDir "cut-mask", "mask.png")
            File.WriteAllBytes(mask, png.[.. png.Length - 13]) // all pixel data, no IEND
            let e = Expect.throwsC (fun () -> VocSegmentation.LoadMask(mask) |> ignore) id
            Expect.stringContains e.Message "unreadable mask (a PNG cut short" "a mask too (read as class 0 below the cut once)"
            File.WriteAllBytes(mask, png.[.. 19]) // inside its IHDR chunk: the header fails before the end is checked
            let e = Expect.throwsC (fun () -> VocSegmentation.LoadMask(mask) |> ignore) id
            Expect.stringContains e.Message "unreadable mask (a PNG cut short" "a mask cut inside its header chunks too (the decoder's exception once)"
            // A GIF with a stray byte between its blocks (decoders skip it) is whole; so is a BMP of the 16-byte OS/2 v2 header.
            let gif = encoded (Formats.Gif.GifEncoder())
            let tableEnd = 13 + (if gif.[10] &&& 0x80uy <> 0uy then 3 <<< (int (gif.[10] &&& 7uy) + 1) else 0)
            let strayed : byte[] = Array.concat [ gif.[.. tableEnd - 1]; [| 0x55uy |]; gif.[tableEnd ..] ]
            Expect.isNull (EncodedEnd.Missing(Formats.Gif.GifFormat.Instance, strayed)) "a stray byte skipped"
            // A 2×2 GIF whose colours are its frame's own (a local table of 2, black), cut in its image data.
            let local : byte[] = Array.concat [ "GIF89a"B; [| 2uy; 0uy; 2uy; 0uy; 0uy; 0uy; 0uy |]                         // no global table
                                                [| 0x2Cuy; 0uy; 0uy; 0uy; 0uy; 2uy; 0uy; 2uy; 0uy; 0x80uy |]; Array.zeroCreate 6 // descriptor, local table
                                                [| 2uy; 3uy; 0x84uy; 0xA1uy; 0x00uy; 0uy; 0x3Buy |] ]                       // LZW: clear 0 6 0 end; terminator, trailer
            Expect.equal (decoder.Decode(local, "local.gif").Width) 2 "a GIF of a local colour table decodes"
            Expect.isNotNull (EncodedEnd.Missing(Formats.Gif.GifFormat.Instance, local.[.. local.Length - 4])) "its local table skipped: the data's last byte missing"
            // BMPs by hand: the 16-byte OS/2 v2 header (no compression field), rows stored top-down (a negative height),
            // and 32-bit bit fields whose header leaves the image size 0; each 2 rows of 8 bytes.
            let le32 (v: int) = [| byte v; byte (v >>> 8); byte (v >>> 16); byte (v >>> 24) |]
            let info (height: int) (compression: int) = Array.concat [ le32 40; le32 2; le32 height; [| 1uy; 0uy; 32uy; 0uy |]; le32 compression; le32 0; le32 2835; le32 2835; le32 0; le32 0 ]
            let masks = Array.concat [ le32 0xFF0000; le32 0xFF00; le32 0xFF ]
            for name, (bmp: byte[]) in [ "OS/2 v2", Array.concat [ "BM"B; le32 46; le32 0; le32 30; le32 16; le32 2; le32 2; [| 1uy; 0uy; 24uy; 0uy |]; Array.zeroCreate 16 ]
                                         "top-down", Array.concat [ "BM"B; le32 70; le32 0; le32 54; info -2 0; Array.zeroCreate 16 ]
                                         "bit fields", Array.concat [ "BM"B; le32 82; le32 0; le32 66; info 2 3; masks; Array.zeroCreate 16 ] ] do
                Expect.isNull (EncodedEnd.Missing(Formats.Bmp.BmpFormat.Instance, bmp)) (name + ": whole")
                Expect.isNotNull (EncodedEnd.Missing(Formats.Bmp.BmpFormat.Instance, bmp.[.. bmp.Length - 2])) (name + ": one byte short")
            // RLE BMPs whose header leaves the image size 0 (as writers may): the stream's rows must all be there.
            // RLE8, 2 × 3: a run, end of line, a delta one row down, a run, end of line, end of bitmap.
            // RLE4, 4 × 1: an absolute run of 4 pixels (2 bytes), end of line, end of bitmap.
            let rle (width: int) (height: int) (bits: byte) (compression: int) (stream: byte list) =
                let header = Array.concat [ le32 40; le32 width; le32 height; [| 1uy; 0uy; bits; 0uy |]; le32 compression; le32 0; le32 2835; le32 2835; le32 2; le32 0 ]
                Array.concat [ "BM"B; le32 (62 + stream.Length); le32 0; le32 62; header; [| 0uy; 0uy; 0uy; 0uy; 255uy; 255uy; 255uy; 0uy |]; Array.ofList stream ]
            let rle8 = rle 2 3 8uy 1 [ 2uy; 0uy; 0uy; 0uy; 0uy; 2uy; 0uy; 1uy; 2uy; 1uy; 0uy; 0uy; 0uy; 1uy ]
            for name, bmp, lastRowEnds in [ "RLE8", rle8, 12
                                            "RLE4", rle 4 1 4uy 2 [ 0uy; 4uy; 0x01uy; 0x10uy; 0uy; 0uy; 0uy; 1uy ], 6 ] do
                Expect.isNull (EncodedEnd.Missing(Formats.Bmp.BmpFormat.Instance, bmp)) (name + ": whole")
                Expect.equal (decoder.Decode(bmp, name + ".bmp").Height) (if name = "RLE8" then 3 else 1) (name + ": decodes")
                for kept in 0 .. lastRowEnds - 1 do
                    Expect.isNotNull (EncodedEnd.Missing(Formats.Bmp.BmpFormat.Instance, bmp.[.. 62 + kept - 1])) (sprintf "%s: %d bytes of its stream, cut before its last row ends (decoded black-filled once)" name kept)
                Expect.isNull (EncodedEnd.Missing(Formats.Bmp.BmpFormat.Instance, bmp.[.. 62 + lastRowEnds - 1])) (name + ": every row there, the end marker left out")
            Expect.throwsT<DecodeException> (fun () -> decoder.Decode(rle8.[.. 62 + 5], "cut.bmp") |> ignore) "a cut RLE BMP is skipped"
            // TIFF: the first directory's strips, little- and big-endian, as SHORTs or LONGs, by hand (encoders put the
            // directory last). Values that fit the entry's 4 bytes are stored there, others after the directory.
            let tiff (little: bool) (short: bool) (strips: (int * int) list) (length: int) =
                let u16 (v: int) = if little then [| byte v; byte (v >>> 8) |] else [| byte (v >>> 8); byte v |]
                let u32 (v: int) = if little then [| byte v; byte (v >>> 8); byte (v >>> 16); byte (v >>> 24) |] else [| byte (v >>> 24); byte (v >>> 16); byte (v >>> 8); byte v |]
                let size, count = (if short then 2 else 4), strips.Length
                let values (vs: int list) = Array.concat [ for v in vs -> if short then u16 v else u32 v ]
                let inPlace = size * count <= 4
                let entry tag i (vs: int list) =
                    let field = if inPlace then Array.append (values vs) (Array.zeroCreate (4 - size * count)) else u32 (38 + i * size * count)
                    Array.concat [ u16 tag; u16 (if short then 3 else 4); u32 count; field ]
                let offsets, counts = List.map fst strips, List.map snd strips
                let head = Array.concat [ (if little then "II"B else "MM"B); u16 42; u32 8; u16 2; entry 273 0 offsets; entry 279 1 counts; u32 0
                                          (if inPlace then [||] else values (offsets @ counts)) ]
                Array.append head (Array.zeroCreate (length - head.Length))
            for little in [ true; false ] do
                for short in [ false; true ] do
                    for strips in [ [ 100, 50 ]; [ 100, 20; 120, 30 ] ] do
                        let name = sprintf "little-endian %b, SHORT %b, strips %A" little short strips
                        Expect.isNull (EncodedEnd.Missing(Formats.Tiff.TiffFormat.Instance, tiff little short strips 150)) (name + ": inside 150 bytes")
                        Expect.isNotNull (EncodedEnd.Missing(Formats.Tiff.TiffFormat.Instance, tiff little short strips 149)) (name + ": one byte short")
        }

        test "a JPEG-compressed TIFF's strips must be JPEGs within its page, a BMP's pixel data must start inside it: both are DecodeExceptions before any decoding (a strip at offset 0 overflowed the stack, ending the process; a 190-byte BMP allocated 1 GB)" {
            let decoder = ImageDecoder()
            let saved (encoder: Formats.IImageEncoder) = encodedNoise 13 9 encoder
            let refusal (bytes: byte[]) = (Expect.throwsC (fun () -> decoder.Decode(bytes, "bad") |> ignore) id).Message
            let tiff = saved (Formats.Tiff.TiffEncoder(Compression = Formats.Tiff.Constants.TiffCompression.Jpeg))
            Expect.equal (decoder.Decode(tiff, "whole.tif").Width) 13 "a whole JPEG-compressed TIFF decodes"
            // the first directory's StripOffsets entry (tag 273, one LONG, held in the entry); ImageSharp writes little-endian
            let directory = int (BitConverter.ToUInt32(tiff, 4))
            let entry = [ for e in 0 .. int (BitConverter.ToUInt16(tiff, directory)) - 1 -> directory + 2 + 12 * e ] |> List.find (fun at -> BitConverter.ToUInt16(tiff, at) = 273us)
            Expect.equal (BitConverter.ToUInt32(tiff, entry + 4)) 1u "one strip"
            let strip = int (BitConverter.ToUInt32(tiff, entry + 8))
            let atZero = Array.copy tiff
            Array.fill atZero (entry + 8) 4 0uy
            Expect.stringContains (refusal atZero) "strip 0 is no JPEG" "a strip that is the TIFF itself (decoded endlessly once)"
            let taller = Array.copy tiff
            let frame = seq { strip .. tiff.Length - 2 } |> Seq.find (fun i -> tiff.[i] = 0xFFuy && tiff.[i + 1] = 0xC0uy)
            taller.[frame + 5] <- 0x10uy // the strip's JPEG frame: 4,096 + 9 rows
            Expect.stringContains (refusal taller) "is a JPEG of 13x4105 pixels, larger than its 13x9 page" "a strip's JPEG beyond the page (decoded outside the pixel limit)"
            let bmp = saved (Formats.Bmp.BmpEncoder())
            Expect.equal (decoder.Decode(bmp, "whole.bmp").Height) 9 "a whole BMP decodes"
            let farOff = Array.copy bmp
            BitConverter.TryWriteBytes(Span(farOff, 10, 4), 0x40000000u) |> ignore
            let before = GC.GetAllocatedBytesForCurrentThread()
            Expect.stringContains (refusal farOff) "pixel data would start at byte 1073741824, beyond its end" "said"
            Expect.isLessThan (GC.GetAllocatedBytesForCurrentThread() - before) (16L <<< 20) "nothing near the gap's 1 GB allocated"
        }

        test "decoding: CMYK becomes RGB, EXIF orientation is applied" {
            let cmyk = ImageDecoder().Decode(Fixtures.path (Path.Combine("images", "cmyk.jpg")))
            Expect.equal (cmyk.Width, cmyk.Height) (24, 16) "size"
            Expect.isTrue (cmyk.[0, 8, 2] < 0.3f && cmyk.[1, 8, 2] > 0.6f && cmyk.[2, 8, 2] > 0.6f) "cyan on the left"
            Expect.isTrue (cmyk.[0, 8, 21] > 0.6f && cmyk.[1, 8, 21] > 0.6f && cmyk.[2, 8, 21] < 0.3f) "yellow on the right"
            let dir = tempDir "exif"
            use rotated = new Image<Rgb24>(30, 20)
            rotated.Metadata.ExifProfile <- Metadata.Profiles.Exif.ExifProfile()
            rotated.Metadata.ExifProfile.SetValue(Metadata.Profiles.Exif.ExifTag.Orientation, 6us)
            let path = Path.Combine(dir, "rotated.jpg")
            rotated.SaveAsJpeg(path)
            let decoded = ImageDecoder().Decode(path)
            Expect.equal (decoded.Width, decoded.Height) (20, 30) "rotated by 90°"
            Directory.Delete(dir, true)
        }

        test "decoding: every 8-bit value becomes value / 255 in its plane, for widths with and without a partial last vector" {
            for width in [ 1; 3; 4; 5; 6; 7; 37; 224 ] do
                use png = new Image<Rgb24>(width, 3)
                for y in 0 .. 2 do
                    for x in 0 .. width - 1 do png.[x, y] <- Rgb24(byte ((7 * x + y) % 256), byte ((13 * x + 5 * y + 1) % 256), byte ((765 - x - 31 * y) % 256))
                use stream = new MemoryStream()
                png.SaveAsPng(stream)
                let decoded = ImageDecoder().Decode(stream.ToArray(), "rows.png")
                for y in 0 .. 2 do
                    for x in 0 .. width - 1 do
                        let pixel = png.[x, y]
                        let expected = [| float32 pixel.R * (1.0f / 255.0f); float32 pixel.G * (1.0f / 255.0f); float32 pixel.B * (1.0f / 255.0f) |]
                        Expect.equal [| decoded.[0, y, x]; decoded.[1, y, x]; decoded.[2, y, x] |] expected (sprintf "width %d, pixel (%d, %d)" width x y)
        }

        test "images are in ordinal name order (capitals before lower case, as Python's sorted), whatever order the folder lists them in" {
            let dir = tempDir "ordinal"
            for name in [ "a.jpg"; "B.jpg"; "_c.jpg"; "img10.jpg"; "img1.jpg"; "Z/x.jpg" ] do
                Directory.CreateDirectory(present (Path.GetDirectoryName(Path.Combine(dir, name)))) |> ignore
                File.WriteAllBytes(Path.Combine(dir, name), [| 1uy |])
            Expect.sequenceEqual [ for e in ImageSources.Find([ dir ], ignore) -> Path.GetRelativePath(dir, e.Path) ] [ "B.jpg"; "Z/x.jpg"; "_c.jpg"; "a.jpg"; "img1.jpg"; "img10.jpg" ] "ordinal"
            Directory.Delete(dir, true)
        }

        test "an empty or missing dataset root gives a clear error at start" {
            let empty = tempDir "empty"
            Expect.throwsT<DatasetException> (fun () -> ImageSources.Find([ empty ]) |> ignore) "no images"
            Expect.throwsT<DatasetException> (fun () -> ImageSources.Find([ Path.Combine(empty, "absent") ]) |> ignore) "no such root"
            Directory.Delete(empty, true)
        }

        test "synthetic scenes: deterministic, masks agree with the image colours, VOC write → read round trip" {
            let struct (image, mask) = SyntheticScenes.Generate(3L, 17)
            let struct (again, maskAgain) = SyntheticScenes.Generate(3L, 17)
            Expect.isTrue (image.Pixels = again.Pixels && mask = maskAgain) "deterministic"
            let classes = mask |> Array.distinct |> Array.sort
            Expect.isGreaterThanOrEqual classes.Length 2 "background and objects"
            // Chromaticity: each object class is closest to its own base hue among the classes.
            let chroma (cls: byte) =
                let pixels = [ for i in 0 .. mask.Length - 1 do if mask.[i] = cls then yield i ]
                let mean ch = pixels |> List.averageBy (fun i -> float image.Pixels.[ch * image.Plane + i])
                let r, g, b = mean 0, mean 1, mean 2
                r / (r + g + b), g / (r + g + b)
            let reference = [| 0.85, 0.20, 0.15; 0.20, 0.70, 0.25; 0.20, 0.30, 0.85; 0.90, 0.80, 0.15; 0.80, 0.25, 0.75; 0.15, 0.75, 0.80 |]
                            |> Array.map (fun (r, g, b) -> r / (r + g + b), g / (r + g + b))
            for cls in classes |> Array.filter (fun c -> c > 0uy) do
                let cr, cg = chroma cls
                let nearest = reference |> Array.mapi (fun i (r, g) -> i + 1, (r - cr) ** 2.0 + (g - cg) ** 2.0) |> Array.minBy snd |> fst
                Expect.equal nearest (int cls) (sprintf "class %d pixels carry its colour" cls)
            let root = tempDir "voc"
            SyntheticScenes.WriteVoc(root, 4, 2, 3L)
            let train, valSet = VocSegmentation(root, "train"), VocSegmentation(root, "val")
            Expect.equal (train.Count, valSet.Count) (4, 2) "splits"
            for i in 0 .. 3 do
                let struct (readImage, readMask) = train.Load(i)
                let struct (expectedImage, expectedMask) = SyntheticScenes.Generate(3L, i)
                Expect.sequenceEqual readMask expectedMask "mask read back exactly"
                let meanError = Array.map2 (fun (a: float32) b -> abs (float a - float b)) readImage.Pixels expectedImage.Pixels |> Array.average
                Expect.isLessThan meanError 0.03 "image read back (JPEG)"
            Directory.Delete(root, true)
        }

        test "VOC: gray masks of 1, 4 and 16 bits give their stored indices; a bad mask is a dataset error naming it" {
            let dir = tempDir "masks"
            let save (image: Image) (depth: PngBitDepth) name =
                let path = Path.Combine(dir, name)
                image.Save(path, PngEncoder(ColorType = PngColorType.Grayscale, BitDepth = depth))
                path
            let read path = let mask, _, _ = VocSegmentation.LoadMask(path) in mask
            let refusal path =
                match Expect.throwsC (fun () -> read path |> ignore) id with
                | :? DatasetException as e -> e.Message
                | e -> failtestf "%s: %s instead of a dataset error" (e.GetType().Name) e.Message
            use oneBit = new Image<L8>(4, 1)
            [| 0uy; 255uy; 0uy; 255uy |] |> Array.iteri (fun x v -> oneBit.[x, 0] <- L8(v))
            Expect.sequenceEqual (read (save oneBit PngBitDepth.Bit1 "one.png")) [| 0uy; 1uy; 0uy; 1uy |] "1-bit: 0 / 1, not 0 / 255 (ignored)"
            use fourBit = new Image<L8>(3, 1)
            [| 0uy; 51uy; 255uy |] |> Array.iteri (fun x v -> fourBit.[x, 0] <- L8(v))
            Expect.sequenceEqual (read (save fourBit PngBitDepth.Bit4 "four.png")) [| 0uy; 3uy; 15uy |] "4-bit indices"
            use sixteen = new Image<L16>(3, 1)
            [| 0us; 5us; 255us |] |> Array.iteri (fun x v -> sixteen.[x, 0] <- L16(v))
            Expect.sequenceEqual (read (save sixteen PngBitDepth.Bit16 "sixteen.png")) [| 0uy; 5uy; 255uy |] "16-bit indices, not scaled to 8 bits"
            sixteen.[1, 0] <- L16(300us)
            let wide = save sixteen PngBitDepth.Bit16 "wide.png"
            Expect.stringContains (refusal wide) "value 300" "a 16-bit value no index can be"
            let palette = Path.Combine(dir, "palette.png")
            VocSegmentation.SaveMask(Array.create 64 1uy, 8, 8, palette)
            let whole = File.ReadAllBytes palette
            File.WriteAllBytes(palette, whole.[.. whole.Length / 2])
            for path in [ palette; Path.Combine(dir, "missing.png") ] do
                Expect.stringStarts (refusal path) path "names the mask"
            let png = File.ReadAllBytes(save oneBit PngBitDepth.Bit1 "limits.png")
            for decoder, says in [ ImageDecoder(MaxFileBytes = 16L), "bytes exceed the limit of 16"; ImageDecoder(MaxPixels = 2L), "exceed the limit of 2" ] do
                let e = Expect.throwsC (fun () -> decoder.Load<L8>(png, "m.png") |> ignore) id
                Expect.stringContains e.Message says "masks are read under the decoder's limits"
            Directory.Delete(dir, true)
        }

        test "VOC: a palette mask gives its stored indices whatever its colours (swapped VOC colours, a gray table, repeated entries, tRNS); gray+alpha gives its values; a JPEG named .png is refused as such" {
            let dir = tempDir "palette-masks"
            let read path = let mask, _, _ = VocSegmentation.LoadMask(path) in mask
            let indices = [| 0uy; 1uy; 3uy; 1uy; 255uy; 3uy |]
            let write name (table: (byte * byte * byte) list) (alpha: byte list) =
                let path = Path.Combine(dir, name)
                File.WriteAllBytes(path, indexedPng 3 2 indices table alpha)
                path
            let voc = [ for struct (r, g, b) in VocPalette.Colors -> r, g, b ]
            let swapped = voc |> List.mapi (fun i c -> match i with 1 -> voc.[3] | 3 -> voc.[1] | _ -> c)
            Expect.sequenceEqual (read (write "voc.png" voc [])) indices "VOC's own table"
            Expect.sequenceEqual (read (write "swapped.png" swapped [])) indices "entries 1 and 3 swapped: the indices, not the colours' VOC classes"
            Expect.sequenceEqual (read (write "gray.png" [ for i in 0 .. 255 -> byte i, byte i, byte i ] [])) indices "a gray table (not VOC's colours)"
            let padded = [ for i in 0 .. 255 -> if i = 1 then (255uy, 255uy, 255uy) elif i = 3 then (9uy, 9uy, 9uy) elif i = 255 then (1uy, 2uy, 3uy) else (0uy, 0uy, 0uy) ]
            Expect.sequenceEqual (read (write "padded.png" padded [])) indices "black listed at every unused index: read as the first"
            let sameColours = [ for i in 0 .. 255 -> (7uy, 7uy, 7uy) ]
            Expect.sequenceEqual (read (write "alpha.png" sameColours [ for i in 0 .. 255 -> byte i ])) indices "one colour, told apart by tRNS alpha"
            use grayAlpha = new Image<La16>(3, 1)
            [| 0uy; 2uy; 255uy |] |> Array.iteri (fun x v -> grayAlpha.[x, 0] <- La16(v, 128uy))
            let la = Path.Combine(dir, "la.png")
            grayAlpha.Save(la, PngEncoder(ColorType = PngColorType.GrayscaleWithAlpha, BitDepth = PngBitDepth.Bit8))
            Expect.sequenceEqual (read la) [| 0uy; 2uy; 255uy |] "gray + alpha: the gray values"
            let jpeg = Path.Combine(dir, "photo.png")
            use photo = new Image<Rgb24>(4, 4)
            photo.SaveAsJpeg jpeg
            match Expect.throwsC (fun () -> read jpeg |> ignore) id with
            | :? DatasetException as e -> Expect.stringContains e.Message "a JPEG file, not a PNG" "says what the file is"
            | e -> failtestf "%s instead of a dataset error" (e.GetType().Name)
            Directory.Delete(dir, true)
        }

        test "an interlaced PNG with a side below 5 is skipped as undecodable, not decoded by ImageSharp: a 3x3 one hung a training run beyond SIGTERM; from 5x5 on they decode" {
            // ImageSharp 2.1 loops on (or misreads) Adam7's empty passes; every size is decoded or refused within the wait
            for bits in [ 2; 8 ] do
                for width in 1 .. 8 do
                    for height in 1 .. 8 do
                        let indices = Array.init (width * height) (fun i -> byte (i % 3))
                        let png = palettePng width height bits true [ 0uy, 0uy, 0uy; 255uy, 0uy, 0uy; 0uy, 255uy, 0uy ] (zlib (paletteScanlines width height bits true indices))
                        let name = sprintf "%dx%d-%dbit.png" width height bits
                        let decoding = Threading.Tasks.Task.Run(fun () -> try Choice1Of2(ImageDecoder().Decode(png, name)) with e -> Choice2Of2 e)
                        if not (decoding.Wait(TimeSpan.FromSeconds 10.0)) then failtestf "%s: no result in 10 s" name
                        match decoding.Result with
                        | Choice1Of2 image ->
                            Expect.isTrue (width >= 5 && height >= 5) $"{name} is refused"
                            Expect.equal (image.Width, image.Height) (width, height) name
                            let reds = [| for i in 0 .. width * height - 1 -> image.Pixels.[i] > 0.5f |]
                            Expect.equal reds (indices |> Array.map (fun i -> i = 1uy)) $"{name}: its pixels"
                        | Choice2Of2 (:? DecodeException as e) ->
                            Expect.isTrue (width < 5 || height < 5) $"{name} decodes: {e.Message}"
                            Expect.stringContains e.Message "an interlaced PNG of" name
                        | Choice2Of2 e -> failtestf "%s: %s" name e.Message
        }

        test "VOC: a palette mask is read by its stored indices, parsed from the file (one colour at many indices, indices beyond the table, 1 and 4 bits, every filter, Adam7, a cut stream)" {
            // ImageSharp decodes palette PNGs to colours only: mapped back, one colour listed at several indices
            // merged their classes, and an index beyond the table was clamped to its last entry.
            let dir = tempDir "palette-indices"
            let write name (bytes: byte[]) = let path = Path.Combine(dir, name) in File.WriteAllBytes(path, bytes); path
            let read path = let mask, _, _ = VocSegmentation.LoadMask(path) in mask
            let refusal path =
                match Expect.throwsC (fun () -> read path |> ignore) id with
                | :? DatasetException as e -> e.Message
                | e -> failtestf "%s: %s instead of a dataset error" (e.GetType().Name) e.Message
            let black n = List.replicate n (0uy, 0uy, 0uy)
            let indices = [| 0uy; 3uy; 255uy; 3uy; 255uy; 1uy |]
            Expect.sequenceEqual (read (write "black.png" (indexedPng 3 2 indices (black 256) []))) indices "a table all black: 3 and 255 stay 3 and 255 (were 0)"
            let voc = [ for i in 0 .. 20 -> let struct (r, g, b) = VocPalette.Colors.[i] in r, g, b ]
            Expect.sequenceEqual (read (write "voc21.png" (indexedPng 3 2 indices voc []))) indices "VOC's 21 classes: 255 beyond the table is ignore (was clamped to 20)"
            let beyond = refusal (write "beyond.png" (indexedPng 3 2 [| 0uy; 1uy; 5uy; 1uy; 0uy; 0uy |] [ 1uy, 1uy, 1uy; 2uy, 2uy, 2uy ] []))
            Expect.stringContains beyond "the pixel at (2, 0) holds index 5, which has no entry in the file's palette of 2 entries" "refused (was read as 1)"
            let justBeyond = refusal (write "just-beyond.png" (indexedPng 3 2 [| 0uy; 1uy; 1uy; 1uy; 2uy; 0uy |] [ 1uy, 1uy, 1uy; 2uy, 2uy, 2uy ] []))
            Expect.stringContains justBeyond "the pixel at (1, 1) holds index 2, which has no entry in the file's palette of 2 entries" "the first index past the table"
            // A distinct table (red = 7 i mod 256) lets ImageSharp check the test's own encoding; the black one, the reading.
            let distinct = [ for i in 0 .. 255 -> byte (i * 7), byte (255 - i), 0uy ]
            let byRed = Array.init 256 (fun i -> byte (i * 7)) |> Array.mapi (fun i red -> red, byte i) |> dict
            // 1-bit rows of 8k + 1 indices (9 wide; Adam7's one-column passes at 10 wide) end in a byte holding one index
            for width, height, bits, interlaced in [ 13, 3, 1, false; 9, 4, 1, false; 10, 10, 1, true; 7, 5, 4, false; 11, 6, 8, false; 11, 13, 4, true; 9, 10, 8, true; 3, 3, 2, true; 3, 2, 8, true ] do
                let name = sprintf "%d bits, %dx%d%s" bits width height (if interlaced then ", Adam7" else "")
                let pixels = Array.init (width * height) (fun i -> byte ((i * 37 + i / width * 11) % (1 <<< bits)))
                let idat = zlib (paletteScanlines width height bits interlaced pixels)
                Expect.sequenceEqual (read (write "packed.png" (palettePng width height bits interlaced (black (1 <<< bits)) idat))) pixels name
                if not interlaced || (width >= 5 && height >= 5) then // below, Adam7 has empty passes (no scanline, no filter byte), which ImageSharp 2.1 misreads or loops on
                    use coloured = Image.Load<Rgb24>(palettePng width height bits interlaced (List.take (1 <<< bits) distinct) idat)
                    Expect.sequenceEqual [| for y in 0 .. height - 1 do for x in 0 .. width - 1 -> byRed.[coloured.[x, y].R] |] pixels (name + ": the test's encoding, as ImageSharp decodes it")
            let scanlines = paletteScanlines 11 6 8 false (Array.init 66 (fun i -> byte (i % 4)))
            Expect.sequenceEqual [ for r in 0 .. 5 -> scanlines.[r * 12] ] [ 0uy; 1uy; 2uy; 3uy; 4uy; 0uy ] "rows filtered with each type"
            let whole = zlib scanlines
            for cut, why in [ zlib scanlines.[.. 40], "ends before its 6 rows do"; zlib scanlines.[.. scanlines.Length - 2], "ends before its 6 rows do" // one byte short
                              whole.[.. whole.Length / 2], "unreadable mask"; Array.append whole.[.. 1] (Array.create 20 0xFFuy), "not a valid zlib stream" ] do
                Expect.stringContains (refusal (write "cut.png" (palettePng 11 6 8 false (black 4) cut))) why "a short or damaged image data stream (black rows once)"
            Expect.stringContains (refusal (write "filter.png" (palettePng 2 1 8 false (black 4) (zlib [| 5uy; 0uy; 0uy |])))) "unknown filter type 5" "an unknown filter"
            // chunks after IEND are no part of the image: a larger table there does not take index 5 in
            let trailing = Array.append (indexedPng 3 2 [| 0uy; 1uy; 5uy; 1uy; 0uy; 0uy |] [ 1uy, 1uy, 1uy; 2uy, 2uy, 2uy ] []) (pngChunk "PLTE" (Array.zeroCreate 24))
            Expect.stringContains (refusal (write "trailing.png" trailing)) "holds index 5, which has no entry in the file's palette of 2 entries" "the table before IEND"
            Directory.Delete(dir, true)
        }

        test "PngIndices refuses a header it cannot read (not a palette PNG, no table, an unknown interlace method); PngFilters' Paeth breaks ties as the PNG specification orders them" {
            let pixels = Array.init 12 (fun i -> byte (i % 2))
            let png (change: byte[] -> unit) (table: bool) =
                let header = Array.concat [ [| 0uy; 0uy; 0uy; 4uy; 0uy; 0uy; 0uy; 3uy |]; [| 8uy; 3uy; 0uy; 0uy; 0uy |] ] // 4 x 3, 8 bits, palette
                change header
                Array.concat [ [| 137uy; 80uy; 78uy; 71uy; 13uy; 10uy; 26uy; 10uy |]; pngChunk "IHDR" header
                               (if table then pngChunk "PLTE" (Array.zeroCreate 6) else [||])
                               pngChunk "IDAT" (zlib (paletteScanlines 4 3 8 false pixels)); pngChunk "IEND" [||] ]
            let read (bytes: byte[]) = PngIndices.Read(ReadOnlySpan bytes, "t.png")
            let whole = read (png ignore true)
            Expect.sequenceEqual whole.Indices pixels "the indices"
            Expect.equal (whole.Width, whole.Height, whole.Entries) (4, 3, 2) "its size and table"
            for what, change, table, says in [ "a gray PNG", (fun (h: byte[]) -> h.[9] <- 0uy), true, "a PNG of colour type 0, not a palette PNG"
                                               "no PLTE chunk", ignore, false, "a palette PNG without a PLTE chunk"
                                               "interlace method 2", (fun (h: byte[]) -> h.[12] <- 2uy), true, "a PNG of unknown interlace method 2" ] do
                let e = Expect.throwsC (fun () -> read (png change table) |> ignore) id
                Expect.isTrue (e :? DecodeException) $"{what}: {e.GetType().Name}"
                Expect.stringContains e.Message says what
            // Paeth: left a, above b, upper-left c; p = a + b - c; the nearest of a, b, c, ties to a, then b.
            // Each row's first byte is predicted from above alone (a = c = 0: b), its second from a tie.
            let unfiltered (row: byte[]) (above: byte[]) =
                let row = Array.copy row
                PngFilters.Undo(4uy, Span row, ReadOnlySpan above, "t.png")
                row
            Expect.sequenceEqual (unfiltered [| 3uy; 46uy |] [| 10uy; 4uy |]) [| 13uy; 50uy |] "a = 13, b = 4, c = 10: |p-b| = |p-c| = 3, b is taken"
            Expect.sequenceEqual (unfiltered [| 250uy; 46uy |] [| 10uy; 13uy |]) [| 4uy; 50uy |] "a = 4, b = 13, c = 10: |p-a| = |p-c| = 3, a is taken"
        }

        test "the tiny interlaced PNG refusal is for PNGs only: a 2x2 BMP of 1 bit (byte 28, its bit count, is 1 as a PNG's interlace byte would be) decodes" {
            let le32 (v: int) = [| byte v; byte (v >>> 8); byte (v >>> 16); byte (v >>> 24) |]
            // 2 x 2 pixels of 1 bit: file header, 40-byte info header, a table of black and white, two rows of 4 bytes (bottom-up)
            let bmp = Array.concat [ "BM"B; le32 70; le32 0; le32 62
                                     le32 40; le32 2; le32 2; [| 1uy; 0uy; 1uy; 0uy |]; le32 0; le32 8; le32 2835; le32 2835; le32 2; le32 0
                                     [| 0uy; 0uy; 0uy; 0uy; 255uy; 255uy; 255uy; 0uy |]; [| 0x40uy; 0uy; 0uy; 0uy; 0x80uy; 0uy; 0uy; 0uy |] ]
            Expect.equal bmp.[28] 1uy "the bit count at byte 28"
            let image = ImageDecoder().Decode(bmp, "tiny.bmp")
            Expect.equal (image.Width, image.Height) (2, 2) "decoded"
            Expect.sequenceEqual [| for i in 0 .. 3 -> image.Pixels.[i] > 0.5f |] [| true; false; false; true |] "its pixels: white at (0, 0) and (1, 1)"
        }

        test "VOC: a mask missing from SegmentationClass/ is read from SBD's SegmentationClassAug/; a name without image or mask is refused when the split is opened, before any work" {
            let root = tempDir "voc-aug"
            SyntheticScenes.WriteVoc(root, 2, 1, 3L)
            let aug = Path.Combine(root, "SegmentationClassAug")
            Directory.CreateDirectory aug |> ignore
            File.Move(Path.Combine(root, "SegmentationClass", "scene_00001.png"), Path.Combine(aug, "scene_00001.png"))
            let train = VocSegmentation(root, "train")
            Expect.equal (train.MaskPath 1) (Path.Combine(aug, "scene_00001.png")) "the augmented set's mask"
            Expect.equal (train.MaskPath 0) (Path.Combine(root, "SegmentationClass", "scene_00000.png")) "VOC's own first"
            Expect.equal train.AugmentedMasks 1 "counted: eval-seg says how many come from there (said nothing, also for its evaluation split, once)"
            let struct (_, mask) = train.Load(1)
            let struct (_, expected) = SyntheticScenes.Generate(3L, 1)
            Expect.sequenceEqual mask expected "read from there"
            File.Delete(Path.Combine(aug, "scene_00001.png"))
            let e = Expect.throwsC (fun () -> VocSegmentation(root, "train") |> ignore) id
            Expect.isTrue (e :? DatasetException) "a dataset error"
            Expect.stringContains e.Message "scene_00001.png: file not found (1 image or mask file(s)" "names the first missing file and counts them"
            Directory.CreateDirectory(Path.Combine(root, "SegmentationClass", "scene_00001.png")) |> ignore
            let e = Expect.throwsC (fun () -> VocSegmentation(root, "train") |> ignore) id
            Expect.stringContains e.Message "scene_00001.png: a folder, not a file (1 image or mask file(s)" "a folder where a mask belongs is named as one (was 'file not found')"
            Directory.Delete(root, true)
        }

        test "VOC: images are read on the stored pixel grid, as their masks, whatever their EXIF orientation" {
            let root = tempDir "voc-exif"
            SyntheticScenes.WriteVoc(root, 1, 1, 3L)
            let jpeg = Path.Combine(root, "JPEGImages", "scene_00000.jpg")
            do
                use image = Image.Load<Rgb24>(jpeg)
                image.Metadata.ExifProfile <- Metadata.Profiles.Exif.ExifProfile()
                image.Metadata.ExifProfile.SetValue(Metadata.Profiles.Exif.ExifTag.Orientation, 6us)
                image.SaveAsJpeg(jpeg, Formats.Jpeg.JpegEncoder(Quality = 95))
            let struct (readImage, readMask) = VocSegmentation(root, "train").Load(0)
            let struct (expectedImage, expectedMask) = SyntheticScenes.Generate(3L, 0)
            Expect.sequenceEqual readMask expectedMask "mask"
            let meanError = Array.map2 (fun (a: float32) b -> abs (float a - float b)) readImage.Pixels expectedImage.Pixels |> Array.average
            Expect.isLessThan meanError 0.03 "the image as stored, not turned by 90°"
            Directory.Delete(root, true)
        }

        test "permutations are uniform: each of the 3! orders of 3 items comes about equally often (Fisher–Yates)" {
            let counts = Array.init 6000 (fun i -> SampleRandom(6L, 0L, int64 i).Permutation(3) |> List.ofArray) |> Array.countBy id
            Expect.equal counts.Length 6 (sprintf "all 6 orders, the identity included: %A" counts)
            for p, n in counts do
                Expect.isTrue (n > 850 && n < 1150) (sprintf "%A drawn %d times of 6000 (1000 expected, σ ≈ 29)" p n)
        }

        test "an image with a height beyond 65535 px is refused before decoding too" {
            let e = Expect.throwsC (fun () -> ImageDecoder().Decode(hugePngHeader 1u 12_000_000u, "column.png") |> ignore) id
            Expect.stringContains (e :?> DecodeException).Message "a side exceeds the limit of 65535" "says why"
        }

        test "a broken file is reported once, however often it is tried (two epochs, each file tried at least once per epoch)" {
            use _ = torch.NewDisposeScope()
            let dir = sceneFolder 4 64 48
            File.WriteAllBytes(Path.Combine(dir, "broken_a.jpg"), Text.Encoding.UTF8.GetBytes "not an image")
            File.WriteAllBytes(Path.Combine(dir, "broken_b.jpg"), [||])
            let warnings = Collections.Concurrent.ConcurrentBag<string>()
            let loader = ImageLoader(ImageSources.Find([ dir ]), MultiCropSpec.Croc(32, 8), LoaderOptions(2, 1), warn = Action<string>(warnings.Add))
            for epoch in 0L .. 1L do loader.Epoch(epoch) |> Seq.iter ignore // 6 files, 3 full batches of 2: every position visited
            let counted = warnings |> Seq.countBy (fun w -> if w.Contains "broken_a" then "a" elif w.Contains "broken_b" then "b" else w) |> Seq.sort |> Seq.toList
            Expect.equal counted [ "a", 1; "b", 1 ] "each broken file warned exactly once"
            Expect.equal loader.Stats.Skipped.Count 2 "two skipped files"
            Directory.Delete(dir, true)
        }

        test "an epoch order without shuffling is the dataset's own order" {
            Expect.sequenceEqual (EpochOrder(10, 2, Shuffle = false).Indices(4L, 3L)) [| 0 .. 9 |] "0..9, whatever the seed and epoch"
        }

        test "a list's line naming no root is refused naming the list too (the innermost of lists of lists): the missing root alone was said once" {
            let dir = tempDir "list-of-words"
            let list, outer = Path.Combine(dir, "words.txt"), Path.Combine(dir, "outer.txt")
            File.WriteAllLines(list, [ "hello" ])
            File.WriteAllLines(outer, [ "words.txt" ])
            for given in [ list; outer ] do
                let e = Expect.throwsC (fun () -> ImageSources.Find([ given ]) |> ignore) id
                Expect.isTrue (e :? DatasetException) (string e)
                Expect.stringContains e.Message (sprintf "the dataset root '%s' does not exist" (Path.Combine(dir, "hello"))) "the root"
                Expect.stringEnds e.Message (sprintf "(a line of the list '%s')" list) "the list that holds the line, once"
            Directory.Delete(dir, true)
        }

        test "files a list names that were read before and are gone are a storage failure too" {
            let dir = tempDir "listed-read"
            let scenes = sceneFolder 4 48 40
            let moved = Path.Combine(dir, "scenes")
            Directory.Move(scenes, moved)
            let list = Path.Combine(dir, "list.txt")
            File.WriteAllLines(list, [ for f in Directory.GetFiles moved -> Path.GetRelativePath(dir, f) ])
            let files = ImageSources.Find([ list ])
            Expect.isTrue (files |> Seq.forall (fun e -> e.NamedOnly)) "named by the list only"
            let loader = ImageLoader(files, MultiCropSpec.Croc(32, 8), LoaderOptions(2, 0))
            for batch in loader.Epoch(0L) do batch.Dispose() // every file read once
            for file in Directory.GetFiles moved do File.Delete file
            let failure = Expect.throwsC (fun () -> for batch in loader.Epoch(1L) do batch.Dispose()) id
            Expect.isTrue (failure :? IOException) (sprintf "an I/O failure, not bad data: %s" failure.Message)
            Directory.Delete(dir, true)
        }

        test "the decoder's limits take their own value: a file of MaxFileBytes bytes, MaxPixels pixels and MaxSide px a side decodes; one more is refused" {
            let path = Path.Combine(tempDir "limits", "8x4.png")
            do
                use image = new Image<Rgb24>(8, 4)
                image.SaveAsPng(path)
            let length = FileInfo(path).Length
            let outcome (decoder: ImageDecoder) = try decoder.Decode(path).Width |> sprintf "%d px wide" with :? DecodeException as e -> e.Reason
            Expect.equal (outcome (ImageDecoder(MaxFileBytes = length, MaxPixels = 32L, MaxSide = 8))) "8 px wide" "each limit met exactly"
            for decoder, says in [ ImageDecoder(MaxFileBytes = length - 1L), sprintf "%d bytes exceed the limit of %d" length (length - 1L)
                                   ImageDecoder(MaxPixels = 31L), "8x4 pixels exceed the limit of 31"
                                   ImageDecoder(MaxSide = 7), "8x4 pixels: a side exceeds the limit of 7" ] do
                Expect.equal (outcome decoder) says says
            Directory.Delete(Path.GetDirectoryName path |> present, true)
        }

        test "a buffer to reuse is taken only when it has the image's size: one a row taller or a column wider is left alone" {
            let decoder = ImageDecoder()
            let png = rgbPngWith [] // 8×8
            let same = RgbImage(8, 8)
            Expect.isTrue (obj.ReferenceEquals(decoder.Decode(png, "same.png", same), same)) "the same size: reused"
            for other in [ RgbImage(8, 9); RgbImage(9, 8) ] do
                let decoded = decoder.Decode(png, "other.png", other)
                Expect.equal (decoded.Width, decoded.Height) (8, 8) (sprintf "not decoded into a %d×%d buffer" other.Width other.Height)
        }

        test "a path that cannot be an image is the file's failure, said at once, never retried as the storage's: a link loop, a path through a file, a folder, an empty file, a FIFO, a device, a socket" {
            let dir = tempDir "no-image"
            File.CreateSymbolicLink(Path.Combine(dir, "loop-a.jpg"), Path.Combine(dir, "loop-b.jpg")) |> ignore
            File.CreateSymbolicLink(Path.Combine(dir, "loop-b.jpg"), Path.Combine(dir, "loop-a.jpg")) |> ignore
            File.WriteAllBytes(Path.Combine(dir, "file.jpg"), [| 1uy |])
            Directory.CreateDirectory(Path.Combine(dir, "folder.jpg")) |> ignore
            File.WriteAllBytes(Path.Combine(dir, "empty.jpg"), [||])
            makeFifo (Path.Combine(dir, "fifo.jpg"))
            File.CreateSymbolicLink(Path.Combine(dir, "zero.jpg"), "/dev/zero") |> ignore
            use socket = new Net.Sockets.Socket(Net.Sockets.AddressFamily.Unix, Net.Sockets.SocketType.Stream, Net.Sockets.ProtocolType.Unspecified)
            socket.Bind(Net.Sockets.UnixDomainSocketEndPoint(Path.Combine(dir, "socket.jpg")))
            let decoder = ImageDecoder(StorageRetryWaits = [| TimeSpan.Zero |])
            // a FIFO and a device give no length either: "empty file" once
            for name, says in [ "loop-a.jpg", "Too many levels of symbolic links"; Path.Combine("file.jpg", "a.jpg"), "file not found"; "folder.jpg", "a folder, not an image file"; "empty.jpg", "empty file"
                                "fifo.jpg", "not a regular file (a FIFO or a socket?)"; "zero.jpg", "a device, not an image file"
                                "socket.jpg", "not a regular file (a FIFO or a socket?)" ] do // its open's ENXIO was retried as the storage's once
                let e = Expect.throwsC (fun () -> decoder.Decode(Path.Combine(dir, name)) |> ignore) id :?> DecodeException
                Expect.isFalse e.Storage (name + ": not the storage's")
                Expect.stringContains e.Reason says name
            // an archive renamed over by a FIFO after it was indexed (its member still listed): refused, not waited
            // on — the loader's workers waited for a writer forever once, and the run with them, beyond SIGTERM
            let reading = Threading.Tasks.Task.Run(fun () -> decoder.Decode(ImageEntry(Path.Combine(dir, "fifo.jpg"), "member.jpg", 512L, 100L)) |> ignore)
            let finished = try reading.Wait(TimeSpan.FromSeconds 20.0) with :? AggregateException -> true
            Expect.isTrue finished "a member of a FIFO: refused at once"
            let e = present (present reading.Exception).InnerException :?> DecodeException
            Expect.isFalse e.Storage "not the storage's (not retried)"
            Expect.stringContains e.Reason "not a regular file (a FIFO or a socket?)" "said"
            // a link's relative target climbing out of a folder reached through a link is taken from the link's
            // real folder, as the kernel reads it (.NET's resolution, by the path as written, found no file once)
            Directory.CreateDirectory(Path.Combine(dir, "set", "imgs")) |> ignore
            Directory.CreateDirectory(Path.Combine(dir, "set", "raw")) |> ignore
            File.WriteAllBytes(Path.Combine(dir, "set", "raw", "x.png"), rgbPngWith [])
            File.CreateSymbolicLink(Path.Combine(dir, "set", "imgs", "x.png"), Path.Combine("..", "raw", "x.png")) |> ignore
            Directory.CreateSymbolicLink(Path.Combine(dir, "imgs"), Path.Combine(dir, "set", "imgs")) |> ignore
            Expect.equal (decoder.Decode(Path.Combine(dir, "imgs", "x.png")).Width) 8 "decoded through both links"
            Directory.Delete(dir, true)
        }

        test "RegularFile opens only seekable files without blocking, and says why not as the system does (a folder once opened and seeked, its reads failing)" {
            let dir = tempDir "regular-file"
            let file = Path.Combine(dir, "file.bin")
            File.WriteAllBytes(file, [| 7uy; 8uy |])
            makeFifo (Path.Combine(dir, "fifo"))
            use socket = new Net.Sockets.Socket(Net.Sockets.AddressFamily.Unix, Net.Sockets.SocketType.Stream, Net.Sockets.ProtocolType.Unspecified)
            socket.Bind(Net.Sockets.UnixDomainSocketEndPoint(Path.Combine(dir, "socket")))
            do
                use stream = present (RegularFile.Open file)
                Expect.equal stream.Length 2L "a regular file opens"
            Expect.isTrue (RegularFile.IsReadable "/dev/zero") "a seekable device opens"
            for path, says in [ Path.Combine(dir, "fifo"), RegularFile.NotRegular; dir, "Is a directory"; Path.Combine(dir, "missing"), "No such file or directory"
                                Path.Combine(file, "x"), "Not a directory"; Path.Combine(dir, "socket"), RegularFile.NotRegular ] do
                let stream, whyNot = RegularFile.Open(path)
                Expect.isNull stream path
                Expect.equal whyNot says path
                Expect.isFalse (RegularFile.IsReadable path) path
            // as an ordinary open raises them, so that the decoder tells a missing image from the storage's failure
            let raised (path: string) = Expect.throwsC (fun () -> RegularFile.OpenOrThrow(path).Dispose()) id
            Expect.isTrue (raised (Path.Combine(dir, "missing")) :? FileNotFoundException) "missing: FileNotFoundException"
            Expect.isTrue (raised (Path.Combine(file, "x")) :? DirectoryNotFoundException) "through a file: DirectoryNotFoundException, as .NET's"
            Expect.isTrue (raised (Path.Combine(dir, String('n', 300))) :? PathTooLongException) "a name too long: PathTooLongException, as .NET's"
            Expect.isTrue (raised (Path.Combine(dir, "fifo")) :? NotRegularFileException) "a FIFO: NotRegularFileException"
            Expect.isTrue (raised (Path.Combine(dir, "socket")) :? NotRegularFileException) "a socket (ENXIO): NotRegularFileException"
            let folder = raised dir
            Expect.equal (folder.GetType(), folder.HResult &&& 0xFFFF) (typeof<IOException>, 21) "a folder: IOException with EISDIR"
            Directory.Delete(dir, true)
        }

        test "only croc-host's mark makes a PNG its own (replaceable): another program's Software text, or none, does not; nor a damaged one, which never throws" {
            let dir = tempDir "mark"
            let saved (name: string) (mark: Image -> unit) =
                use picture = new Image<Rgb24>(4, 4)
                mark picture
                let path = Path.Combine(dir, name)
                picture.SaveAsPng(path)
                path
            Expect.isTrue (PictureMark.IsOn(saved "own.png" PictureMark.Add)) "croc-host's"
            Expect.isFalse (PictureMark.IsOn(saved "gimp.png" (fun p -> p.Metadata.GetPngMetadata().TextData.Add(PngTextData("Software", "GIMP 2.10", "", ""))))) "another program's"
            Expect.isFalse (PictureMark.IsOn(saved "plain.png" ignore)) "unmarked"
            // ImageSharp throws out-of-range exceptions on a PNG cut inside its pHYs chunk (an internal error of
            // `clusters --output` once): every cut and every byte changed to 0x00, 0xAC or 0xFF is answered.
            let own = File.ReadAllBytes(Path.Combine(dir, "own.png"))
            let markEnd = (List.find (fun i -> own.[i .. i + 8] = "croc-host"B) [ 0 .. own.Length - 9 ]) + 9
            let damaged = Path.Combine(dir, "damaged.png")
            let isOn (bytes: byte[]) = File.WriteAllBytes(damaged, bytes); PictureMark.IsOn damaged
            for cut in 0 .. own.Length - 1 do
                let answer = isOn own.[.. cut - 1]
                if cut < markEnd then Expect.isFalse answer (sprintf "cut at %d of %d bytes, inside the mark or before it" cut own.Length)
            for at in 0 .. own.Length - 1 do
                for value in [ 0x00uy; 0xACuy; 0xFFuy ] do
                    isOn (Array.updateAt at value own) |> ignore
                    isOn (Array.updateAt at value own).[.. 48] |> ignore
            Directory.Delete(dir, true)
        }

        test "VOC colours: 1 ↦ (128, 0, 0), 2 ↦ (0, 128, 0), 4 ↦ (0, 0, 128), 255 ↦ (224, 224, 192); each colour gives back its class, another none" {
            Expect.equal [ for i in [ 1; 2; 4; 255 ] -> VocPalette.Colors.[i] ] [ struct (128uy, 0uy, 0uy); struct (0uy, 128uy, 0uy); struct (0uy, 0uy, 128uy); struct (224uy, 224uy, 192uy) ] "by hand"
            for i in 0 .. 255 do
                let struct (r, g, b) = VocPalette.Colors.[i]
                Expect.equal (VocPalette.IndexOf(r, g, b)) (Nullable(byte i)) (sprintf "class %d" i)
            Expect.isFalse (VocPalette.IndexOf(1uy, 2uy, 3uy).HasValue) "not a VOC colour"
        }
    ]
