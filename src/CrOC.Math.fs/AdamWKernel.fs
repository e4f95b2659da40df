/// AdamW's update of float32 CPU memory in one pass (issue 16): p, g, m and v are read once and
/// p, m and v written once, where the same update as tensor operations makes ~16 passes over
/// memory. The arithmetic is PyTorch's single-tensor AdamW, operation for operation in float32:
///   g ← g·clip;  p ← p·decay;  m ← m + w₁·(g − m);  v ← v·β₂ + (w₂·g)·g;  p ← p + s·(m / (√v / √c₂ + eps))
/// with clip the gradient's clipping factor (1: none; g itself is only read), decay = 1 − lr·wd, w₁ = 1 − β₁, w₂ = 1 − β₂, c₂ = 1 − β₂ᵗ, s = −lr / (1 − β₁ᵗ).
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

let inline private at (address: nativeint) (i: int64) : nativeptr<float32> = NativePtr.add (NativePtr.ofNativeInt<float32> address) (int i)

/// The vector of floats that starts at element i.
let inline private vectorAt (address: nativeint) (i: int64) : nativeptr<Vector<float32>> = NativePtr.ofNativeInt<Vector<float32>> (NativePtr.toNativeInt (at address i))

/// The update of elements [start, start + count) of one slice.
let private updateRange (s: Slice) (start: int64) (count: int64) =
    let c = s.Coefficients
    let width = int64 Vector<float32>.Count
    let clip = Vector<float32>(c.GradientScale)
    let decay, w1, b2, w2 = Vector<float32>(c.Decay), Vector<float32>(c.FirstWeight), Vector<float32>(c.Beta2), Vector<float32>(c.SecondWeight)
    let sqrtC2, eps, step = Vector<float32>(c.SqrtCorrection2), Vector<float32>(c.Eps), Vector<float32>(c.StepSize)
    let follow, teacherWeight = s.Teacher <> 0n, Vector<float32>(c.TeacherWeight)
    let vectorEnd = start + (count / width) * width
    let mutable i = start
    while i < vectorEnd do
        let pp, mp, vp = vectorAt s.P i, vectorAt s.M i, vectorAt s.V i
        let g = NativePtr.read (vectorAt s.G i) * clip
        let p = NativePtr.read pp * decay
        let m0, v0 = NativePtr.read mp, NativePtr.read vp
        let m = m0 + w1 * (g - m0)
        let v = v0 * b2 + (w2 * g) * g
        let denominator = Vector.SquareRoot v / sqrtC2 + eps
        let updated = p + step * (m / denominator)
        NativePtr.write mp m
        NativePtr.write vp v
        NativePtr.write pp updated
        if follow then
            let tp = vectorAt s.Teacher i
            let t = NativePtr.read tp
            NativePtr.write tp (Vector.FusedMultiplyAdd(teacherWeight, updated - t, t))
        i <- i + width
    while i < start + count do
        let pp, gp, mp, vp = at s.P i, at s.G i, at s.M i, at s.V i
        let g = NativePtr.read gp * c.GradientScale
        let p = NativePtr.read pp * c.Decay
        let m0 = NativePtr.read mp
        let m = m0 + c.FirstWeight * (g - m0)
        let v = NativePtr.read vp * c.Beta2 + (c.SecondWeight * g) * g
        let denominator = sqrt v / c.SqrtCorrection2 + c.Eps
        let updated = p + c.StepSize * (m / denominator)
        NativePtr.write mp m
        NativePtr.write vp v
        NativePtr.write pp updated
        if follow then
            let tp = at s.Teacher i
            let t = NativePtr.read tp
            NativePtr.write tp (System.MathF.FusedMultiplyAdd(c.TeacherWeight, updated - t, t))
        i <- i + 1L

/// Updates every slice, the work split into chunks over `threads` threads.
let update (threads: int) (slices: Slice list) : unit =
    let slices = Array.ofList slices
    ParallelChunks.run threads (ParallelChunks.split [ for s in slices -> s.Count ]) (fun _ (s, start, count) -> updateRange slices.[s] start count)
