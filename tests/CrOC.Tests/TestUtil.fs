/// Helpers for the tests: conversions between F# arrays and tensors, seeded random data.
module CrOC.Tests.TestUtil

open System
open TorchSharp

type Tensor = torch.Tensor

let f64 = torch.ScalarType.Float64
let f32 = torch.ScalarType.Float32

/// A float64 tensor of the given shape from a flat array.
let tensorOf (shape: int64[]) (values: float[]) : Tensor = torch.tensor(values, dtype = f64).reshape(shape)

/// The values of a tensor as a flat float64 array (row-major).
let valuesOf (t: Tensor) : float[] = t.detach().to_type(f64).contiguous().data<float>().ToArray()

/// The gradient of a leaf after backward (fails when there is none).
let gradOf (t: Tensor) : Tensor =
    match t.grad with
    | null -> failwith "no gradient was accumulated"
    | g -> g

/// This suite's own new folder in the temporary directory (`croc-tests-<random>`, mode 0700): the tests'
/// files and folders live below it, and the suite removes it at its end unless a test failed.
let scratchRoot = lazy (IO.Directory.CreateTempSubdirectory("croc-tests-").FullName)

/// A fresh path below scratchRoot, `prefix-<guid>suffix`; nothing is made there.
let scratchPath (prefix: string) (suffix: string) =
    IO.Path.Combine(scratchRoot.Value, sprintf "%s-%s%s" prefix (Guid.NewGuid().ToString("N")) suffix)

/// The value of a C# nullable reference (fails when null).
let present (x: 'a | null) : 'a = match x with null -> failwith "absent" | v -> v

/// Makes a FIFO (a named pipe) at `path`, as mkfifo(1).
let makeFifo (path: string) =
    use maker = present (Diagnostics.Process.Start("mkfifo", [| path |]))
    maker.WaitForExit()

/// The native tensors alive, once earlier work's garbage is finalised: a count taken before and after
/// some work moves only by what that work keeps (a finaliser running meanwhile would lower it).
let liveTensors () =
    GC.Collect()
    GC.WaitForPendingFinalizers()
    torch.Tensor.TotalCount

/// The tensors of a .pth file holding a dictionary, by name (fails on another object or a name
/// that is not a tensor).
let pthTensors (path: string) : string -> Tensor =
    match CrOC.Host.Weights.PthReader.Read path with
    | :? Collections.Hashtable as table -> fun name -> match table.[name] with :? Tensor as t -> t | other -> failwithf "%s: %A" name other
    | other -> failwithf "read %A" other

/// The largest of some errors (absolute or relative); fails on a NaN or an infinity, which
/// Array.max and max would pass over unless it came first.
let worstError (errors: float[]) : float =
    match Array.tryFindIndex (fun (e: float) -> not (Double.IsFinite e)) errors with
    | Some i -> failwithf "error %d of %d is %g" i errors.Length errors.[i]
    | None -> Array.fold max 0.0 errors

/// max |x − y| over two tensors of the same shape (fails where either holds a NaN or an infinity).
let maxAbsDiff (x: Tensor) (y: Tensor) : float =
    if x.shape <> y.shape then failwithf "shapes differ: %A vs %A" x.shape y.shape
    Array.map2 (fun a b -> abs (a - b)) (valuesOf x) (valuesOf y) |> worstError

/// Uniform values in [lo, hi).
let uniform (rng: Random) (lo: float) (hi: float) (count: int) = Array.init count (fun _ -> lo + (hi - lo) * rng.NextDouble())

/// Standard normal values (Box–Muller).
let normal (rng: Random) (count: int) =
    Array.init count (fun _ -> sqrt (-2.0 * log (1.0 - rng.NextDouble())) * cos (2.0 * Math.PI * rng.NextDouble()))

/// A random probability vector; `spread` > 0 makes it non-uniform (log-normal weights), and
/// entries may be as small as exp(−4·spread) relative to the others.
let probabilities (rng: Random) (spread: float) (count: int) =
    let w = normal rng count |> Array.map (fun z -> exp (spread * z))
    let total = Array.sum w
    w |> Array.map (fun x -> x / total)

/// Row r of a flat row-major (rows × cols) array.
let row (cols: int) (flat: float[]) (r: int) = Array.sub flat (r * cols) cols

/// The rows of a (R, L) tensor as float64 arrays.
let rowsOf (t: Tensor) : float[][] = valuesOf t |> Array.chunkBySize (int t.shape.[1])

/// A rank-3 tensor as nested float64 arrays, [i].[j].[k].
let cube (t: Tensor) : float[][][] =
    let a, b, c = int t.shape.[0], int t.shape.[1], int t.shape.[2]
    let v = valuesOf t
    Array.init a (fun i -> Array.init b (fun j -> Array.sub v ((i * b + j) * c) c))

/// `f ()` with what it writes to the console's stdout (`withStdout`) or stderr (`withStderr`) caught:
/// its result and that text. The suite runs one test at a time, so nothing else writes there meanwhile.
let private withConsole (get: unit -> IO.TextWriter) (set: IO.TextWriter -> unit) (f: unit -> 'a) =
    use caught = new IO.StringWriter()
    let previous = get ()
    set caught
    let result = try f () finally set previous
    result, caught.ToString()
let withStdout f = withConsole (fun () -> Console.Out) Console.SetOut f
let withStderr f = withConsole (fun () -> Console.Error) Console.SetError f

/// `program args` in the folder `workDir` ("" for this process's) with `env` changed (a value of null
/// removes the variable; the rest is this process's environment), standard output and error captured:
/// exit code, stdout, stderr; killed after `seconds`.
let runProcessIn (workDir: string) (program: string) (args: string list) (env: (string * string | null) list) (seconds: int) =
    let info = System.Diagnostics.ProcessStartInfo(program, RedirectStandardOutput = true, RedirectStandardError = true, WorkingDirectory = workDir)
    for a in args do info.ArgumentList.Add a
    for name, value in env do
        match value with
        | null -> info.Environment.Remove name |> ignore
        | v -> info.Environment.[name] <- v
    use p = present (System.Diagnostics.Process.Start info)
    let out = p.StandardOutput.ReadToEndAsync()
    let err = p.StandardError.ReadToEndAsync()
    if not (p.WaitForExit(seconds * 1000)) then
        p.Kill true
        failwithf "%s %s did not end within %d s" program (String.Join(" ", args)) seconds
    p.WaitForExit()
    p.ExitCode, out.Result, err.Result

let runProcess = runProcessIn ""

/// `dotnet dll args` in its own process (a native crash shows as its exit code): exit code,
/// stdout, stderr; killed after `seconds`.
let dotnetProcess (dll: string) (seconds: int) (args: string list) = runProcess "dotnet" (dll :: args) [] seconds

/// Closed-form patch centres (CrOC.Data.PatchPositions) of a crop resized to side·patch pixels,
/// as a flat float64 array of (x, y) pairs in token order.
let patchCentres (side: int) (patch: int) (top: float) (left: float) (height: float) (width: float) (flipped: bool) : float[] =
    CrOC.Data.PatchPositions.Compute(CrOC.Data.CropBox(top, left, height, width, flipped), side * patch, patch) |> Array.map float
