/// The scalar filters of the previous release (horizontal-then-vertical resampling, column-wise blur),
/// kept as references for the vectorised ones in CrOC.Data.
module CrOC.Tests.ReferenceFilters

open CrOC.Data

let private cubic (x: float) =
    let a = -0.5
    let x = abs x
    if x < 1.0 then ((a + 2.0) * x - (a + 3.0)) * x * x + 1.0
    elif x < 2.0 then (((x - 5.0) * x + 8.0) * x - 4.0) * a
    else 0.0

/// First input index and normalised float32 weights of each output sample (PIL's antialiased bicubic).
let coefficients (boxStart: float) (boxLength: float) (inSize: int) (outSize: int) =
    let scale = boxLength / float outSize
    let filterScale = max scale 1.0
    let support = 2.0 * filterScale
    [| for o in 0 .. outSize - 1 ->
        let center = boxStart + (float o + 0.5) * scale
        let lo = max (int (center - support + 0.5)) 0
        let hi = min (int (center + support + 0.5)) inSize
        let w = Array.init (max (hi - lo) 1) (fun i -> if i < hi - lo then cubic ((float (i + lo) - center + 0.5) / filterScale) else 0.0)
        let total = Array.sum w
        min lo (inSize - 1), w |> Array.map (fun v -> float32 (if total <> 0.0 then v / total else 0.0)) |]

/// Horizontal pass over the needed rows, then vertical, float32 sums in tap order, clipped to [0, 1].
let resizeBox (image: RgbImage) (left: float) (top: float) (width: float) (height: float) (outWidth: int) (outHeight: int) =
    let xc = coefficients left width image.Width outWidth
    let yc = coefficients top height image.Height outHeight
    let output = RgbImage(outWidth, outHeight)
    for c in 0 .. 2 do
        let horizontal = Array2D.zeroCreate<float32> image.Height outWidth
        for y in 0 .. image.Height - 1 do
            for o in 0 .. outWidth - 1 do
                let start, w = xc.[o]
                let mutable sum = 0.0f
                for i in 0 .. w.Length - 1 do sum <- sum + w.[i] * image.[c, y, start + i]
                horizontal.[y, o] <- sum
        for o in 0 .. outHeight - 1 do
            let start, w = yc.[o]
            for x in 0 .. outWidth - 1 do
                let mutable sum = 0.0f
                for i in 0 .. w.Length - 1 do sum <- sum + w.[i] * horizontal.[start + i, x]
                output.[c, o, x] <- max 0.0f (min 1.0f sum)
    output

/// PIL-style Gaussian blur (radius ⌈3σ⌉, edges clamped), rows then columns, in place.
let gaussianBlur (image: RgbImage) (sigma: float) =
    let radius = max 1 (int (ceil (3.0 * sigma)))
    let raw = Array.init (2 * radius + 1) (fun i -> float32 (exp (-0.5 * float ((i - radius) * (i - radius)) / (sigma * sigma))))
    let total = raw |> Array.sumBy float
    let kernel = raw |> Array.map (fun k -> k / float32 total)
    let w, h = image.Width, image.Height
    for c in 0 .. 2 do
        for y in 0 .. h - 1 do
            let line = Array.init w (fun x ->
                let mutable sum = 0.0f
                for k in -radius .. radius do sum <- sum + kernel.[k + radius] * image.[c, y, max 0 (min (w - 1) (x + k))]
                sum)
            for x in 0 .. w - 1 do image.[c, y, x] <- line.[x]
        for x in 0 .. w - 1 do
            let line = Array.init h (fun y ->
                let mutable sum = 0.0f
                for k in -radius .. radius do sum <- sum + kernel.[k + radius] * image.[c, max 0 (min (h - 1) (y + k)), x]
                sum)
            for y in 0 .. h - 1 do image.[c, y, x] <- line.[y]
