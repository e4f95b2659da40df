/// Object representations C = Zᵀ W (spec §6.9): the output tokens pooled with the clustering's
/// masks, one matched pair (view 1, view 2) per valid cluster (with fixed shapes: per column,
/// weighted by its validity).
module CrOC.Math.Objects

open TorchSharp
open CrOC.Math.Tensors
open CrOC.Math.Clustering

/// γ: the mean, over all 2B rows, of the CLS output's L2 norm. Tokens (2B, 1+N, D) → scalar.
/// Differentiable (the student's γ is not detached).
let meanClsNorm (tokens: Tensor) : Tensor = tokens.select(1L, 0L).norm(-1, keepdim = false).mean()

/// Which pooled clusters become rows of the objects, and so of L_obj and the object centre.
type ObjectRows =
    /// The V valid clusters only, by their flat indices s·Columns + k (V) (`Dynamic` shapes).
    | Listed of valid: Tensor
    /// Every cluster, each with its validity 0/1 as a weight, (S·Columns) (`Fixed` shapes).
    | Weighted of validity: Tensor

/// The rows of `clusters` for their shapes: `Dynamic` lists the valid set (a host read of V),
/// `Fixed` weighs every column (no host read).
let rowsOf (clusters: Clusters) (shapes: ObjectShapes) : ObjectRows =
    match shapes with
    | Dynamic -> Listed clusters.Valid
    | Fixed -> Weighted(clusters.Validity.flatten())

/// |V| as a 0-d float64 tensor on the rows' device (no host read).
let validCount (rows: ObjectRows) : Tensor =
    match rows with
    | Listed valid -> filledOn valid.device torch.float64 (float valid.shape.[0])
    | Weighted validity -> validity.sum().to_type(torch.float64)

/// For each cluster (s, k) of `rows` and view m: u = Σ_n W^m[s,n,k]·Y^m_{b(s),n}, rescaled to
/// c = γ·u/‖u‖₂, with Y the final-LN patch tokens and γ the mean CLS norm of the SAME network.
/// Tokens (2B, 1+N, D), rows (view, image) → (2, R, D), row r of both views the same cluster
/// (R = V listed, or S·Columns weighted: an empty cluster pools to 0 and stays 0).
/// Use the teacher's tokens for the teacher's objects and the student's tokens (with the
/// teacher's clusters) for the student's; gradients flow through tokens and γ.
let objectVectorsOf (rows: ObjectRows) (clusters: Clusters) (tokens: Tensor) : Tensor =
    expectRank "tokens" 3 tokens
    let twoB, n, d = tokens.shape.[0], tokens.shape.[1] - 1L, tokens.shape.[2]
    let b, groups, columns = twoB / 2L, int64 clusters.ProblemsPerImage, int64 clusters.Columns
    let masks = clusters.Masks.to_type(tokens.dtype)                        // (2, S, N, Columns)
    if masks.shape <> [| 2L; b * groups; n; columns |] then
        invalidArg "tokens" (sprintf "tokens %A do not match the clusters' masks %A" tokens.shape clusters.Masks.shape)
    let patches = tokens.narrow(1L, 1L, n).view(2L, b, n, d)                // (2, B, N, D)
    let pooled =                                                            // (2, S·Columns, D)
        torch.einsum("vbgnk,vbnd->vbgkd", masks.view(2L, b, groups, n, columns), patches).reshape(2L, -1L, d)
    let picked = match rows with Listed valid -> pooled.index_select(1L, valid) | Weighted _ -> pooled
    l2normalize picked * meanClsNorm tokens

/// The objects of the valid clusters only (`Listed`), (2, V, D).
let objectVectors (clusters: Clusters) (tokens: Tensor) : Tensor = objectVectorsOf (Listed clusters.Valid) clusters tokens
