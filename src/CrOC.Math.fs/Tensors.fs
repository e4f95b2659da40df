/// Small tensor helpers shared by the formulas. Every function returns a fresh tensor and never
/// disposes its inputs.
module CrOC.Math.Tensors

open TorchSharp

type Tensor = torch.Tensor

/// A TorchSharp scalar, for the overloads where F# cannot pick between Scalar and Tensor.
let scalar (x: float) : Scalar = Scalar.op_Implicit x

/// Shape as an F# array, for messages and checks.
let shapeOf (t: Tensor) : int64[] = t.shape

/// Fails with a clear message when `t` does not have `rank` dimensions.
let expectRank (what: string) (rank: int) (t: Tensor) =
    if t.dim() <> int64 rank then
        invalidArg what (sprintf "%s: expected a %d-D tensor, got shape %A" what rank t.shape)

/// L2-normalise along the last dimension, as `F.normalize(x, dim=-1)` (eps 1e-12 on the norm).
let l2normalize (x: Tensor) : Tensor = torch.nn.functional.normalize(x, p = 2.0, dim = -1L, eps = 1e-12)

/// Scalar tensor value as float (host sync).
let toFloat (t: Tensor) : float = t.to_type(torch.ScalarType.Float64).item<double>()

/// Divides by `denominator`, replacing a zero denominator by the smallest positive normal number
/// of the dtype so that 0 / 0 gives 0 instead of NaN.
let safeDivide (numerator: Tensor) (denominator: Tensor) : Tensor =
    let tiny =
        match denominator.dtype with
        | torch.ScalarType.Float64 -> 2.2250738585072014e-308
        | _ -> 1.1754943508222875e-38 // float32 (also representable in bfloat16)
    numerator / denominator.clamp_min(tiny)
