/// Sums of squares of many float32 CPU buffers in one parallel pass (issue 16): the per-tensor
/// gradient norms of clipping, where one `norm()` per tensor (~200 of them) costs a kernel launch,
/// a thread fork and a host read each (31–36 ms for 46 M gradients on Zen 3; this pass 21–25 ms,
/// where one read of them takes 18: the VM reads memory at ≈ 10 GB/s).
/// Accumulates in float64 (per vector lane, then across lanes and chunks): at least as accurate as
/// libtorch's float32 cascade sum.
module CrOC.Math.SquaredNorms

#nowarn "9" // native pointers: the tensors' memory, checked contiguous float32 CPU by the caller

open System.Numerics
open Microsoft.FSharp.NativeInterop

/// One buffer: the address of its first float32 and its length.
type Buffer = { Address: nativeint; Count: int64 }

/// Σ x² over elements [start, start + count) of the buffer at `address`.
let private sumRange (address: nativeint) (start: int64) (count: int64) : float =
    let width = int64 Vector<float32>.Count
    let element (i: int64) = Arena.float32At address (start + i)
    let vectorEnd = (count / width) * width
    let mutable low, high = Vector<float>.Zero, Vector<float>.Zero
    let mutable i = 0L
    while i < vectorEnd do
        let x = NativePtr.read (NativePtr.ofNativeInt<Vector<float32>> (element i))
        let a, b = Vector.WidenLower x, Vector.WidenUpper x
        low <- low + a * a
        high <- high + b * b
        i <- i + width
    let mutable total = Vector.Sum(low + high)
    while i < count do
        let x = float (NativePtr.read (NativePtr.ofNativeInt<float32> (element i)))
        total <- total + x * x
        i <- i + 1L
    total

/// Σ x² of every buffer, in order, the work split into chunks over `threads` threads; the chunks'
/// partial sums are added in chunk order, so the result does not depend on the scheduling.
let compute (threads: int) (buffers: Buffer list) : float[] =
    let buffers = Array.ofList buffers
    let chunks = ParallelChunks.split [ for b in buffers -> b.Count ]
    let partial = Array.zeroCreate chunks.Length
    ParallelChunks.run threads chunks (fun k (b, start, count) -> partial.[k] <- sumRange buffers.[b].Address start count)
    let totals = Array.zeroCreate buffers.Length
    chunks |> Array.iteri (fun k (b, _, _) -> totals.[b] <- totals.[b] + partial.[k])
    totals
