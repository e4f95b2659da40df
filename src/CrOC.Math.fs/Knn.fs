/// Weighted k-nearest-neighbour classification of frozen image features (DINO's protocol:
/// cosine similarity, the k most similar bank images vote with weight exp(sim / T)).
module CrOC.Math.Knn

open TorchSharp
open CrOC.Math.Tensors

/// Class scores (Q, C) of queries (Q, D) against a bank (Nb, D) with labels (Nb) int64 in [0, C).
/// Features are L2-normalised here; each query's k nearest bank rows add exp(⟨q, b⟩ / T) to their
/// class. Queries are processed in chunks of `chunk` rows to bound the (chunk, Nb) similarity matrix.
let scores (k: int) (temperature: float) (classes: int) (chunk: int) (bank: Tensor) (labels: Tensor) (queries: Tensor) : Tensor =
    use _ = torch.no_grad()
    scoped (fun scores -> [ scores ]) <| fun () -> // the normalised bank and each chunk's votes are freed
    let bank = l2normalize bank
    let k = min k (int bank.shape.[0])
    let parts =
        [| for start in 0L .. int64 chunk .. queries.shape.[0] - 1L ->
            scoped (fun votes -> [ votes ]) <| fun () ->
            let q = l2normalize (queries.narrow(0L, start, min (int64 chunk) (queries.shape.[0] - start)))
            let similarity = q.mm(bank.t())                                       // (q, Nb); mm raises where matmul aborts
            let struct (values, indices) = similarity.topk(k, dim = 1)
            let neighbours = labels.index_select(0L, indices.flatten()).reshape(indices.shape) // (q, k)
            let weights = over values temperature |> fun t -> t.exp()             // (q, k)
            let votes = torch.zeros(q.shape.[0], int64 classes, dtype = weights.dtype, device = weights.device)
            votes.scatter_add_(1L, neighbours, weights) |]
    torch.cat(parts, 0L)

/// Top-1 accuracy of class scores (Q, C) against labels (Q).
let top1 (scores: Tensor) (labels: Tensor) : float =
    use _ = torch.no_grad()
    use scope = torch.NewDisposeScope()
    scores.argmax(1L).eq(labels).to_type(torch.float64).mean().item<float>()
