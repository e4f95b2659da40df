module CrOC.Tests.HeapSettingsTests

open System
open System.Runtime.InteropServices
open Expecto
open CrOC.Host.Runtime

/// glibc's `struct mallinfo2` (all size_t).
[<Struct; StructLayout(LayoutKind.Sequential)>]
type MallInfo2 =
    val Arena: unativeint       // bytes of the heaps (sbrk and arena heaps)
    val OrdinaryBlocks: unativeint
    val SmallBlocks: unativeint
    val MappedBlocks: unativeint
    val MappedBytes: unativeint // bytes in blocks served by mmap
    val Unused: unativeint
    val FastFreeBytes: unativeint
    val AllocatedBytes: unativeint
    val FreeBytes: unativeint
    val TopReleasable: unativeint

module private Native =
    [<DllImport("libc.so.6")>]
    extern MallInfo2 mallinfo2()

/// Above glibc's largest adaptive mmap threshold (32 MB), so mmapped by default; below a thread
/// arena's heap size (64 MB: larger blocks in a thread other than main are mmapped regardless).
let private block = 48n * 1024n * 1024n

let tests =
    testList "heap settings" [
        test "after them a 48 MB malloc comes from the heap, not a new mapping, and its free keeps it there" {
            Expect.isTrue (HeapSettings.Apply()) "glibc took both settings"
            let before = Native.mallinfo2()
            let address = Marshal.AllocHGlobal block // malloc
            try
                Marshal.WriteByte(address, 1uy)
                let during = Native.mallinfo2()
                Expect.isLessThan (int64 during.MappedBytes - int64 before.MappedBytes) (int64 block) "no mmap for the block"
                Expect.isGreaterThanOrEqual (int64 during.Arena) (int64 block) "the heap holds it"
            finally
                Marshal.FreeHGlobal address
            Expect.isGreaterThanOrEqual (int64 (Native.mallinfo2()).Arena) (int64 block) "freed, it stays in the heap (no trim) for the next allocation"
        }

        test "glibc is changed on Linux unless CROC_MALLOC=keep" {
            Expect.isTrue (HeapSettings.Wanted(null, true)) "Linux, default"
            Expect.isTrue (HeapSettings.Wanted("", true)) "empty"
            Expect.isFalse (HeapSettings.Wanted(" Keep ", true)) "kept on request"
            Expect.isFalse (HeapSettings.Wanted(null, false)) "not Linux"
        }
    ]
