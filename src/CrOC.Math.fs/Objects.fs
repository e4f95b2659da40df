/// Object representations C = Zᵀ W (spec §6.9): the output tokens pooled with the clustering's
/// masks, one matched pair (view 1, view 2) per valid cluster.
module CrOC.Math.Objects

open TorchSharp
open CrOC.Math.Tensors
open CrOC.Math.Clustering

/// γ: the mean, over all 2B rows, of the CLS output's L2 norm. Tokens (2B, 1+N, D) → scalar.
/// Differentiable (the student's γ is not detached).
let meanClsNorm (tokens: Tensor) : Tensor = tokens.select(1L, 0L).norm(-1, keepdim = false).mean()

/// For every valid cluster (s, k) and view m: u = Σ_n W^m[s,n,k]·Y^m_{b(s),n}, rescaled to
/// c = γ·u/‖u‖₂, with Y the final-LN patch tokens and γ the mean CLS norm of the SAME network.
/// Tokens (2B, 1+N, D), rows (view, image) → (2, V, D), row v of both views is the same cluster.
/// Use the teacher's tokens for the teacher's objects and the student's tokens (with the
/// teacher's clusters) for the student's; gradients flow through tokens and γ.
let objectVectors (clusters: Clusters) (tokens: Tensor) : Tensor =
    expectRank "tokens" 3 tokens
    let twoB, n, d = tokens.shape.[0], tokens.shape.[1] - 1L, tokens.shape.[2]
    let b, groups, kBar = twoB / 2L, int64 clusters.ProblemsPerImage, int64 clusters.KBar
    let masks = clusters.Masks.to_type(tokens.dtype)                        // (2, S, N, K̄)
    if masks.shape <> [| 2L; b * groups; n; kBar |] then
        invalidArg "tokens" (sprintf "tokens %A do not match the clusters' masks %A" tokens.shape clusters.Masks.shape)
    let patches = tokens.narrow(1L, 1L, n).view(2L, b, n, d)                // (2, B, N, D)
    let pooled =                                                            // (2, B, g, K̄, D)
        torch.einsum("vbgnk,vbnd->vbgkd", masks.view(2L, b, groups, n, kBar), patches)
    let picked = pooled.reshape(2L, -1L, d).index_select(1L, clusters.Valid) // (2, V, D)
    l2normalize picked * meanClsNorm tokens
