/// Work over many native buffers, split into chunks and spread over threads: the scheduling shared
/// by the one-pass kernels (`AdamWKernel`, `SquaredNorms`).
module CrOC.Math.ParallelChunks

open System.Threading.Tasks

/// Elements per work item: large enough to amortise scheduling, small enough to balance threads.
let private size = 1L <<< 18

/// (buffer index, first element, element count) of every chunk: buffers in order, each one's
/// chunks in order; empty buffers give none.
let split (counts: int64 list) : (int * int64 * int64)[] =
    [| for b, count in List.indexed counts do for start in 0L .. size .. count - 1L -> b, start, min size (count - start) |]

/// Runs `body k chunk` for every chunk k of `chunks` on up to `threads` threads.
let run (threads: int) (chunks: (int * int64 * int64)[]) (body: int -> int * int64 * int64 -> unit) : unit =
    Parallel.For(0, chunks.Length, ParallelOptions(MaxDegreeOfParallelism = max 1 threads), fun k -> body k chunks.[k]) |> ignore
