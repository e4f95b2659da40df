/// The alternate signal stack of threads that run bfloat16 matmuls (`CrOC.Math.SignalStack`): the
/// fix of a crash on AMX CPUs, where a NullReferenceException caught on such a thread killed the
/// process with SIGSEGV. The crash needs a process of its own: the probe runs in a child.
module CrOC.Tests.SignalStackTests

open System
open System.IO
open System.Runtime.InteropServices
open System.Threading
open Expecto
open TorchSharp
open CrOC.Math
open CrOC.Tests.TestUtil

/// The argument that turns the test binary into the probe (see `Main`).
[<Literal>]
let ProbeArgument = "--signal-stack-probe"

module private Native =
    [<DllImport("libc", EntryPoint = "prctl")>]
    extern int prctl(int option, unativeint value)

let private linuxX64 = OperatingSystem.IsLinux() && RuntimeInformation.ProcessArchitecture = Architecture.X64

/// Runs `f` on a new thread (a fresh alternate stack, as the runtime gives every thread) and returns its result.
let private onNewThread (f: unit -> 'T) : 'T =
    let mutable result = Unchecked.defaultof<'T>
    let thread = Thread(fun () -> result <- f ())
    thread.Start()
    thread.Join()
    result

/// NullReferenceExceptions raised (by the hardware fault, as the JIT's null checks do) and caught.
let private caughtNullReferences (count: int) =
    let mutable caught = 0
    for _ in 1 .. count do
        try (Unchecked.defaultof<obj>).GetHashCode() |> ignore
        with :? NullReferenceException -> caught <- caught + 1
    caught

/// The child's work: a 512² bfloat16 matmul on this thread (one torch thread: AMX tiles here
/// where the CPU has them), then 20 caught NullReferenceExceptions. "protected": through
/// `Layers.linearAs Bf16`, which sets the larger stack; "bare": torch.mm, no larger stack (and no
/// core dump when it dies). Prints the number caught; exit 0.
let probe (mode: string) : int =
    torch.set_num_threads 1
    let x = torch.randn(512L, 512L)
    match mode with
    | "protected" -> Layers.linearAs Layers.Bf16 ({ Weight = torch.randn(512L, 512L); Bias = None } : Layers.Linear) x |> ignore
    | _ ->
        Native.prctl(4, 0un) |> ignore // PR_SET_DUMPABLE 0: no core file
        torch.mm(x.to_type(torch.bfloat16), x.to_type(torch.bfloat16)) |> ignore
    printfn "caught %d" (caughtNullReferences 20)
    0

/// Runs the probe in a child process: (exit code, output).
let private runProbe (mode: string) =
    let code, out, err = dotnetProcess (Path.Combine(AppContext.BaseDirectory, "CrOC.Tests.dll")) 120 [ ProbeArgument; mode ]
    code, out + err

let private cpuHasAmx () =
    File.Exists "/proc/cpuinfo" && (File.ReadAllText "/proc/cpuinfo").Contains " amx_tile"

let tests =
    testSequenced <| testList "SignalStack" [
        test "ensure gives a thread an alternate stack of AT_MINSIGSTKSZ + 64 kB once; other threads keep the runtime's" {
            if not linuxX64 then skiptest "Linux x86-64 only"
            let before, after, again = onNewThread (fun () ->
                let before = SignalStack.currentBytes ()
                SignalStack.ensure ()
                let after = SignalStack.currentBytes ()
                SignalStack.ensure ()
                before, after, SignalStack.currentBytes ())
            Expect.isGreaterThan before 0L "the runtime gives every thread an alternate stack"
            Expect.isGreaterThanOrEqual after (SignalStack.wantedBytes ()) "at least the largest signal frame + 64 kB"
            Expect.isGreaterThan (SignalStack.wantedBytes ()) (SignalStack.frameBytes () + 60000L) "room for the handlers beyond the frame"
            Expect.equal again after "a second call changes nothing"
            Expect.equal (onNewThread SignalStack.currentBytes) before "a thread that did not ask keeps the runtime's stack"
        }

        test "a bfloat16 matmul, then caught NullReferenceExceptions on the same thread: the process lives (it died with SIGSEGV on AMX CPUs)" {
            if not linuxX64 then skiptest "Linux x86-64 only"
            let code, output = runProbe "protected"
            Expect.equal code 0 (sprintf "the protected probe exits normally:\n%s" output)
            Expect.stringContains output "caught 20" "every NullReferenceException is caught"
            // The control: without the larger stack the probe dies exactly where the runtime's stack
            // (one guard page below it) leaves the handler under 4 kB beside the kernel's frame.
            let runtimeUsable = onNewThread SignalStack.currentBytes - int64 Environment.SystemPageSize
            let predictedCrash = cpuHasAmx () && SignalStack.frameBytes () + 4096L > runtimeUsable
            let bareCode, bareOutput = runProbe "bare"
            if predictedCrash then Expect.equal bareCode 139 (sprintf "the bare probe dies with SIGSEGV on this AMX CPU (frame %d bytes, runtime stack %d usable):\n%s" (SignalStack.frameBytes ()) runtimeUsable bareOutput)
            else Expect.equal bareCode 0 (sprintf "no AMX tile frame here: the bare probe lives too:\n%s" bareOutput)
        }
    ]
