/// Flat parameter arenas (issue 16): many named tensors as views of slices of one contiguous 1-D
/// buffer, so the whole model can be updated by one kernel (the EMA's lerp_) or one fused loop
/// (AdamW on the CPU) instead of one kernel per tensor. Views keep their names, shapes and
/// requires_grad: checkpoints, state dicts and the formulas see the same tensors as before.
module CrOC.Math.Arena

open System.Runtime.InteropServices
open TorchSharp
open CrOC.Math.Tensors

[<DllImport("LibTorchSharp")>]
extern nativeint private THSTensor_data(nativeint handle)

/// The address of the first element of `t` (CPU: readable memory; CUDA: a device address).
let address (t: Tensor) : nativeint = THSTensor_data t.Handle

/// Views of one new zero-filled buffer laid out as `named` (same names, shapes, dtype and device;
/// no gradient), in order. The views outlive any dispose scope; they keep the storage alive.
let zerosLike (named: (string * Tensor) list) : (string * Tensor) list =
    match named with
    | [] -> []
    | (_, first) :: _ ->
        let total = named |> List.sumBy (fun (_, t) -> t.numel())
        use buffer = torch.zeros([| total |], dtype = first.dtype, device = first.device)
        named
        |> List.mapFold (fun offset (name, t: Tensor) ->
            (name, buffer.narrow(0, offset, t.numel()).view(t.shape).DetachFromDisposeScope()), offset + t.numel()) 0L
        |> fst

/// `named` copied into one new buffer (as `zerosLike` lays it out); a view requires a gradient
/// when its original did (it is then a leaf: the buffer itself never requires one).
let adopt (named: (string * Tensor) list) : (string * Tensor) list =
    use _ = torch.no_grad()
    List.map2 (fun (name, view: Tensor) (_, t: Tensor) ->
        view.copy_(t) |> ignore
        name, (if t.requires_grad then view.requires_grad_(true) else view)) (zerosLike named) named

/// One flat 1-D view over `tensors` when they tile one contiguous range of memory in order
/// (as `adopt` lays them out), same dtype and device; otherwise None. The view needs no gradient.
let spanning (tensors: Tensor list) : Tensor option =
    match tensors with
    | [] -> None
    | first :: _ ->
        let size = int64 (first.ElementSize)
        let tiled, total =
            tensors
            |> List.fold (fun (ok, offset) t ->
                let fits = ok && t.is_contiguous() && t.dtype = first.dtype && t.device_type = first.device_type && t.device_index = first.device_index
                           && address t = address first + nativeint (offset * size)
                fits, offset + t.numel()) (true, 0L)
        if tiled then Some(first.detach().as_strided([| total |], [| 1L |], first.storage_offset())) else None
