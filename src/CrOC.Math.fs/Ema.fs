/// The EMA teacher update, the one place (with the optimiser) where parameters are mutated.
module CrOC.Math.Ema

open TorchSharp
open CrOC.Math.Tensors

/// θ_t ← m·θ_t + (1 − m)·θ_s for every pair, in place and without gradient.
/// `teacher` and `student` list the matching tensors in the same order and shapes. When both
/// tile one arena each (`Arena.adopt`), the update is one kernel over the two buffers.
let ema (momentum: float) (teacher: Tensor seq) (student: Tensor seq) : unit =
    use _ = torch.no_grad()
    use _ = torch.NewDisposeScope() // the detached views of the student, the weights
    let rest = lerpWeight (1.0 - momentum)
    let teacher, student = List.ofSeq teacher, List.ofSeq student
    let shapesMatch = List.length teacher = List.length student && List.forall2 (fun (t: Tensor) (s: Tensor) -> t.shape = s.shape) teacher student
    match Arena.spanning teacher, Arena.spanning student with
    | Some t, Some s when shapesMatch -> t.lerp_(s, rest t) |> ignore
    | _ ->
    List.zip teacher student
    |> Seq.iter (fun (t, s) ->
        if t.shape <> s.shape then invalidArg "student" (sprintf "EMA pair of shapes %A and %A" t.shape s.shape)
        t.lerp_(s.detach(), rest t) |> ignore) // m·θ_t + (1 − m)·θ_s in one pass
