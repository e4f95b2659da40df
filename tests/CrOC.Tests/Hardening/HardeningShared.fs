/// What the hardening tests share: croc-host in its own process (plain, under a shell's limits and
/// redirections), the tiny training configuration, a tiny backbone and VOC set, and small readers.
module CrOC.Tests.HardeningShared

open System
open System.Diagnostics
open System.IO
open Expecto
open TorchSharp
open CrOC.Math
open CrOC.Host.Training
open CrOC.Host.Weights
open CrOC.Tests.TestUtil

/// croc-host.dll, built beside the tests.
let hostDll = Path.Combine(AppContext.BaseDirectory, "croc-host.dll")

/// `dotnet croc-host.dll args` in its own process (a native crash would show as exit 134):
/// exit code, stdout, stderr; killed after `seconds`.
let croc (seconds: int) (args: string list) = dotnetProcess hostDll seconds args

/// `croc-host args` from bash after the shell command `before` (e.g. `ulimit -f 64`), with the
/// redirections `redirect` (e.g. `>/dev/full`) and the environment variables `env` added: exit code,
/// stderr; killed (and failed) after 300 s. W^X off: .NET's own executable-memory file must not meet
/// a small file-size limit.
let crocInShell (before: string) (redirect: string) (env: (string * string) list) (args: string list) =
    let info = ProcessStartInfo("bash", RedirectStandardOutput = true, RedirectStandardError = true)
    for a in [ "-c"; sprintf "%s; exec dotnet \"$@\" %s" before redirect; "croc"; hostDll ] @ args do info.ArgumentList.Add a
    info.Environment.["DOTNET_EnableWriteXorExecute"] <- "0"
    for name, value in env do info.Environment.[name] <- value
    use p = present (Process.Start info)
    let out, err = p.StandardOutput.ReadToEndAsync(), p.StandardError.ReadToEndAsync()
    if not (p.WaitForExit 300_000) then
        p.Kill true
        failtestf "croc-host %s (%s %s) did not end within 300 s" (List.head args) before redirect
    p.WaitForExit()
    out.Result |> ignore
    p.ExitCode, err.Result

/// `croc-host args` under `ulimit -f limitKb` (see crocInShell).
let crocWithFileLimit (limitKb: int64) (env: (string * string) list) (args: string list) =
    crocInShell (sprintf "ulimit -f %d" limitKb) "" env args

/// `croc-host train` arguments of the tests' tiny configuration plus `extra`.
let trainArgs (output: string) (extra: string list) =
    "train" :: TrainingTests.tinyArgs output extra

let lines (output: string) (file: string) =
    let path = Path.Combine(output, file)
    if File.Exists path then File.ReadAllLines path else [||]

/// A random one-block ViT-Ti/8 (32 px) backbone's tensors, named backbone.*.
let tinyBackbone () =
    NamedTensors(Seq.map id <| Vit.named (Vit.init (Vit.VitConfig.Tiny(8, 32) |> fun c -> { c with Depth = 1 }) (new torch.Generator(0UL)))).WithPrefix("backbone.")

/// A random one-block ViT-Ti/8 (32 px) backbone as an export's .safetensors at `path`.
let writeTinyBackbone (path: string) = BackboneExport.Write(path, tinyBackbone ())

/// A black 32 × 32 PNG at `path` (its folders made).
let writeBlankPng (path: string) =
    Directory.CreateDirectory(nonNull (Path.GetDirectoryName path)) |> ignore
    use picture = new SixLabors.ImageSharp.Image<SixLabors.ImageSharp.PixelFormats.Rgb24>(32, 32)
    SixLabors.ImageSharp.ImageExtensions.SaveAsPng(picture, path)

/// A temporary folder holding a synthetic VOC root `voc` (train / val images, seed) and a tiny backbone `w.safetensors`.
let vocWithBackbone (name: string) (train: int) (validation: int) (seed: int64) =
    let dir = DataTests.tempDir name
    let voc = Path.Combine(dir, "voc")
    CrOC.Data.SyntheticScenes.WriteVoc(voc, train, validation, seed)
    let weights = Path.Combine(dir, "w.safetensors")
    writeTinyBackbone weights
    dir, voc, weights

/// The exception of type 'e that `f` throws (fails when it throws nothing or something else).
let thrown<'e when 'e :> exn> (f: unit -> unit) (what: string) : 'e =
    let outcome = try f (); None with :? 'e as e -> Some e
    match outcome with
    | Some e -> e
    | None -> failtestf "%s: nothing was thrown" what

let checkpointNames (output: string) = [ for c in Checkpoints.List output -> Path.GetFileName c ]

/// A path below `root` of exactly `bytes` bytes (ASCII folder names of 200 bytes, the last one shorter),
/// whatever the length of `root` (the temporary directory's varies).
let pathOfBytes (root: string) (bytes: int) =
    let rec deeper (path: string) =
        let remaining = bytes - Text.Encoding.UTF8.GetByteCount path
        if remaining <= CrOC.Host.CommandLine.PathLimits.NameBytes + 1 then Path.Combine(path, String('d', remaining - 1)) else deeper (Path.Combine(path, String('d', 200)))
    deeper root
