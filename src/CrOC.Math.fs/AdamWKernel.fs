/// AdamW's update of float32 CPU memory in one pass (issue 16): p, g, m and v are read once and
/// p, m and v written once, where the same update as tensor operations makes ~16 passes over
/// memory. The arithmetic is PyTorch's single-tensor AdamW in float32:
///   g ← g·clip;  p ← p·decay;  m ← m + w₁·(g − m);  v ← v·β₂ + (w₂·g)·g;  p ← p + s·(m / (√v / √c₂ + eps))
/// with clip the gradient's clipping factor (1: none; g itself is only read), decay = 1 − lr·wd, w₁ = 1 − β₁, w₂ = 1 − β₂, c₂ = 1 − β₂ᵗ, s = −lr / (1 − β₁ᵗ).
/// Its rounding is not libtorch's op for op (measured on 2²⁰ random elements, one step: m differs
/// in 7 % of them, libtorch's lerp_ being one fused multiply-add; p in 0.6 %, addcdiv_ computing
/// (s·m)/d; v in 0.1 %), each by an ulp or so; the tests hold it to a float64 reference.
/// A slice with an EMA teacher then moves it toward the new p in the same pass (t is read and
/// written once; p is not read again): t ← fma(w_t, p − t, t), libtorch's vectorised `lerp_` for
/// a weight w_t = 1 − momentum below ½.
module CrOC.Math.AdamWKernel

#nowarn "9" // native pointers: the tensors' memory, checked contiguous float32 CPU by the caller

open System.Numerics
open Microsoft.FSharp.NativeInterop

/// The scalars of one parameter's update.
type Coefficients = { GradientScale: float32; Decay: float32; FirstWeight: float32; Beta2: float32; SecondWeight: float32; SqrtCorrection2: float32; Eps: float32; StepSize: float32; TeacherWeight: float32 }

/// One parameter's memory: the addresses of p, g, m, v (float32, contiguous), of its EMA teacher
/// copy (same length; 0n: none) and its length.
type Slice = { P: nativeint; G: nativeint; M: nativeint; V: nativeint; Teacher: nativeint; Count: int64; Coefficients: Coefficients }

/// The coefficients broadcast to every lane, made once per range.
[<Struct>]
type private Lanes =
    { Clip: Vector<float32>; Decay: Vector<float32>; W1: Vector<float32>; B2: Vector<float32>; W2: Vector<float32>
      SqrtC2: Vector<float32>; Eps: Vector<float32>; Step: Vector<float32>; WTeacher: Vector<float32> }

let private lanesOf (c: Coefficients) : Lanes =
    let all (x: float32) = Vector<float32>(x)
    { Clip = all c.GradientScale; Decay = all c.Decay; W1 = all c.FirstWeight; B2 = all c.Beta2; W2 = all c.SecondWeight
      SqrtC2 = all c.SqrtCorrection2; Eps = all c.Eps; Step = all c.StepSize; WTeacher = all c.TeacherWeight }

/// The update of the Vector<float32>.Count elements at p, g, m, v (and at the teacher t when
/// `follow`), addresses of float32 memory.
let inline private updateVector (k: Lanes) (follow: bool) (p: nativeint) (g: nativeint) (m: nativeint) (v: nativeint) (t: nativeint) =
    let at (address: nativeint) = NativePtr.ofNativeInt<Vector<float32>> address
    let gradient = NativePtr.read (at g) * k.Clip
    let decayed = NativePtr.read (at p) * k.Decay
    let m0, v0 = NativePtr.read (at m), NativePtr.read (at v)
    let m1 = m0 + k.W1 * (gradient - m0)
    let v1 = v0 * k.B2 + (k.W2 * gradient) * gradient
    let denominator = Vector.SquareRoot v1 / k.SqrtC2 + k.Eps
    let updated = decayed + k.Step * (m1 / denominator)
    NativePtr.write (at m) m1
    NativePtr.write (at v) v1
    NativePtr.write (at p) updated
    if follow then
        let t0 = NativePtr.read (at t)
        NativePtr.write (at t) (Vector.FusedMultiplyAdd(k.WTeacher, updated - t0, t0))

/// The update of elements [start, start + count) of one slice: whole vectors in place, the last
/// count mod Vector<float32>.Count elements through a vector-sized buffer (lanes past them unused).
let private updateRange (s: Slice) (start: int64) (count: int64) =
    let width = int64 Vector<float32>.Count
    let k, follow = lanesOf s.Coefficients, s.Teacher <> 0n
    let address = Arena.float32At
    let vectorEnd = start + (count / width) * width
    let mutable i = start
    while i < vectorEnd do
        updateVector k follow (address s.P i) (address s.G i) (address s.M i) (address s.V i) (if follow then address s.Teacher i else 0n)
        i <- i + width
    let rest = int (start + count - vectorEnd)
    if rest > 0 then
        let sources = [| s.P; s.G; s.M; s.V; s.Teacher |]
        let buffer = NativePtr.stackalloc<float32> (sources.Length * int width) // p, g, m, v, t: a vector of lanes each
        let lanes j = NativePtr.toNativeInt (NativePtr.add buffer (j * int width))
        let copy (from: nativeint) (into: nativeint) = System.Buffer.MemoryCopy(from.ToPointer(), into.ToPointer(), int64 rest * 4L, int64 rest * 4L)
        for j in 0 .. sources.Length - 1 do if sources.[j] <> 0n then copy (address sources.[j] vectorEnd) (lanes j)
        updateVector k follow (lanes 0) (lanes 1) (lanes 2) (lanes 3) (lanes 4)
        for j in [ 0; 2; 3; 4 ] do if sources.[j] <> 0n then copy (lanes j) (address sources.[j] vectorEnd) // g is only read

/// Updates every slice, the work split into chunks over `threads` threads.
let update (threads: int) (slices: Slice list) : unit =
    let slices = Array.ofList slices
    ParallelChunks.run threads (ParallelChunks.split [ for s in slices -> s.Count ]) (fun _ (s, start, count) -> updateRange slices.[s] start count)
