/// Small tensor helpers shared by the formulas. Every function returns a fresh tensor and never
/// disposes its inputs.
module CrOC.Math.Tensors

open TorchSharp

type Tensor = torch.Tensor

/// A TorchSharp scalar, for the overloads where F# cannot pick between Scalar and Tensor. Only for
/// arguments of calls made once (initialisation, tests): see `withScalar` for the hot paths.
let scalar (x: float) : Scalar = Scalar.op_Implicit x

// Scalars and the finaliser. TorchSharp 0.107 hands a Scalar's native handle to libtorch and lets
// the .NET object go: the GC may finalise it (freeing it on the finaliser thread) while the native
// call still reads it. Its own operators (`t * 2.0`, `a + b`, which passes alpha = 1) do this. Seen
// here as a crash in c10::Scalar::toFloat inside a residual add after ~600 training steps, while
// the loader threads kept the GC busy. On the training path every Scalar is therefore either
// rooted for the whole process or held until the call returns and disposed on this thread.

/// Runs `f` with a Scalar of value `v` that stays alive until `f` returns, then frees it here.
let withScalar (v: float) (f: Scalar -> 'T) : 'T =
    use s = Scalar.op_Implicit v
    f s

/// The Scalar 1, rooted for the life of the process (never finalised).
let private one : Scalar = Scalar.op_Implicit 1L // integral: valid alpha for integer and float tensors

/// a + b (without TorchSharp's temporary alpha Scalar).
let plus (a: Tensor) (b: Tensor) : Tensor = a.add(b, one)

/// a − b.
let minus (a: Tensor) (b: Tensor) : Tensor = a.sub(b) // TorchSharp's sub(Tensor) passes no Scalar

/// a·b over equal leading batch dimensions: (…, n, k)·(…, k, m) → (…, n, m). Through bmm, as
/// matmul runs it (the same kernel, copies and gradients): TorchSharp's matmul lets a libtorch
/// error (out of memory, shapes) abort the process where bmm raises it as an exception.
let batchMatmul (a: Tensor) (b: Tensor) : Tensor =
    let rank = a.shape.Length
    let flat (t: Tensor) = t.reshape(-1L, t.shape.[rank - 2], t.shape.[rank - 1])
    torch.bmm(flat a, flat b).reshape(Array.append a.shape.[.. rank - 2] [| b.shape.[rank - 1] |])

/// a ← a + b, in place.
let addInPlace (a: Tensor) (b: Tensor) : Tensor = a.add_(b, one)

/// t ← t + v, in place (TorchSharp's add_(Scalar) would pass a temporary alpha Scalar).
let addScalarInPlace (t: Tensor) (v: float) : Tensor = withScalar v (fun s -> t.add_(s, one))

/// a ← a − b, in place.
let subInPlace (a: Tensor) (b: Tensor) : Tensor = a.sub_(b)

/// v · t.
let times (v: float) (t: Tensor) : Tensor = withScalar v (fun s -> t.mul(s))

/// t / v.
let over (t: Tensor) (v: float) : Tensor = withScalar v (fun s -> t.div(s))

/// t ← t / v, in place.
let divInPlace (t: Tensor) (v: float) : Tensor = withScalar v (fun s -> t.div_(s))

/// Runs `f` in its own dispose scope: the tensors `keep` picks from its result move to the
/// enclosing scope, every other tensor made inside is freed on return (as PyTorch frees an
/// intermediate when its last reference goes; what autograd saved for backward stays alive
/// through the graph). Bounds the memory of a forward pass to what backward needs.
let scoped (keep: 'T -> Tensor list) (f: unit -> 'T) : 'T =
    use scope = torch.NewDisposeScope()
    let result = f ()
    scope.MoveToOuter(keep result |> Seq.filter scope.Contains |> Seq.distinct |> Seq.map (fun t -> t :> System.IDisposable))
    result

/// Copies of named tensors on `device`, looked up by name (detached; each keeps whether it
/// requires a gradient), for the `ofNamed` constructors.
let movedTo (device: torch.Device) (named: (string * Tensor) list) : string -> Tensor =
    use _ = torch.no_grad()
    let moved =
        named
        |> List.map (fun (n, t) ->
            use onDevice = t.``to``(device) // only the detached handle is kept (a whole device copy waited for the GC once)
            n, onDevice.detach().requires_grad_(t.requires_grad))
        |> dict
    fun name -> moved.[name]

/// The 0-d tensor `value` of `dtype` on `device`, filled there (not uploaded: on a GPU no host
/// synchronisation).
let filledOn (device: torch.Device) (dtype: torch.ScalarType) (value: float) : Tensor =
    withScalar value (fun v -> torch.full([||], v, dtype = dtype, device = device))

/// The weight `w` of `lerp_` (which TorchSharp takes as a tensor) in the dtype and on the device of
/// the tensor it is used with: made once per dtype and device, owned by the current dispose scope.
let lerpWeight (w: float) : Tensor -> Tensor =
    let made = System.Collections.Generic.Dictionary<struct (torch.ScalarType * string), Tensor>()
    fun like ->
        let key = struct (like.dtype, string like.device)
        match made.TryGetValue key with
        | true, t -> t
        | _ ->
            let t = filledOn like.device like.dtype w
            made.[key] <- t
            t

/// Fails with a clear message when `t` does not have `rank` dimensions.
let expectRank (what: string) (rank: int) (t: Tensor) =
    if t.dim() <> int64 rank then
        invalidArg what (sprintf "%s: expected a %d-D tensor, got shape %A" what rank t.shape)

/// L2-normalise along the last dimension, as `F.normalize(x, dim=-1)` (eps 1e-12 on the norm).
let l2normalize (x: Tensor) : Tensor = torch.nn.functional.normalize(x, p = 2.0, dim = -1L, eps = 1e-12)

/// Scalar tensor value as float (host sync).
let toFloat (t: Tensor) : float =
    use converted = t.to_type(torch.ScalarType.Float64) // a handle of its own, even when t is float64 already
    converted.item<double>()

/// Divides by `denominator`, replacing a zero denominator by the smallest positive normal number
/// of the dtype so that 0 / 0 gives 0 instead of NaN.
let safeDivide (numerator: Tensor) (denominator: Tensor) : Tensor =
    let tiny =
        match denominator.dtype with
        | torch.ScalarType.Float64 -> 2.2250738585072014e-308
        | _ -> 1.1754943508222875e-38 // float32 (also representable in bfloat16)
    numerator / withScalar tiny (fun s -> denominator.clamp_min(s))
