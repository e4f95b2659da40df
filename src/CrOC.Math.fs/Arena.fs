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

/// The address of float32 element `i` of the memory at `address`, in 64-bit arithmetic (a 32-bit
/// element index would wrap past 2³¹ elements, 8 GiB).
let float32At (address: nativeint) (i: int64) : nativeint = address + nativeint (i * 4L)

/// Views of one new zero-filled buffer laid out as `named` (same names, shapes, dtype and device;
/// no gradient), in order. The views outlive any dispose scope; they keep the storage alive.
let zerosLike (named: (string * Tensor) list) : (string * Tensor) list =
    match named with
    | [] -> []
    | (_, first) :: rest ->
        match rest |> List.tryFind (fun (_, t) -> t.dtype <> first.dtype || t.device_type <> first.device_type || t.device_index <> first.device_index) with
        | Some (name, t) -> invalidArg "named" (sprintf "one arena holds one dtype on one device: '%s' is %A on %O, the first %A on %O" name t.dtype t.device first.dtype first.device)
        | None -> ()
        let total = named |> List.sumBy (fun (_, t) -> t.numel())
        use buffer = torch.zeros([| total |], dtype = first.dtype, device = first.device)
        named
        |> List.mapFold (fun offset (name, t: Tensor) ->
            use slice = buffer.narrow(0, offset, t.numel()) // only the view is kept
            (name, slice.view(t.shape).DetachFromDisposeScope()), offset + t.numel()) 0L
        |> fst

/// `named` copied into one new buffer (as `zerosLike` lays it out); a view requires a gradient
/// when its original did (it is then a leaf: the buffer itself never requires one).
let adopt (named: (string * Tensor) list) : (string * Tensor) list =
    use _ = torch.no_grad()
    List.map2 (fun (name, view: Tensor) (_, t: Tensor) ->
        view.copy_(t) |> ignore
        name, (if t.requires_grad then view.requires_grad_(true) else view)) (zerosLike named) named

/// Whether `b` starts in memory right where `a` ends, both contiguous, of one dtype and device.
let adjacent (a: Tensor) (b: Tensor) : bool =
    a.is_contiguous() && b.is_contiguous() && a.dtype = b.dtype && a.device_type = b.device_type && a.device_index = b.device_index
    && address b = address a + nativeint (a.numel() * int64 a.ElementSize)

/// One flat 1-D view over `tensors` when they tile one contiguous range of memory in order
/// (as `adopt` lays them out), same dtype and device; otherwise None. The view needs no gradient.
let spanning (tensors: Tensor list) : Tensor option =
    match tensors with
    | [] -> None
    | first :: _ when first.is_contiguous() && List.forall (fun (a, b) -> adjacent a b) (List.pairwise tensors) ->
        Some(first.detach().as_strided([| tensors |> List.sumBy (fun t -> t.numel()) |], [| 1L |], first.storage_offset()))
    | _ -> None
