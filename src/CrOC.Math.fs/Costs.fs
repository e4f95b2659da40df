/// The joint-space clustering cost (spec §6.4–§6.5): T_tot = T_sem + λ_pos·T_pos, then a global
/// min–max rescaling. Tokens are the 2N patches of both views of one problem.
module CrOC.Math.Costs

open TorchSharp
open CrOC.Math.Tensors

/// Semantic cost T_sem = −X·Ĉᵀ: negative cosine between the (already L2-normalised) token
/// features X (S, 2N, d) and the centroids C (S, K, d), which are normalised here.
/// Result (S, 2N, K).
let costSem (tokens: Tensor) (centroids: Tensor) : Tensor =
    -(torch.bmm(tokens, (l2normalize centroids).transpose(1, 2)))

/// Positional cost T_pos[n,k] = ‖e_n − μ_k‖₂ / max_{n',k'} ‖e_n' − μ_k'‖₂, normalised by the
/// maximum of each problem (not by an image size). Positions e (S, 2N, 2) and centroid
/// positions μ (S, K, 2) are original-image pixel coordinates (x, y). Result (S, 2N, K) in [0, 1];
/// a problem whose distances are all 0 gets 0 (not NaN).
let costPos (positions: Tensor) (centroidPositions: Tensor) : Tensor =
    let distances = (positions.unsqueeze(2) - centroidPositions.unsqueeze(1)).square().sum(-1L).sqrt() // (S, 2N, K)
    safeDivide distances (distances.amax([| 1L; 2L |], keepdim = true))

/// Rescales M to [0, 1] with ONE min and max over the whole tensor, i.e. across all S problems
/// of the batch (the official behaviour; per-problem rescaling changes the Sinkhorn sharpness).
let minMaxGlobal (cost: Tensor) : Tensor =
    let low = cost.min()
    safeDivide (cost - low) (cost.max() - low)

/// T_tot = T_sem + λ_pos·T_pos, globally min–max rescaled. Result (S, 2N, K).
let jointCost (lambdaPos: float) (tokens: Tensor) (positions: Tensor) (centroids: Tensor) (centroidPositions: Tensor) : Tensor =
    plus (costSem tokens centroids) (times lambdaPos (costPos positions centroidPositions)) |> minMaxGlobal

/// Patch-centre positions from a dense position map, as the official code does: the map
/// (B, 2, H, W) holding each pixel's original-image (x, y) is averaged over patch×patch cells.
/// Result (B, N, 2) in token order (row-major over the patch grid).
let patchPositionsFromMap (patch: int) (positionMap: Tensor) : Tensor =
    expectRank "positionMap" 4 positionMap
    let pooled = torch.nn.functional.avg_pool2d(positionMap, int64 patch, int64 patch) // (B, 2, H/p, W/p)
    pooled.flatten(2).transpose(1, 2)                                                  // (B, N, 2)
