// Small SVG/PNG plots for the notebooks (no plotting package needed): each returns HTML.
open System
open System.Globalization

let private f (x: float) = x.ToString("0.###", CultureInfo.InvariantCulture)

/// A heat map of a matrix (rows × columns), dark = small, bright = large, with a title.
let heatmap (title: string) (cell: int) (values: float[,]) =
    let rows, cols = Array2D.length1 values, Array2D.length2 values
    let lo, hi = Seq.min (Seq.cast<float> values), Seq.max (Seq.cast<float> values)
    let colour v =
        let t = if hi > lo then (v - lo) / (hi - lo) else 0.0
        sprintf "rgb(%d,%d,%d)" (int (255.0 * t)) (int (200.0 * t * t)) (int (90.0 * (1.0 - t)))
    let rects =
        [ for r in 0 .. rows - 1 do
            for c in 0 .. cols - 1 ->
                sprintf "<rect x='%d' y='%d' width='%d' height='%d' fill='%s'><title>%s</title></rect>" (c * cell) (r * cell + 18) cell cell (colour values.[r, c]) (f values.[r, c]) ]
    sprintf "<svg xmlns='http://www.w3.org/2000/svg' width='%d' height='%d'><text x='0' y='13' font-size='12'>%s (min %s, max %s)</text>%s</svg>"
        (max 220 (cols * cell)) (rows * cell + 20) title (f lo) (f hi) (String.concat "" rects)

/// A line chart of named series of (x, y) points, y on a log scale when `logY`.
let lines (title: string) (logY: bool) (series: (string * (float * float) list) list) =
    let w, h, m = 420.0, 220.0, 40.0
    let ty y = if logY then log10 (max y 1e-16) else y
    let points = series |> List.collect snd
    let x0, x1 = points |> List.map fst |> List.min, points |> List.map fst |> List.max
    let y0, y1 = points |> List.map (snd >> ty) |> List.min, points |> List.map (snd >> ty) |> List.max
    let sx x = m + (w - 2.0 * m) * (x - x0) / max 1e-12 (x1 - x0)
    let sy y = h - m + (2.0 * m - h) * (ty y - y0) / max 1e-12 (y1 - y0)
    let palette = [| "#e6194b"; "#3cb44b"; "#4363d8"; "#f58231"; "#911eb4"; "#46f0f0" |]
    let paths =
        series |> List.mapi (fun i (name, pts) ->
            let d = pts |> List.map (fun (x, y) -> sprintf "%s,%s" (f (sx x)) (f (sy y))) |> String.concat " "
            sprintf "<polyline fill='none' stroke='%s' stroke-width='2' points='%s'/><text x='%s' y='%d' font-size='11' fill='%s'>%s</text>" palette.[i % 6] d (f (w - m + 4.0)) (20 + 14 * i) palette.[i % 6] name)
    sprintf "<svg xmlns='http://www.w3.org/2000/svg' width='%d' height='%d'><text x='4' y='13' font-size='12'>%s</text><line x1='%s' y1='%s' x2='%s' y2='%s' stroke='#888'/><line x1='%s' y1='%s' x2='%s' y2='%s' stroke='#888'/><text x='%s' y='%s' font-size='10'>%s</text><text x='%s' y='%s' font-size='10'>%s</text><text x='2' y='%s' font-size='10'>%s</text><text x='2' y='%s' font-size='10'>%s</text>%s</svg>"
        (int w + 110) (int h) title (f m) (f (h - m)) (f (w - m)) (f (h - m)) (f m) (f (h - m)) (f m) (f m)
        (f m) (f (h - m + 14.0)) (f x0) (f (w - m)) (f (h - m + 14.0)) (f x1)
        (f (h - m)) (if logY then "1e" + f y0 else f y0) (f (m + 4.0)) (if logY then "1e" + f y1 else f y1) (String.concat "" paths)

/// An ImageSharp image as an inline PNG.
let png (image: SixLabors.ImageSharp.Image) =
    use stream = new IO.MemoryStream()
    SixLabors.ImageSharp.ImageExtensions.SaveAsPng(image, stream)
    sprintf "<img src='data:image/png;base64,%s'/>" (Convert.ToBase64String(stream.ToArray()))

/// Several HTML fragments side by side.
let row (parts: string list) = "<div style='display:flex;gap:16px;align-items:flex-start'>" + String.concat "" parts + "</div>"

/// A planar [0, 1] RGB image (CrOC.Data.RgbImage) as an ImageSharp image, scaled up `scale` times,
/// with optional rectangle outlines (left, top, width, height, colour) in source pixels.
let picture (image: CrOC.Data.RgbImage) (scale: int) (boxes: (float * float * float * float * SixLabors.ImageSharp.PixelFormats.Rgb24) list) =
    let out = new SixLabors.ImageSharp.Image<SixLabors.ImageSharp.PixelFormats.Rgb24>(image.Width * scale, image.Height * scale)
    for y in 0 .. out.Height - 1 do
        for x in 0 .. out.Width - 1 do
            let v c = byte (Math.Clamp(image.[c, y / scale, x / scale] * 255.0f, 0.0f, 255.0f))
            out.[x, y] <- SixLabors.ImageSharp.PixelFormats.Rgb24(v 0, v 1, v 2)
    for left, top, width, height, colour in boxes do
        let x0, y0 = int (left * float scale), int (top * float scale)
        let x1, y1 = min (out.Width - 1) (int ((left + width) * float scale)), min (out.Height - 1) (int ((top + height) * float scale))
        for x in x0 .. x1 do
            for dy in 0 .. 1 do
                out.[x, min (out.Height - 1) (y0 + dy)] <- colour
                out.[x, max 0 (y1 - dy)] <- colour
        for y in y0 .. y1 do
            for dx in 0 .. 1 do
                out.[min (out.Width - 1) (x0 + dx), y] <- colour
                out.[max 0 (x1 - dx), y] <- colour
    out
