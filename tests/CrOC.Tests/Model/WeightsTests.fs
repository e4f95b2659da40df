module CrOC.Tests.WeightsTests

open System.IO
open Expecto
open TorchSharp
open CrOC.Math
open CrOC.Math.Tensors
open CrOC.Host.Weights
open CrOC.Tests.TestUtil

let temporary (name: string) = scratchPath "weights" ("-" + name)

let bytesOf (t: Tensor) = t.contiguous().bytes.ToArray()

let same (a: Tensor) (b: Tensor) = a.shape = b.shape && bytesOf a = bytesOf b

let bitIdentical (a: NamedTensors) (b: NamedTensors) =
    Expect.sequenceEqual (Seq.sort b.Keys) (Seq.sort a.Keys) "same names (a pickled dict keeps no order)"
    for KeyValue(name, t) in a do
        Expect.equal b.[name].dtype t.dtype (sprintf "%s dtype" name)
        Expect.equal b.[name].shape t.shape (sprintf "%s shape" name)
        Expect.sequenceEqual (bytesOf b.[name]) (bytesOf t) (sprintf "%s bit-identical" name)

let sample () =
    NamedTensors(
        [ "a.weight", torch.randn(3L, 4L)
          "a.bias", torch.randn(4L, dtype = torch.float64)
          "steps", torch.tensor([| 1L; 2L; 3L |])
          "scalar", torch.tensor(2.5f)
          "half", torch.randn(2L, 2L).to_type(torch.bfloat16)
          "empty", torch.zeros(0L, 5L) ])

let throwsWeights (f: unit -> unit) what = Expect.throwsT<WeightsException> f what

/// `pth`'s archive rewritten (correct CRCs) with `edit` applied to each entry's name and bytes.
let rezipped (pth: byte[]) (edit: string -> byte[] -> byte[]) =
    use source = new System.IO.Compression.ZipArchive(new MemoryStream(pth), System.IO.Compression.ZipArchiveMode.Read)
    use output = new MemoryStream()
    do
        use target = new System.IO.Compression.ZipArchive(output, System.IO.Compression.ZipArchiveMode.Create, true)
        for entry in source.Entries do
            use content = entry.Open()
            use buffer = new MemoryStream()
            content.CopyTo buffer
            let bytes = edit entry.FullName (buffer.ToArray())
            use written = target.CreateEntry(entry.FullName, System.IO.Compression.CompressionLevel.Optimal).Open()
            written.Write(bytes, 0, bytes.Length)
    output.ToArray()

/// `pth`'s archive rewritten with `edit` applied to data.pkl's bytes.
let repickled (pth: byte[]) (edit: byte[] -> byte[]) = rezipped pth (fun name bytes -> if name.EndsWith "data.pkl" then edit bytes else bytes)

/// `zip` with a field of the central directory's record of the entry whose name ends in `suffix` set to
/// `size`: at 20 the compressed size, at 24 the uncompressed one.
let claimField (field: int) (zip: byte[]) (suffix: string) (size: uint32) =
    let copy = Array.copy zip
    let name = System.Text.Encoding.ASCII.GetBytes suffix
    let isEntry at =
        copy.[at] = 0x50uy && copy.[at + 1] = 0x4buy && copy.[at + 2] = 1uy && copy.[at + 3] = 2uy
        && (let nameLength = int (System.BitConverter.ToUInt16(copy, at + 28))
            nameLength >= name.Length && copy.[at + 46 + nameLength - name.Length .. at + 45 + nameLength] = name)
    let at = [ 0 .. copy.Length - 47 ] |> List.find isEntry
    System.BitConverter.GetBytes(size).CopyTo(copy, at + field)
    copy

let claimSize = claimField 24
let claimCompressed = claimField 20

/// `bytes` with the first occurrence of `pattern` replaced.
let replaceOnce (pattern: byte[]) (replacement: byte[]) (bytes: byte[]) =
    let at = [ 0 .. bytes.Length - pattern.Length ] |> List.find (fun i -> bytes.[i .. i + pattern.Length - 1] = pattern)
    Array.concat [ bytes.[.. at - 1]; replacement; bytes.[at + pattern.Length ..] ]

/// A safetensors file packed by hand: the 8-byte little-endian header length, a JSON header of
/// `entries` (name, dtype, shape as JSON, data offsets), then `data`.
let packed (entries: (string * string * string * int * int) list) (data: byte[]) =
    let json = entries |> List.map (fun (name, dtype, shape, a, b) -> sprintf "\"%s\":{\"dtype\":\"%s\",\"shape\":%s,\"data_offsets\":[%d,%d]}" name dtype shape a b) |> String.concat ","
    let header = System.Text.Encoding.UTF8.GetBytes("{" + json + "}")
    Array.concat [ System.BitConverter.GetBytes(uint64 header.Length); header; data ]

/// A pickle written opcode by hand (protocol 2, as torch.save writes it): for the files other PyTorch
/// versions and programs write, which the PyTorch that made the fixtures cannot.
type PickleBuilder() =
    let stream = new MemoryStream()
    member _.Bytes(b: byte list) = stream.Write(Array.ofList b, 0, b.Length)
    member this.Text(s: string) = let b = System.Text.Encoding.UTF8.GetBytes s in this.Bytes([ byte 'X' ] @ List.ofArray (System.BitConverter.GetBytes(uint32 b.Length)) @ List.ofArray b)
    member this.Global (m: string) (n: string) = this.Bytes([ byte 'c' ] @ List.ofArray (System.Text.Encoding.ASCII.GetBytes(m + "\n" + n + "\n")))
    member this.Int(v: int) = this.Bytes([ byte 'J' ] @ List.ofArray (System.BitConverter.GetBytes v))
    member this.Ints(vs: int list) = this.Bytes [ byte '(' ]; List.iter this.Int vs; this.Bytes [ byte 't' ]
    /// The arguments of torch._utils._rebuild_tensor_v2, as a tuple: (storage, offset, shape, stride, False, OrderedDict()).
    member this.TensorArguments (storageType: string) (key: string) (elements: int) (offset: int) (shape: int list) (stride: int list) =
        this.Bytes [ byte '('; byte '(' ]
        this.Text "storage"; this.Global "torch" storageType; this.Text key; this.Text "cpu"; this.Int elements
        this.Bytes [ byte 't'; byte 'Q' ]
        this.Int offset; this.Ints shape; this.Ints stride
        this.Bytes [ 0x89uy ]
        this.Global "collections" "OrderedDict"
        this.Bytes [ byte ')'; byte 'R'; byte 't' ]
    /// A tensor as torch.save pickles it: _rebuild_tensor_v2(…).
    member this.Tensor storageType key elements offset shape stride =
        this.Global "torch._utils" "_rebuild_tensor_v2"
        this.TensorArguments storageType key elements offset shape stride
        this.Bytes [ byte 'R' ]
    member _.ToArray() = stream.ToArray()

