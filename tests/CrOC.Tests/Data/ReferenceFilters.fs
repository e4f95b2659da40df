/// The scalar filters and colour operations of earlier releases (horizontal-then-vertical resampling,
/// column-wise blur, pixel-by-pixel colour formulas), kept as references for the vectorised ones in
/// CrOC.Data.
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

let private clamp01 (x: float32) = System.Math.Clamp(x, 0.0f, 1.0f)
let private luma (r: float32) (g: float32) (b: float32) = 0.299f * r + 0.587f * g + 0.114f * b

let brightness (image: RgbImage) (factor: float32) =
    let p = image.Pixels
    for i in 0 .. p.Length - 1 do p.[i] <- clamp01 (p.[i] * factor)

let contrast (image: RgbImage) (factor: float32) =
    let p, n = image.Pixels, image.Plane
    let mutable sum = 0.0
    for i in 0 .. n - 1 do sum <- sum + float (luma p.[i] p.[n + i] p.[2 * n + i])
    let mean = float32 (sum / float n)
    for i in 0 .. p.Length - 1 do p.[i] <- clamp01 (mean + factor * (p.[i] - mean))

let saturation (image: RgbImage) (factor: float32) =
    let p, n = image.Pixels, image.Plane
    for i in 0 .. n - 1 do
        let gray = luma p.[i] p.[n + i] p.[2 * n + i]
        for c in 0 .. 2 do p.[c * n + i] <- clamp01 (gray + factor * (p.[c * n + i] - gray))

/// HSV hue rotation by `shift` turns; grays unchanged.
let hue (image: RgbImage) (shift: float32) =
    let p, n = image.Pixels, image.Plane
    for i in 0 .. n - 1 do
        let r, g, b = p.[i], p.[n + i], p.[2 * n + i]
        let top = System.Math.Max(r, System.Math.Max(g, b))
        let bottom = System.Math.Min(r, System.Math.Min(g, b))
        let delta = top - bottom
        if delta > 0.0f then
            let h = if top = r then (g - b) / delta elif top = g then 2.0f + (b - r) / delta else 4.0f + (r - g) / delta
            let h = h / 6.0f + shift
            let h = h - System.MathF.Floor h
            let s, v = delta / top, top
            let sector = h * 6.0f
            let f = sector - System.MathF.Floor sector
            let pp, q, t = v * (1.0f - s), v * (1.0f - s * f), v * (1.0f - s * (1.0f - f))
            let r', g', b' =
                match int sector % 6 with
                | 0 -> v, t, pp
                | 1 -> q, v, pp
                | 2 -> pp, v, t
                | 3 -> pp, q, v
                | 4 -> t, pp, v
                | _ -> v, pp, q
            p.[i] <- r'
            p.[n + i] <- g'
            p.[2 * n + i] <- b'

let grayscale (image: RgbImage) =
    let p, n = image.Pixels, image.Plane
    for i in 0 .. n - 1 do
        let gray = luma p.[i] p.[n + i] p.[2 * n + i]
        p.[i] <- gray
        p.[n + i] <- gray
        p.[2 * n + i] <- gray

let solarize (image: RgbImage) =
    let p = image.Pixels
    for i in 0 .. p.Length - 1 do if p.[i] >= 128.0f / 255.0f then p.[i] <- 1.0f - p.[i]

let normalize (image: RgbImage) =
    let p, n = image.Pixels, image.Plane
    for c in 0 .. 2 do
        for i in c * n .. (c + 1) * n - 1 do p.[i] <- (p.[i] - ColorAugment.Mean.[c]) / ColorAugment.Std.[c]

/// ColorJitter as ColorAugment.Jitter draws it (order, then the four factors), with the scalar operations.
let jitter (image: RgbImage) (random: SampleRandom) (b: float) (c: float) (s: float) (h: float) =
    let order = random.Permutation 4
    let fb = random.Uniform(max 0.0 (1.0 - b), 1.0 + b)
    let fc = random.Uniform(max 0.0 (1.0 - c), 1.0 + c)
    let fs = random.Uniform(max 0.0 (1.0 - s), 1.0 + s)
    let fh = random.Uniform(-h, h)
    for op in order do
        match op with
        | 0 -> brightness image (float32 fb)
        | 1 -> contrast image (float32 fc)
        | 2 -> saturation image (float32 fs)
        | _ -> hue image (float32 fh)
