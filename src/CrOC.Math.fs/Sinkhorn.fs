/// Sinkhorn-Knopp optimal transport, batched over S independent problems.
///
/// A problem is a cost M (N rows = tokens, K columns = clusters) with row marginal a (sums to 1)
/// and column marginal b (sums to 1). The entropic solution is
///     P* = argmin_{P ∈ U(a,b)} ⟨P, M⟩ − (1/λ) H(P),   P* = diag(u) exp(−λM) diag(v).
/// Both variants do T sweeps, each a row scaling (rows → a) followed by a column scaling
/// (columns → b), so after any T ≥ 1 the column sums equal b and the row sums approach a.
module CrOC.Math.Sinkhorn

open TorchSharp
open CrOC.Math.Tensors

/// A transport plan and its cost.
type Transport =
    { /// P, shape (S, N, K); total mass 1 per problem.
      Plan: Tensor
      /// ⟨P, M⟩ = Σ_{n,k} P[n,k]·M[n,k], shape (S).
      Cost: Tensor }

let private checkShapes (a: Tensor) (b: Tensor) (cost: Tensor) =
    expectRank "cost" 3 cost
    expectRank "a" 2 a
    expectRank "b" 2 b
    let s, n, k = cost.shape.[0], cost.shape.[1], cost.shape.[2]
    if a.shape <> [| s; n |] || b.shape <> [| s; k |] then
        invalidArg "a/b" (sprintf "marginals must be (S, N) and (S, K) for a cost of shape %A; got %A and %A" cost.shape a.shape b.shape)

/// Linear-domain Sinkhorn exactly as the official CrOC code (spec §6.5 step 4):
/// P = exp(−λM) / Σ exp(−λM); T times { P ← P·(a / rowsum P); P ← P·(b / colsum P) };
/// NaN → 1e-8. `lambda` = λ (1/ε), `iterations` = T.
/// Shapes: a (S, N), b (S, K), cost (S, N, K).
let sinkhorn (lambda: float) (iterations: int) (a: Tensor) (b: Tensor) (cost: Tensor) : Transport =
    checkShapes a b cost
    let kernel = (times (-lambda) cost).exp()                              // (S, N, K)
    let rowTarget = a.unsqueeze(-1)                                        // (S, N, 1)
    let colTarget = b.unsqueeze(1)                                         // (S, 1, K)
    let sweep (plan: Tensor) _ =
        let rowsFitted = plan * (rowTarget / plan.sum(2L, keepdim = true))
        rowsFitted * (colTarget / rowsFitted.sum(1L, keepdim = true))
    let plan = (Seq.fold sweep (kernel / kernel.sum([| 1L; 2L |], keepdim = true)) (seq { 1 .. iterations })).nan_to_num(nan = 1e-8)
    { Plan = plan; Cost = (plan * cost).sum([| 1L; 2L |]) }

/// Log-domain Sinkhorn: the same sweeps on dual potentials f (S, N, 1) and g (S, 1, K),
///     log P = −λM + f + g,  f = log a − logsumexp_k(−λM + g),  g = log b − logsumexp_n(−λM + f),
/// so it stays finite for large λ and tiny (even zero) marginals. In exact arithmetic it equals
/// `sinkhorn` for every T ≥ 1 (the linear variant's initial normalisation is a constant that the
/// first row sweep cancels); T = 0 gives the normalised kernel as there.
let sinkhornLog (lambda: float) (iterations: int) (a: Tensor) (b: Tensor) (cost: Tensor) : Transport =
    checkShapes a b cost
    let logKernel = times (-lambda) cost                                   // (S, N, K)
    let logA = a.log().unsqueeze(-1)                                       // (S, N, 1)
    let logB = b.log().unsqueeze(1)                                        // (S, 1, K)
    let sweep (_: Tensor, g: Tensor) _ =
        let f = logA - (plus logKernel g).logsumexp(2L, keepdim = true)
        f, logB - (plus logKernel f).logsumexp(1L, keepdim = true)
    let f, g =
        if iterations = 0 then -(logKernel.flatten(1).logsumexp(1L, keepdim = true).unsqueeze(-1)), torch.zeros_like(logB)
        else Seq.fold sweep (torch.zeros_like(logA), torch.zeros_like(logB)) (seq { 1 .. iterations })
    let plan = (plus (plus logKernel f) g).exp().nan_to_num(nan = 0.0)
    { Plan = plan; Cost = (plan * cost).sum([| 1L; 2L |]) }
