/// A larger alternate signal stack for threads that run bfloat16 matmuls (Linux x86-64).
///
/// On CPUs with AMX, libtorch's bfloat16 matmuls (oneDNN) run AMX tile instructions on the calling
/// thread. From then on the kernel's signal frame for that thread holds the tile data: about 12 kB
/// (AT_MINSIGSTKSZ = 11952 bytes on a Xeon with AMX). The .NET runtime gives each thread a 16 kB
/// alternate stack (one guard page: 12 kB usable) and runs its SIGSEGV handler there, which is how
/// every NullReferenceException starts: on such a thread the frame fills that stack, the handler
/// overflows it and the process dies with SIGSEGV (exit 139), without a message. Seen as a rare
/// crash of the test suite (a caught NullReferenceException of a weights parser on a pool thread
/// that had run a bfloat16 test); reproduced by one bfloat16 matmul and one caught
/// NullReferenceException on the same thread (`SignalStackTests`).
///
/// `ensure` gives the calling thread an alternate stack of AT_MINSIGSTKSZ + 64 kB (plus a guard
/// page) once. The runtime frees only the stack it made when the thread exits: ours stays mapped
/// (~80 kB per thread that ran bfloat16; a handful in a run).
module CrOC.Math.SignalStack

#nowarn "9" // pointers to stack_t, a C struct

open System
open System.Runtime.InteropServices

/// C's stack_t on Linux x86-64: { void *ss_sp; int ss_flags; size_t ss_size; } (24 bytes).
[<Struct; StructLayout(LayoutKind.Sequential)>]
type private StackT = { mutable Base: nativeint; mutable Flags: int; mutable Size: unativeint }

module private Native =
    [<DllImport("libc", EntryPoint = "sigaltstack")>]
    extern int sigaltstack(StackT& replacement, StackT& previous)
    [<DllImport("libc", EntryPoint = "sigaltstack")>]
    extern int currentStack(nativeint none, StackT& current)
    [<DllImport("libc", EntryPoint = "getauxval")>]
    extern unativeint getauxval(unativeint kind)
    [<DllImport("libc", EntryPoint = "mmap")>]
    extern nativeint mmap(nativeint address, unativeint length, int protection, int flags, int fd, nativeint offset)
    [<DllImport("libc", EntryPoint = "mprotect")>]
    extern int mprotect(nativeint address, unativeint length, int protection)
    [<DllImport("libc", EntryPoint = "munmap")>]
    extern int munmap(nativeint address, unativeint length)

let private atMinSigStkSz = 51un
let private headroom = 65536un
let private ssDisable = 4
let private readWrite, noAccess = 3, 0
let private privateAnonymousStack = 0x02 ||| 0x20 ||| 0x20000 // MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK

let private applies = OperatingSystem.IsLinux() && RuntimeInformation.ProcessArchitecture = Architecture.X64

/// The kernel's largest signal frame on this CPU (AT_MINSIGSTKSZ; 0 where unknown or not Linux x86-64).
let frameBytes () : int64 = if applies then int64 (Native.getauxval atMinSigStkSz) else 0L

/// The size of the calling thread's alternate signal stack (0: none, or not Linux x86-64).
let currentBytes () : int64 =
    if not applies then 0L
    else
        let mutable current = { Base = 0n; Flags = 0; Size = 0un }
        if Native.currentStack(0n, &current) <> 0 || current.Flags &&& ssDisable <> 0 then 0L else int64 current.Size

/// The alternate stack `ensure` gives a thread: the largest frame and 64 kB for the handlers.
let wantedBytes () : int64 = frameBytes () + int64 headroom

/// Whether `ensure` has run on the current thread.
type private PerThread =
    [<ThreadStatic; DefaultValue>]
    static val mutable private ensured: bool
    static member Ensured with get () = PerThread.ensured and set v = PerThread.ensured <- v

/// Gives the calling thread an alternate signal stack of `wantedBytes` (with a guard page below it)
/// unless it has one at least that large; once per thread, then a thread-static check. Where the
/// stack cannot be made (no memory) the thread keeps the runtime's.
let ensure () : unit =
    if not PerThread.Ensured then
        PerThread.Ensured <- true
        if applies && frameBytes () > 0L && currentBytes () < wantedBytes () then
            let page = unativeint Environment.SystemPageSize
            let size = (unativeint (wantedBytes ()) + page - 1un) / page * page
            let mapping = Native.mmap(0n, size + page, readWrite, privateAnonymousStack, -1, 0n)
            if mapping <> -1n then
                let mutable replacement = { Base = mapping + nativeint page; Flags = 0; Size = size }
                let mutable previous = { Base = 0n; Flags = 0; Size = 0un }
                if Native.mprotect(mapping, page, noAccess) <> 0 || Native.sigaltstack(&replacement, &previous) <> 0 then
                    Native.munmap(mapping, size + page) |> ignore