/// A .pth (torch.save's zip layout) of `pickle` and its storages' bytes by key.
let writePth (file: string) (pickle: byte[]) (storages: (string * byte[]) list) =
    use zip = System.IO.Compression.ZipFile.Open(file, System.IO.Compression.ZipArchiveMode.Create)
    let entry (name: string) (content: byte[]) =
        use s = zip.CreateEntry(name, System.IO.Compression.CompressionLevel.NoCompression).Open()
        s.Write(content, 0, content.Length)
    entry "archive/data.pkl" pickle
    entry "archive/byteorder" "little"B
    for key, bytes in storages do entry ("archive/data/" + key) bytes

let floats (values: float32 list) = Array.concat [ for v in values -> System.BitConverter.GetBytes v ]

let tests =
    testList "Weights I/O" [
        test "safetensors save → load is bit-identical and keeps the metadata" {
            use _ = torch.NewDisposeScope()
            let file = temporary "a.safetensors"
            let tensors = sample ()
            Safetensors.Write(file, tensors, readOnlyDict [ "config", "{\"x\": 1}" ])
            let struct (back, metadata) = Safetensors.Read(file)
            bitIdentical tensors back
            Expect.equal metadata.["config"] "{\"x\": 1}" "metadata"
            File.Delete file
        }

        test "a safetensors file is refused when a bit of its data flipped (the checksum), its tensors overlap or one has more than 64 dimensions" {
            use _ = torch.NewDisposeScope()
            let refusal (file: byte[]) = (Expect.throwsC (fun () -> Safetensors.Read(new MemoryStream(file)) |> ignore) id).Message
            use stream = new MemoryStream()
            Safetensors.Write(stream, NamedTensors([ "w", torch.ones(4L) ]))
            let flipped = stream.ToArray()
            flipped.[flipped.Length - 1] <- flipped.[flipped.Length - 1] ^^^ 1uy
            Expect.stringContains (refusal flipped) "checksum mismatch" "a bit flip in the data"
            Expect.stringContains (refusal (packed [ "a", "F32", "[2]", 0, 8; "b", "F32", "[1]", 4, 8 ] (Array.zeroCreate 8))) "'b' overlaps 'a'" "two tensors over the same bytes"
            let ones n = "[" + String.replicate (n - 1) "1," + "1]"
            Expect.stringContains (refusal (packed [ "d", "F32", ones 65, 0, 4 ] (Array.zeroCreate 4))) "has 65 dimensions" "65 dimensions"
            let struct (read, _) = Safetensors.Read(new MemoryStream(packed [ "d", "F32", ones 64, 0, 4 ] (Array.zeroCreate 4)))
            Expect.equal read.["d"].Dimensions 64L "64 read"
        }

        test "JSON from outside that names a key twice is refused as no JSON of ours, never read: a safetensors header, an export's model card" {
            use _ = torch.NewDisposeScope()
            Expect.throwsT<System.Text.Json.JsonException> (fun () -> CrOC.Data.StrictJson.Parse("""{ "a": { "b": 1, "b": 2 } }""") |> ignore) "nested too"
            let header = Expect.throwsC (fun () -> Safetensors.Read(new MemoryStream(packed [ "a", "F32", "[1]", 0, 4; "a", "F32", "[1]", 4, 8 ] (Array.zeroCreate 8))) |> ignore) id
            Expect.stringContains header.Message "Duplicate property 'a'" "a tensor named twice"
            let card = readOnlyDict [ "model_card", """{ "network": "teacher", "complete": false, "network": "student" }""" ]
            Expect.isNull (ModelCard.Network card) "no network read from it (an ArgumentException once)"
            Expect.isNull (ModelCard.Incomplete card) "nor an incompleteness"
        }

        test "JSON from outside whose string escapes a lone UTF-16 surrogate is refused as no JSON of ours (reading or writing it back threw InvalidOperationException: internal errors in train, export)" {
            for text in [ """{ "a": "\ud800" }"""; """{ "\udc00": 1 }"""; """[ { "b": ["x\ud800y"] } ]""" ] do
                let e = Expect.throwsC (fun () -> CrOC.Data.StrictJson.Parse text |> ignore) id
                Expect.isTrue (e :? System.Text.Json.JsonException) (sprintf "%s: %s" text e.Message)
                Expect.stringContains e.Message "lone UTF-16 surrogate" "says why"
                Expect.throwsT<System.Text.Json.JsonException> (fun () -> CrOC.Data.StrictJson.Document text |> ignore) "as a document too"
            let pair = present (CrOC.Data.StrictJson.Parse """{ "a": "\ud83d\ude00 \u00e9" }""")
            Expect.equal (string pair.["a"]) "\U0001F600 \u00e9" "a surrogate pair and other escapes read as text"
            Expect.isNull (ModelCard.Network(readOnlyDict [ "model_card", """{ "network": "\ud800" }""" ])) "a model card holding one: none read"
        }

        test "a training checkpoint holding a teacher alone imports it for both networks, and says so" {
            use _ = torch.NewDisposeScope()
            let path = temporary "teacher.safetensors"
            Safetensors.Write(path, NamedTensors([ "teacher.backbone.cls_token", torch.ones(1L, 1L, 4L) ]))
            let imported = CheckpointImport.Import path
            Expect.equal imported.Layout WeightsLayout.TrainingCheckpoint "a training checkpoint"
            Expect.sequenceEqual imported.Student.Keys [ "backbone.cls_token" ] "the teacher stands for the student"
            Expect.sequenceEqual (present imported.Teacher).Keys [ "backbone.cls_token" ] "and is the teacher"
            Expect.exists imported.Notes (fun n -> n.Contains "the teacher's weights stand for both") "said"
            File.Delete path
        }

        test "safetensors as the format defines it: a hand-packed file reads, and a written file's header, offsets and little-endian bytes are the format's" {
            use _ = torch.NewDisposeScope()
            // Three tensors, packed by hand: an 8-byte little-endian header length, a JSON header with
            // offsets relative to the data after it, the data. F32 [1, −2]; BF16 [[1, 0.5]] (0x3F80,
            // 0x3F00); I64 7 as a scalar.
            let data = [| 0uy; 0uy; 0x80uy; 0x3Fuy; 0uy; 0uy; 0uy; 0xC0uy; 0x80uy; 0x3Fuy; 0uy; 0x3Fuy; 7uy; 0uy; 0uy; 0uy; 0uy; 0uy; 0uy; 0uy |]
            let entries = [ "w", "F32", "[2]", 0, 8; "b", "BF16", "[1,2]", 8, 12; "n", "I64", "[]", 12, 20 ]
            let file = packed entries data
            let struct (read, _) = Safetensors.Read(new MemoryStream(file))
            Expect.equal read.["w"].dtype torch.float32 "F32"
            Expect.sequenceEqual (read.["w"].data<float32>().ToArray()) [| 1.0f; -2.0f |] "F32 values"
            Expect.equal read.["b"].dtype torch.bfloat16 "BF16"
            Expect.equal read.["b"].shape [| 1L; 2L |] "BF16 shape"
            Expect.sequenceEqual (valuesOf read.["b"]) [| 1.0; 0.5 |] "BF16 values"
            Expect.equal read.["n"].dtype torch.int64 "I64"
            Expect.equal read.["n"].shape [||] "a scalar"
            Expect.equal (read.["n"].item<int64>()) 7L "I64 value"
            // Written back: parsed here by the format's rules, not by the reader.
            use stream = new MemoryStream()
            Safetensors.Write(stream, read)
            let written = stream.ToArray()
            let length = int (System.BitConverter.ToUInt64(written, 0))
            Expect.equal ((8 + length) % 8) 0 "the header is padded so the data starts 8-byte aligned"
            let parsed = System.Text.Json.JsonDocument.Parse(System.Text.Encoding.UTF8.GetString(written, 8, length)).RootElement
            let dataStart = 8 + length
            for name, dtype, shape, a, b in entries do
                let entry = parsed.GetProperty(name)
                Expect.equal (entry.GetProperty("dtype").GetString()) dtype (name + ": dtype")
                Expect.equal (entry.GetProperty("shape").GetRawText()) shape (name + ": shape")
                let offsets = [| for o in entry.GetProperty("data_offsets").EnumerateArray() -> o.GetInt32() |]
                Expect.equal (offsets.[1] - offsets.[0]) (b - a) (name + ": byte count")
                Expect.sequenceEqual written.[dataStart + offsets.[0] .. dataStart + offsets.[1] - 1] data.[a .. b - 1] (name + ": its bytes, little-endian")
            Expect.equal (written.Length - dataStart) data.Length "nothing but the tensors after the header"
        }

        test ".pth save → load is bit-identical" {
            use _ = torch.NewDisposeScope()
            let file = temporary "a.pth"
            let tensors = sample ()
            PthWriter.Write(file, tensors)
            let read = pthTensors file
            bitIdentical tensors (NamedTensors([ for name in tensors.Keys -> name, read name ]))
            File.Delete file
        }

        test "the free-space checks know each export file's size: a .safetensors exactly, a .pth by a lower bound close to it" {
            use _ = torch.NewDisposeScope()
            let named = NamedTensors(Network.named (Network.init Fixtures.config (new torch.Generator(9UL, torch.CPU))))
            for content in [ Safetensors.Content(temporary "sized.safetensors", named); PthWriter.Content(temporary "sized.pth", named) ] do
                AtomicFile.WriteTogether([ content ])
                let actual = FileInfo(content.Path).Length
                let expected = content.ExpectedBytes.Value // the .pth's was unknown once: a full disk was found only while writing
                Expect.isLessThanOrEqual expected actual (sprintf "%s: a lower bound" content.Path)
                Expect.isGreaterThan (float expected) (0.9 * float actual) (sprintf "%s: close to the size (%d of %d bytes)" content.Path expected actual)
                File.Delete content.Path
        }

        test "backbone export → import is bit-identical, with DINO/timm names in the file" {
            use _ = torch.NewDisposeScope()
            let net = Network.init Fixtures.config (new torch.Generator(9UL, torch.CPU))
            let named = NamedTensors(Network.named net)
            for ext in [ "safetensors"; "pth" ] do
                let file = temporary ("backbone." + ext)
                BackboneExport.Write(file, named)
                let imported = CheckpointImport.Import(file)
                Expect.equal imported.Layout WeightsLayout.BackboneOnly "recognised as a plain backbone"
                bitIdentical (named.WithoutPrefix("backbone.").WithPrefix("backbone.")) imported.Student
                File.Delete file
        }

        test "an official CrOC full checkpoint imports: module. stripped, teacher, centres, inert args; student and teacher are state_dict() OrderedDicts with _metadata (pickled with BUILD)" {
            use _ = torch.NewDisposeScope()
            let imported = CheckpointImport.Import(Fixtures.path "croc_full_checkpoint.pth")
            let golden = Fixtures.golden ()
            Expect.equal imported.Layout WeightsLayout.FullCheckpoint "layout"
            Expect.isTrue (same imported.Student.["backbone.blocks.1.attn.qkv.weight"] golden.["backbone.blocks.1.attn.qkv.weight"]) "student weights"
            Expect.isLessThan (maxAbsDiff (present imported.Teacher).["head.mlp.0.bias"] (golden.["head.mlp.0.bias"] + 1.0f)) 1e-12 "teacher weights"
            Expect.equal (valuesOf (present imported.Centre) |> Array.distinct) [| 0.25 |] "centre"
            Expect.equal (present imported.CentreC).shape [| 1L; 24L |] "object centre"
            Expect.exists imported.Notes (fun n -> n.Contains "argparse.Namespace" && n.Contains "inert") "args read as inert data"
            Expect.exists imported.Notes (fun n -> n.Contains "'epoch' = 3") "epoch noted"
            let net = Network.init Fixtures.config (new torch.Generator(1UL, torch.CPU))
            let report = StateDictBinding.Bind(NamedTensors(Network.named net), imported.Student, true)
            Expect.equal report.Loaded (List.length (Network.named net)) "every tensor of the network loaded"
        }

        test "a DINO full checkpoint (dino_loss where CrOC has croc_loss) imports its centre" {
            use _ = torch.NewDisposeScope()
            let file = temporary "dino_full_checkpoint.pth"
            File.WriteAllBytes(file, repickled (File.ReadAllBytes(Fixtures.path "croc_full_checkpoint.pth")) (replaceOnce "croc_loss"B "dino_loss"B))
            let imported = CheckpointImport.Import file
            Expect.equal (valuesOf (present imported.Centre) |> Array.distinct) [| 0.25 |] "the centre"
            Expect.isTrue (isNull imported.CentreC) "no object centre"
            File.Delete file
        }

        test "a network saved from DistributedDataParallel (module.backbone.*, module.head.*) imports as a network, module. stripped" {
            use _ = torch.NewDisposeScope()
            let net = Network.init Fixtures.config (new torch.Generator(1UL, torch.CPU))
            let file = temporary "ddp-student.safetensors"
            Safetensors.Write(file, NamedTensors(Network.named net).WithPrefix("module."))
            let imported = CheckpointImport.Import(file)
            Expect.equal imported.Layout WeightsLayout.Network "a network"
            let report = StateDictBinding.Bind(NamedTensors(Network.named net), imported.Student, true)
            Expect.equal report.Loaded (List.length (Network.named net)) "every tensor of the network loaded"
            File.Delete file
        }

        test "a timm ViT file with a classifier head (head.weight, head.bias) is a plain backbone; the head is noted and left out" {
            use _ = torch.NewDisposeScope()
            let vit = Vit.init (Vit.VitConfig.Tiny(8, 32) |> fun c -> { c with Depth = 1 }) (new torch.Generator(3UL))
            let file = temporary "timm.safetensors"
            let tensors = NamedTensors(Seq.map id (Vit.named vit))
            tensors.Add("head.weight", torch.zeros(10L, 192L))
            tensors.Add("head.bias", torch.zeros(10L))
            Safetensors.Write(file, tensors)
            let imported = CheckpointImport.Import(file)
            Expect.equal imported.Layout WeightsLayout.BackboneOnly "a plain backbone, not a CrOC network"
            Expect.isFalse (imported.Student.Keys |> Seq.exists (fun k -> k.Contains "head.")) "without the classifier"
            Expect.equal imported.Student.Count (List.length (Vit.named vit)) "every backbone tensor"
            Expect.exists imported.Notes (fun n -> n.Contains "classifier head") "noted"
            File.Delete file
        }

        test "a plain DINO backbone file (torch.save(model.state_dict()): an OrderedDict with _metadata) loads into the backbone" {
            use _ = torch.NewDisposeScope()
            let imported = CheckpointImport.Import(Fixtures.path "dino_backbone.pth")
            Expect.equal imported.Layout WeightsLayout.BackboneOnly "layout"
            let net = Network.init Fixtures.config (new torch.Generator(1UL, torch.CPU))
            let backbone = Network.named net |> List.filter (fun (n, _) -> n.StartsWith "backbone.")
            let report = StateDictBinding.Bind(NamedTensors(backbone), imported.Student, true)
            Expect.isTrue report.Complete "strict load of the backbone"
        }

        test "a backbone one level down loads: {'model': …} and {'state_dict': …} (timm, DeiT, MAE, mmcv) and {'teacher': plain DINO names} (\"no tensors found\" and \"no 'cls_token' tensor\" once); a legacy-format file is named as one" {
            use _ = torch.NewDisposeScope()
            let plain = CheckpointImport.Import(Fixtures.path "dino_backbone.pth")
            for key in [ "model"; "state_dict"; "teacher" ] do
                // the plain file's dictionary under one key: PROTO, an empty dict, the key, the file's own pickle, SETITEM, STOP
                let file = temporary (key + "-nested.pth")
                let name = System.Text.Encoding.ASCII.GetBytes key
                File.WriteAllBytes(file, repickled (File.ReadAllBytes(Fixtures.path "dino_backbone.pth")) (fun pickle ->
                    Array.concat [ pickle.[.. 1]; "}X"B; System.BitConverter.GetBytes name.Length; name; pickle.[2 .. pickle.Length - 2]; "s."B ]))
                let imported = CheckpointImport.Import file
                bitIdentical plain.Student (if key = "teacher" then present imported.Teacher else imported.Student)
                if key <> "teacher" then Expect.contains imported.Notes $"the weights are the file's '{key}' dictionary" "said"
                Expect.equal (BackboneLoader.Load(file).Config.Dim) (BackboneLoader.Load(Fixtures.path "dino_backbone.pth").Config.Dim) "every command's loader takes it"
                File.Delete file
            let legacy = temporary "legacy.pth"
            // as torch.save(..., _use_new_zipfile_serialization=False) starts: PROTO 2, its magic number as LONG1
            File.WriteAllBytes(legacy, [| 0x80uy; 0x02uy; 0x8auy; 0x0auy; 0x6cuy; 0xfcuy; 0x9cuy; 0x46uy; 0xf9uy; 0x20uy; 0x6auy; 0xa8uy; 0x50uy; 0x19uy; byte '.' |])
            let e = Expect.throwsC (fun () -> CheckpointImport.Import legacy |> ignore) id
            Expect.stringContains e.Message "a PyTorch file in the legacy format" "named as what it is (\"not a PyTorch file\" once)"
            File.WriteAllBytes(legacy, [| 0x80uy; 0x02uy; byte '}'; byte '.' |]) // a plain pickle of a dict is no PyTorch file
            Expect.stringContains (Expect.throwsC (fun () -> CheckpointImport.Import legacy |> ignore) id).Message "not a PyTorch file" "not called a legacy one"
            File.Delete legacy
        }

        test "a safetensors file without tensor data (its header fills the file) named .pth is named as a safetensors file" {
            let file = scratchPath "header-only" ".pth"
            File.WriteAllBytes(file, Array.append (System.BitConverter.GetBytes 2UL) "{}"B)
            let e = Expect.throwsC (fun () -> PthReader.Read(file: string) |> ignore) id
            Expect.stringContains e.Message "a safetensors file (a header length, then JSON), not a PyTorch .pth" "named as what it is"
            File.Delete file
        }

        test "missing, unexpected and mis-shaped keys are listed; --non-strict loads the rest" {
            use _ = torch.NewDisposeScope()
            let target = NamedTensors([ "a", torch.zeros(2L); "b", torch.zeros(3L); "c", torch.zeros(2L) ])
            let source = NamedTensors([ "a", torch.ones(2L); "b", torch.ones(4L); "d", torch.ones(1L) ])
            let e = Expect.throwsC (fun () -> StateDictBinding.Bind(target, source, true) |> ignore) id
            Expect.stringContains e.Message "missing from the file: c" "missing"
            Expect.stringContains e.Message "not in the model: d" "unexpected"
            Expect.stringContains e.Message "b (model [3], file [4])" "mis-shaped"
            Expect.equal (toFloat (target.["a"].sum())) 0.0 "strict failure copies nothing"
            let report = StateDictBinding.Bind(target, source, false)
            Expect.equal report.Loaded 1 "only a fits"
            Expect.equal (toFloat (target.["a"].sum())) 2.0 "a loaded"
        }

        test "a .pth whose pickle or zip directory claims more bytes than it holds, or whose byteorder entry is huge, is refused without allocating them" {
            use _ = torch.NewDisposeScope()
            let pth = temporary "claims.pth"
            PthWriter.Write(pth, NamedTensors([ "w", torch.zeros(1L) ]))
            let good = File.ReadAllBytes pth
            let latin1 (s: string) = System.Text.Encoding.Latin1.GetBytes s
            let storage400MB = claimSize (repickled good (replaceOnce (latin1 "cpuJ\001\000\000\000") (Array.append (latin1 "cpuJ") (System.BitConverter.GetBytes 100_000_000)))) "data/0" 400_000_000u
            let cases =
                [ "a string's length of 1 GB (BINUNICODE)", repickled good (replaceOnce (latin1 "X\003\000\000\000cpu") (latin1 "X\000\000\000\064cpu"))
                  "a storage of 400 MB in the pickle and the zip directory",
                  storage400MB
                  "a storage of 400 MB in the pickle and the zip directory, compressed to 2 MB, it claims",
                  claimCompressed storage400MB "data/0" 2_000_000u
                  "a data.pkl of 200 MB in the zip directory", claimSize good "data.pkl" 200_000_000u
                  "a byteorder entry of 64 MB (deflated to 64 KB)", rezipped good (fun name bytes -> if name.EndsWith "byteorder" then Array.create (64 <<< 20) 32uy else bytes) ]
            for what, bytes in cases do
                File.WriteAllBytes(pth, bytes)
                let before = System.GC.GetAllocatedBytesForCurrentThread()
                throwsWeights (fun () -> CheckpointImport.Import(pth) |> ignore) what
                let allocated = System.GC.GetAllocatedBytesForCurrentThread() - before
                Expect.isLessThan allocated (16L <<< 20) (sprintf "%s: bytes allocated" what)
            File.Delete pth
        }
        test "a safetensors header listing more than 100,000 tensors is refused before any is made (400,000 empty ones took 1 GB once)" {
            let path = temporary "many.safetensors"
            let entries = String.concat "," [ for i in 0 .. Safetensors.MaxTensors -> sprintf "\"t%d\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[0,0]}" i ]
            let header = System.Text.Encoding.UTF8.GetBytes("{" + entries + "}")
            File.WriteAllBytes(path, Array.append (System.BitConverter.GetBytes(uint64 header.Length)) header)
            let e = Expect.throwsC (fun () -> Safetensors.Read(path) |> ignore) id
            Expect.isTrue (e :? WeightsException && e.Message.Contains "lists 100,001 tensors, more than 100,000") e.Message
            File.Delete path
        }
        test "every dtype of the formats round-trips and is named as safetensors and PyTorch name it (CharStorage is int8, ByteStorage uint8)" {
            use _ = torch.NewDisposeScope()
            // (dtype, safetensors name, PyTorch storage class, bytes per element): the formats' own tables.
            let table =
                [ torch.float64, "F64", "DoubleStorage", 8; torch.float32, "F32", "FloatStorage", 4
                  torch.float16, "F16", "HalfStorage", 2; torch.bfloat16, "BF16", "BFloat16Storage", 2
                  torch.int64, "I64", "LongStorage", 8; torch.int32, "I32", "IntStorage", 4
                  torch.int16, "I16", "ShortStorage", 2; torch.int8, "I8", "CharStorage", 1
                  torch.uint8, "U8", "ByteStorage", 1; torch.ScalarType.Bool, "BOOL", "BoolStorage", 1 ]
            for dtype, safetensorsName, storage, size in table do
                let tensors = NamedTensors([ "t", torch.tensor([| 0L; 1L; 0L; 3L; 2L; 1L |]).reshape(2L, 3L).to_type(dtype) ])
                use stream = new MemoryStream()
                Safetensors.Write(stream, tensors)
                let written = stream.ToArray()
                let length = int (System.BitConverter.ToUInt64(written, 0))
                let entry = System.Text.Json.JsonDocument.Parse(System.Text.Encoding.UTF8.GetString(written, 8, length)).RootElement.GetProperty("t")
                Expect.equal (entry.GetProperty("dtype").GetString()) safetensorsName $"{dtype}: its safetensors name"
                let offsets = [| for o in entry.GetProperty("data_offsets").EnumerateArray() -> o.GetInt32() |]
                Expect.equal (offsets.[1] - offsets.[0]) (6 * size) $"{dtype}: {size} bytes per element"
                let struct (back, _) = Safetensors.Read(new MemoryStream(written))
                bitIdentical tensors back
                let file = temporary "dtype.pth"
                PthWriter.Write(file, tensors)
                let pickle, storageBytes =
                    use zip = System.IO.Compression.ZipFile.OpenRead file
                    use content = (nonNull (zip.GetEntry "archive/data.pkl")).Open()
                    use buffer = new MemoryStream()
                    content.CopyTo buffer
                    System.Text.Encoding.ASCII.GetString(buffer.ToArray()), (nonNull (zip.GetEntry "archive/data/0")).Length
                Expect.stringContains pickle $"ctorch\n{storage}\n" $"{dtype}: the storage class torch.load expects"
                Expect.equal storageBytes (int64 (6 * size)) $"{dtype}: the storage's bytes"
                bitIdentical tensors (NamedTensors([ "t", pthTensors file "t" ]))
                File.Delete file
        }

        test "a .pth whose tensors are views of one storage (torch.save of x and x[3:] and a transpose) reads each view at its offset and strides" {
            use _ = torch.NewDisposeScope()
            // The structure of torch.save's pickle (without its memo opcodes) for {'a': x, 'b': x[3:], 'c': x.view(2, 3).t()} with x = arange(6.):
            // one FloatStorage '0' of 6 elements; b at offset 3, c with strides (1, 3).
            let pickle = PickleBuilder()
            pickle.Bytes [ 0x80uy; 2uy; byte '}'; byte '(' ]
            for name, offset, shape, stride in [ "a", 0, [ 6 ], [ 1 ]; "b", 3, [ 3 ], [ 1 ]; "c", 0, [ 3; 2 ], [ 1; 3 ] ] do
                pickle.Text name
                pickle.Tensor "FloatStorage" "0" 6 offset shape stride
            pickle.Bytes [ byte 'u'; byte '.' ]
            let file = temporary "views.pth"
            writePth file (pickle.ToArray()) [ "0", floats [ 0.0f .. 5.0f ] ]
            let read = pthTensors file
            let values name = valuesOf (read name)
            Expect.sequenceEqual (values "a") [| 0.; 1.; 2.; 3.; 4.; 5. |] "a: the whole storage"
            Expect.sequenceEqual (values "b") [| 3.; 4.; 5. |] "b: from offset 3"
            Expect.equal (read "c").shape [| 3L; 2L |] "c: the transpose's shape"
            Expect.sequenceEqual (values "c") [| 0.; 3.; 1.; 4.; 2.; 5. |] "c: x.view(2, 3).t() row by row"
            File.Delete file
        }

        test "a checkpoint with numpy scalars, a path, a device, a defaultdict, bytes, a complex optimiser state and PyTorch 2's parameter records loads (each refused the whole file once); other calls stay inert data" {
            use _ = torch.NewDisposeScope()
            // {'teacher': {'w': _rebuild_parameter_with_state(tensor, True, OrderedDict(), {}),
            //              'v': _rebuild_from_type_v2(_rebuild_tensor_v2, Parameter, (tensor args), {})},
            //  'best_acc': numpy.float64(0.5) as numpy pickles it, 'path': PosixPath('/data'), 'device': torch.device('cpu'),
            //  'counts': defaultdict(list, {'k': 1}), 'blob': b'\x00\x01', 'optimizer': {'m': a ComplexFloatStorage tensor}}
            let pickle = PickleBuilder()
            let call (args: unit -> unit) = pickle.Bytes [ byte '(' ]; args (); pickle.Bytes [ byte 't'; byte 'R' ]
            pickle.Bytes [ 0x80uy; 2uy; byte '}'; byte '(' ]
            pickle.Text "teacher"
            pickle.Bytes [ byte '}'; byte '(' ]
            pickle.Text "w"
            pickle.Global "torch._utils" "_rebuild_parameter_with_state"
            call (fun () ->
                pickle.Tensor "FloatStorage" "0" 3 0 [ 3 ] [ 1 ]
                pickle.Bytes [ 0x88uy ]; pickle.Global "collections" "OrderedDict"; pickle.Bytes [ byte ')'; byte 'R'; byte '}' ])
            pickle.Text "v"
            pickle.Global "torch._tensor" "_rebuild_from_type_v2"
            call (fun () ->
                pickle.Global "torch._utils" "_rebuild_tensor_v2"; pickle.Global "torch.nn.parameter" "Parameter"
                pickle.TensorArguments "FloatStorage" "0" 3 1 [ 2 ] [ 1 ]
                pickle.Bytes [ byte '}' ])
            pickle.Bytes [ byte 'u' ]
            pickle.Text "best_acc"
            pickle.Global "numpy.core.multiarray" "scalar"
            call (fun () ->
                pickle.Global "numpy" "dtype"
                call (fun () -> pickle.Text "f8"; pickle.Bytes [ 0x89uy; 0x88uy ])
                pickle.Bytes [ byte '('; byte 'K'; 3uy ]; pickle.Text "<"; pickle.Bytes [ byte 'N'; byte 'N'; byte 'N' ]; pickle.Int -1; pickle.Int -1; pickle.Int 0; pickle.Bytes [ byte 't'; byte 'b' ]
                pickle.Bytes ([ byte 'C'; 8uy ] @ List.ofArray (System.BitConverter.GetBytes 0.5)))
            pickle.Text "path"
            pickle.Global "pathlib" "PosixPath"
            call (fun () -> pickle.Text "/data")
            pickle.Text "device"
            pickle.Global "torch" "device"
            call (fun () -> pickle.Text "cpu")
            pickle.Text "counts"
            pickle.Global "collections" "defaultdict"
            call (fun () -> pickle.Global "builtins" "list")
            pickle.Text "k"; pickle.Int 1; pickle.Bytes [ byte 's' ]
            pickle.Text "blob"
            pickle.Bytes [ byte 'C'; 2uy; 0uy; 1uy ]
            pickle.Text "saved" // datetime(2024, 1, 1, tzinfo=timezone(timedelta(0))): "expected 1 or 7 args, got 2" refused the file once
            pickle.Global "datetime" "datetime"
            call (fun () ->
                pickle.Bytes [ byte 'C'; 10uy; 0x07uy; 0xE8uy; 1uy; 1uy; 0uy; 0uy; 0uy; 0uy; 0uy; 0uy ]
                pickle.Global "datetime" "timezone"
                call (fun () -> pickle.Global "datetime" "timedelta"; call (fun () -> pickle.Int 0; pickle.Int 0; pickle.Int 0)))
            pickle.Text "optimizer"
            pickle.Bytes [ byte '}' ]; pickle.Text "m"; pickle.Tensor "ComplexFloatStorage" "1" 2 0 [ 2 ] [ 1 ]; pickle.Bytes [ byte 's' ]
            pickle.Bytes [ byte 'u'; byte '.' ]
            let file = temporary "pytorch2-checkpoint.pth"
            writePth file (pickle.ToArray()) [ "0", floats [ 1.0f; 2.0f; 3.0f ]; "1", Array.zeroCreate 16 ]
            // The readings that met an unknown call built tensors too: freed, the caller's scope holds the result's alone (each reading's stayed once).
            let held =
                use scope = torch.NewDisposeScope()
                PthReader.Read file |> ignore
                scope.DisposablesCount
            Expect.equal held 2 "the two tensors of the result"
            let imported = CheckpointImport.Import file
            let teacher = present imported.Teacher
            Expect.sequenceEqual (valuesOf teacher.["w"]) [| 1.; 2.; 3. |] "a Parameter with Python attributes: its data"
            Expect.sequenceEqual (valuesOf teacher.["v"]) [| 2.; 3. |] "a tensor rebuilt from a type: its data, at its offset"
            for note in [ "'best_acc': an object of numpy.core.multiarray.scalar (read as inert data; nothing was run), ignored"
                          "'path': an object of pathlib.PosixPath"; "'device': an object of torch.device"; "'counts': ignored"; "'blob' = 2 bytes"; "'saved' = 2024-01-01 00:00:00"; "'optimizer': ignored" ] do
                Expect.exists imported.Notes (fun n -> n.Contains note) note
            let entry (key: string) (table: obj | null) = (present table :?> System.Collections.Hashtable).[key]
            Expect.stringContains (present (PthReader.Read file |> entry "optimizer" |> entry "m") :?> InertObject).ClassName "ComplexFloatStorage (a dtype this reader does not read)" "an unread dtype's tensor is inert data"
            // The names made inert are this file's alone: a later file's bare reference to one (no call) reads as before, as an inert class.
            let bare = PickleBuilder()
            bare.Bytes [ 0x80uy; 2uy; byte '}' ]; bare.Text "kind"; bare.Global "numpy" "dtype"; bare.Bytes [ byte 's'; byte '.' ]
            let later = temporary "bare-reference.pth"
            writePth later (bare.ToArray()) []
            Expect.isTrue ((PthReader.Read later |> entry "kind") :? InertObject) "not the constructor the first file registered"
            File.Delete later
            File.Delete file
        }

        test "a network with a tensor this reader does not read (a complex or float8 dtype, a tensor subclass) is refused naming it; a deque (a loss history) is a list" {
            use _ = torch.NewDisposeScope()
            let file = temporary "unread.pth"
            for what, stored, tensor in
                [ "ComplexFloatStorage", 16, fun (p: PickleBuilder) -> p.Tensor "ComplexFloatStorage" "0" 2 0 [ 2 ] [ 1 ]
                  "quantised.Scaled (a tensor subclass", 8, fun (p: PickleBuilder) ->
                      p.Global "torch._tensor" "_rebuild_from_type_v2"
                      p.Bytes [ byte '(' ]; p.Global "torch._utils" "_rebuild_tensor_v2"; p.Global "quantised" "Scaled"
                      p.TensorArguments "FloatStorage" "0" 2 0 [ 2 ] [ 1 ]; p.Bytes [ byte '}'; byte 't'; byte 'R' ] ] do
                let pickle = PickleBuilder()
                pickle.Bytes [ 0x80uy; 2uy; byte '}'; byte '(' ]
                pickle.Text "teacher"; pickle.Bytes [ byte '}' ]; pickle.Text "blocks.0.w"; tensor pickle; pickle.Bytes [ byte 's' ]
                pickle.Text "losses"; pickle.Global "collections" "deque"; pickle.Bytes [ byte ')'; byte 'R'; byte '(' ]; pickle.Int 1; pickle.Int 2; pickle.Bytes [ byte 'e' ]
                pickle.Bytes [ byte 'u'; byte '.' ]
                writePth file (pickle.ToArray()) [ "0", Array.zeroCreate stored ]
                Expect.equal ((present (PthReader.Read file) :?> System.Collections.Hashtable).["losses"] |> present :?> System.Collections.ArrayList).Count 2 "a deque's items"
                let e = Expect.throwsC (fun () -> CheckpointImport.Import file |> ignore) id
                Expect.stringContains e.Message $"'teacher.blocks.0.w' is a tensor this reader does not read (" what
                Expect.stringContains e.Message what "named"
                File.Delete file
        }

        test "a pickle calling more unknown functions than the bound is refused (each is one more reading of the pickle); a nested class's qualified name is inert data too; a TorchScript archive is named" {
            use _ = torch.NewDisposeScope()
            let file = temporary "calls.pth"
            let refusal (pickle: PickleBuilder) =
                writePth file (pickle.ToArray()) []
                (Expect.throwsC (fun () -> PthReader.Read file |> ignore) id).Message
            let many = PickleBuilder()
            many.Bytes [ 0x80uy; 2uy; byte ']'; byte '(' ]
            for i in 1 .. 33 do
                many.Global (sprintf "module%d" i) "f" // f('x'): a call with arguments (one without makes Razorvine's ClassDict)
                many.Text "x"
                many.Bytes [ 0x85uy; byte 'R' ]
            many.Bytes [ byte 'e'; byte '.' ]
            Expect.stringContains (refusal many) "calls more than 32 functions or classes" "bounded: each is one more reading of the pickle"
            let qualified = PickleBuilder() // protocol 4's STACK_GLOBAL of the nested class 'Outer.Inner'
            qualified.Bytes [ 0x80uy; 4uy ]; qualified.Text "module"; qualified.Text "Outer.Inner"; qualified.Bytes [ 0x93uy ]; qualified.Text "x"; qualified.Bytes [ 0x85uy; byte 'R'; byte '.' ]
            File.Delete file
            writePth file (qualified.ToArray()) []
            Expect.equal (present (PthReader.Read file) :?> InertObject).ClassName "module.Outer.Inner" "read as inert data"
            File.Delete file
            // a list subclass of a library's, called, then filled by APPENDS: an inert call is a dictionary ("Unable to cast object of type 'CrOC.Host.Weights.InertCall'" once)
            let listSubclass = PickleBuilder()
            listSubclass.Bytes [ 0x80uy; 2uy ]; listSubclass.Global "mylib" "History"; listSubclass.Text "x"; listSubclass.Bytes [ 0x85uy; byte 'R'; byte '(' ]
            listSubclass.Int 1; listSubclass.Bytes [ byte 'e'; byte '.' ]
            let message = refusal listSubclass
            Expect.stringContains message "adds items to an object of a class this reader does not know" "said in words"
            Expect.isFalse (message.Contains "CrOC.Host") "no .NET type name"
            File.Delete file
            // torch.jit.save's archive: data.pkl beside constants.pkl and code/ ("the pickle holds no dictionary" once)
            let scripted = PickleBuilder()
            scripted.Bytes [ 0x80uy; 2uy; byte '}'; byte '.' ]
            writePth file (scripted.ToArray()) []
            do
                use zip = System.IO.Compression.ZipFile.Open(file, System.IO.Compression.ZipArchiveMode.Update)
                zip.CreateEntry("archive/constants.pkl").Open().Dispose()
            Expect.stringContains (Expect.throwsC (fun () -> PthReader.Read file |> ignore) id).Message "a TorchScript archive (torch.jit.save)" "named"
            File.Delete file
        }

        test "a checkpoint's other entries are noted in Python's words (True, False, None); a called name the reader cannot key (a ')' in it) is refused as such, not read again and again" {
            use _ = torch.NewDisposeScope()
            // {'teacher': {'w': tensor}, 'amp': True, 'resumed': False, 'scheduler': None}
            let pickle = PickleBuilder()
            pickle.Bytes [ 0x80uy; 2uy; byte '}'; byte '(' ]
            pickle.Text "teacher"; pickle.Bytes [ byte '}' ]; pickle.Text "w"; pickle.Tensor "FloatStorage" "0" 3 0 [ 3 ] [ 1 ]; pickle.Bytes [ byte 's' ]
            pickle.Text "amp"; pickle.Bytes [ 0x88uy ]
            pickle.Text "resumed"; pickle.Bytes [ 0x89uy ]
            pickle.Text "scheduler"; pickle.Bytes [ byte 'N' ]
            pickle.Bytes [ byte 'u'; byte '.' ]
            let file = temporary "python-words.pth"
            writePth file (pickle.ToArray()) [ "0", floats [ 1.0f; 2.0f; 3.0f ] ]
            let notes = (CheckpointImport.Import file).Notes
            for note in [ "'amp' = True"; "'resumed' = False"; "'scheduler' = None" ] do
                Expect.exists notes (fun n -> n.Contains note) (sprintf "%s in %A" note (List.ofSeq notes))
            File.Delete file
            let unkeyable = PickleBuilder() // protocol 4's STACK_GLOBAL of 'lib' 'f)g', called
            unkeyable.Bytes [ 0x80uy; 4uy ]; unkeyable.Text "lib"; unkeyable.Text "f)g"; unkeyable.Bytes [ 0x93uy ]; unkeyable.Text "x"; unkeyable.Bytes [ 0x85uy; byte 'R'; byte '.' ]
            writePth file (unkeyable.ToArray()) []
            let message = (Expect.throwsC (fun () -> PthReader.Read file |> ignore) id).Message
            Expect.stringContains message "which this reader cannot keep as inert data (refused; nothing was run)" "refused at once as a name it cannot keep"
            File.Delete file
        }

        test "torch.compile's _orig_mod. prefix is stripped, also inside DistributedDataParallel's module.; a name with and without it is refused" {
            use _ = torch.NewDisposeScope()
            let net = Network.init Fixtures.config (new torch.Generator(1UL, torch.CPU))
            let file = temporary "compiled.safetensors"
            for prefix in [ "_orig_mod."; "module._orig_mod."; "_orig_mod.module." ] do
                Safetensors.Write(file, NamedTensors(Network.named net).WithPrefix(prefix))
                let imported = CheckpointImport.Import(file)
                Expect.equal imported.Layout WeightsLayout.Network prefix
                let report = StateDictBinding.Bind(NamedTensors(Network.named net), imported.Student, true)
                Expect.equal report.Loaded (List.length (Network.named net)) $"{prefix}: every tensor of the network loaded"
            let vit = NamedTensors(Seq.map id (Vit.named (Vit.init (Vit.VitConfig.Tiny(8, 32) |> fun c -> { c with Depth = 1 }) (new torch.Generator(0UL)))))
            Safetensors.Write(file, NamedTensors(Seq.append (vit |> Seq.map (fun kv -> kv.Key, kv.Value)) [ "_orig_mod.cls_token", vit.["cls_token"] ]))
            Expect.stringContains (Expect.throwsC (fun () -> CheckpointImport.Import file |> ignore) id).Message "'_orig_mod.cls_token' and 'cls_token' are both in the file" "named"
            File.Delete file
        }

        test "a transposed tensor (as many values, another shape) is mis-shaped: refused, never reshaped into the model" {
            use _ = torch.NewDisposeScope()
            let target = NamedTensors([ "w", torch.zeros(2L, 3L) ])
            let source = NamedTensors([ "w", torch.arange(6.0f).reshape(3L, 2L) ])
            let e = Expect.throwsC (fun () -> StateDictBinding.Bind(target, source, true) |> ignore) id
            Expect.stringContains e.Message "w (model [2, 3], file [3, 2])" "named with both shapes"
            let report = StateDictBinding.Bind(target, source, false)
            Expect.equal report.Loaded 0 "nothing fits"
            Expect.sequenceEqual report.Misshaped [ "w (model [2, 3], file [3, 2])" ] "listed as mis-shaped"
            Expect.equal (toFloat (target.["w"].abs().sum())) 0.0 "the model's tensor is untouched"
        }

        test "corrupt, truncated and foreign files give clear errors" {
            use _ = torch.NewDisposeScope()
            let good = temporary "good.safetensors"
            Safetensors.Write(good, sample ())
            let bytes = File.ReadAllBytes good
            let truncated = temporary "truncated.safetensors"
            File.WriteAllBytes(truncated, bytes.[.. bytes.Length - 9])
            throwsWeights (fun () -> Safetensors.Read(truncated) |> ignore) "truncated data"
            let badHeader = temporary "header.safetensors"
            File.WriteAllBytes(badHeader, Array.append (System.BitConverter.GetBytes(1UL <<< 40)) bytes.[8..])
            throwsWeights (fun () -> Safetensors.Read(badHeader) |> ignore) "absurd header length"
            let text = temporary "text.pth"
            File.WriteAllText(text, "this is not a checkpoint")
            throwsWeights (fun () -> CheckpointImport.Import(text) |> ignore) "text renamed .pth"
            let pth = temporary "cut.pth"
            PthWriter.Write(pth, sample ())
            let pthBytes = File.ReadAllBytes pth
            File.WriteAllBytes(pth, pthBytes.[.. pthBytes.Length / 2])
            throwsWeights (fun () -> CheckpointImport.Import(pth) |> ignore) "truncated .pth"
            throwsWeights (fun () -> CheckpointImport.Import(temporary "absent.pth") |> ignore) "missing file"
            for f in [ good; truncated; badHeader; text; pth ] do File.Delete f
        }
    ]
