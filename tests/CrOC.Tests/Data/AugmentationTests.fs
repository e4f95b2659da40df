/// The augmentation as spec §9 and hand-worked numbers define it: crop sampling, the views'
/// parameters, colour operations, flips, normalisation, patch centres and mask resizing. (The
/// vectorised filters are compared with scalar references in FilterTests; those share the constants
/// and the sampler, so these tests pin them.)
module CrOC.Tests.AugmentationTests

open System
open Expecto
open CrOC.Data

let tests =
    testList "augmentation" [
        test "crop sampler: the aspect ratio is log-uniform (as likely above 1 as below), not uniform on the ratio range" {
            // log r ~ U(log 3/4, log 4/3) is symmetric about 0, so P(w > h) = P(w < h); a ratio uniform on
            // [3/4, 4/3] would give P(r > 1) = (4/3 − 1) / (4/3 − 3/4) = 4/7 ≈ 0.571. Area ≤ 1/2 of 1000²: no try is rejected.
            let mutable wider, taller = 0, 0
            for i in 0 .. 3999 do
                let box = RandomResizedCrop.Sample(SampleRandom(2L, 0L, int64 i), 1000, 1000, struct (0.25, 0.5), struct (3.0 / 4.0, 4.0 / 3.0))
                if box.Width > box.Height then wider <- wider + 1 elif box.Width < box.Height then taller <- taller + 1
            let share = float wider / float (wider + taller)
            Expect.isLessThan (abs (share - 0.5)) 0.03 (sprintf "share of wide crops %.3f (1/2 expected, 4/7 for a uniform ratio)" share)
        }

        test "crop sampler: every offset that keeps the box inside is drawn, the last one included, also for a box as wide as the image" {
            // 100×100, area 1/4, ratio 1: a 50×50 box, top and left uniform on {0, …, 50}.
            let tops, lefts = Collections.Generic.HashSet<float>(), Collections.Generic.HashSet<float>()
            for i in 0 .. 1999 do
                let box = RandomResizedCrop.Sample(SampleRandom(3L, 0L, int64 i), 100, 100, struct (0.25, 0.25), struct (1.0, 1.0))
                Expect.equal (box.Width, box.Height) (50.0, 50.0) "50 × 50"
                tops.Add box.Top |> ignore
                lefts.Add box.Left |> ignore
            Expect.equal (Set.ofSeq tops) (set [ 0.0 .. 50.0 ]) "tops 0..50"
            Expect.equal (Set.ofSeq lefts) (set [ 0.0 .. 50.0 ]) "lefts 0..50"
            // 200×100, area 1/2, ratio 4: w = √(10000·4) = 200, the image's width (a fit: w ≤ width), h = 50,
            // top uniform on {0, …, 50} (the centre fallback would always give 25).
            let tops = Collections.Generic.HashSet<float>()
            for i in 0 .. 1999 do
                let box = RandomResizedCrop.Sample(SampleRandom(4L, 0L, int64 i), 200, 100, struct (0.5, 0.5), struct (4.0, 4.0))
                Expect.equal (box.Left, box.Width, box.Height) (0.0, 200.0, 50.0) "the full width, 50 rows"
                tops.Add box.Top |> ignore
            Expect.equal (Set.ofSeq tops) (set [ 0.0 .. 50.0 ]) "tops 0..50"
        }

        test "crop sampler: 10 tries before the centre crop (a try fitting with probability 1/2 falls back 2^-10 of the time)" {
            // 100×100, ratio 1, area fraction U(0.1, 1.9): a try fits iff the fraction ≤ 1 (probability 1/2).
            // The whole image comes from the fallback (2^-10 ≈ 0.1%) or a fitting fraction ≥ 0.990 (1.1% of fits);
            // with a single try it would be ≈ 50%.
            let mutable whole = 0
            for i in 0 .. 1999 do
                let box = RandomResizedCrop.Sample(SampleRandom(5L, 0L, int64 i), 100, 100, struct (0.1, 1.9), struct (1.0, 1.0))
                if box.Width = 100.0 then whole <- whole + 1
            Expect.isLessThan (float whole / 2000.0) 0.05 (sprintf "%d of 2000 crops are the whole image" whole)
        }

        test "CrOC's views have the spec's parameters (§9): 224 px, patch 16, scale (0.25, 1), ratio (3/4, 4/3), flip 0.5, jitter (0.4, 0.4, 0.2, 0.1) p 0.8, grayscale 0.2, σ U(0.1, 2), blur 1.0 / 0.1, solarise 0 / 0.2" {
            let spec = MultiCropSpec.Croc()
            for v in [ spec.Global1; spec.Global2 ] do
                Expect.equal (v.Size, v.Patch, v.Scale, v.AspectRatio) (224, 16, struct (0.25, 1.0), struct (3.0 / 4.0, 4.0 / 3.0)) "crop"
                Expect.equal (v.FlipProbability, v.JitterProbability, v.GrayscaleProbability) (0.5, 0.8, 0.2) "probabilities"
                Expect.equal (v.Brightness, v.Contrast, v.Saturation, v.Hue) (0.4, 0.4, 0.2, 0.1) "jitter strengths"
                Expect.equal v.Sigma (struct (0.1, 2.0)) "blur σ range"
            Expect.equal (spec.Global1.BlurProbability, spec.Global1.SolarizeProbability) (1.0, 0.0) "view 1: blur always, no solarisation"
            Expect.equal (spec.Global2.BlurProbability, spec.Global2.SolarizeProbability) (0.1, 0.2) "view 2: blur 0.1, solarisation 0.2"
        }

        test "solarise inverts values from 128/255 up (PIL, threshold 128) and keeps those below" {
            let values = [| 0.0f; 127.0f / 255.0f; 128.0f / 255.0f; 200.0f / 255.0f; 1.0f |]
            let image = RgbImage(values.Length, 1, Array.concat [ values; values; values ])
            ColorAugment.Solarize(image)
            let expected = [| 0.0; 127.0 / 255.0; 127.0 / 255.0; 55.0 / 255.0; 0.0 |]
            for c in 0 .. 2 do
                for x in 0 .. values.Length - 1 do
                    Expect.floatClose { absolute = 1e-6; relative = 0.0 } (float image.[c, 0, x]) expected.[x] (sprintf "channel %d, value %d/255" c (int (round (float values.[x] * 255.0))))
        }

        test "hue rotation: black, white and gray stay as they are; pure red turned by 1/3 is pure green, by −1/3 pure blue" {
            // pixels: black, white, mid-gray, red (planar R, G, B)
            let source = [| 0.0f; 1.0f; 0.5f; 1.0f;   0.0f; 1.0f; 0.5f; 0.0f;   0.0f; 1.0f; 0.5f; 0.0f |]
            for shift, (r, g, b) in [ 1.0f / 3.0f, (0.0, 1.0, 0.0); -1.0f / 3.0f, (0.0, 0.0, 1.0); 0.5f, (0.0, 1.0, 1.0) ] do
                let image = RgbImage(4, 1, Array.copy source)
                ColorAugment.Hue(image, shift)
                for x in 0 .. 2 do
                    for c in 0 .. 2 do
                        Expect.equal image.[c, 0, x] source.[c * 4 + x] (sprintf "shift %g: gray pixel %d, channel %d unchanged" shift x c)
                let close = Expect.floatClose { absolute = 1e-5; relative = 0.0 }
                close (float image.[0, 0, 3]) r (sprintf "shift %g: red" shift)
                close (float image.[1, 0, 3]) g (sprintf "shift %g: green" shift)
                close (float image.[2, 0, 3]) b (sprintf "shift %g: blue" shift)
        }

        test "normalisation uses ImageNet's mean (0.485, 0.456, 0.406) and std (0.229, 0.224, 0.225) per channel" {
            let image = RgbImage(2, 1, [| 0.485f; 1.0f;   0.456f; 1.0f;   0.406f; 0.0f |])
            ColorAugment.Normalize(image)
            let expected = [| 0.0; (1.0 - 0.485) / 0.229;   0.0; (1.0 - 0.456) / 0.224;   0.0; (0.0 - 0.406) / 0.225 |]
            Array.iteri2 (fun i (a: float32) e -> Expect.floatClose { absolute = 1e-5; relative = 1e-5 } (float a) e (sprintf "value %d" i)) image.Pixels expected
        }

        test "a horizontal flip mirrors every row of all three channels" {
            let width, height = 5, 3
            let image = RgbImage(width, height, Array.init (3 * width * height) float32)
            ColorAugment.FlipHorizontal(image)
            for c in 0 .. 2 do
                for y in 0 .. height - 1 do
                    for x in 0 .. width - 1 do
                        Expect.equal image.[c, y, x] (float32 (c * width * height + y * width + width - 1 - x)) (sprintf "channel %d, (%d, %d)" c y x)
        }

        test "colour jitter draws the brightness factor from [max(0, 1 − b), 1 + b]: never negative, even for b > 1" {
            // b = 3 (contrast, saturation and hue off): a factor in [0, 4] keeps a 0.5 gray above 0 (0 has
            // probability 0); a factor from [−2, 4] would blacken a third of the draws.
            for index in 0L .. 59L do
                let image = RgbImage(4, 4, Array.create 48 0.5f)
                ColorAugment.Jitter(image, SampleRandom(8L, 0L, index), 3.0, 0.0, 0.0, 0.0)
                Expect.isTrue (image.Pixels |> Array.forall (fun v -> v > 0.0f)) (sprintf "draw %d: %A" index image.Pixels.[0])
        }

        test "the views of a sample are drawn independently: two global crops and four local crops, all different" {
            let views = MultiCropSpec.Croc(32, 8).WithLocals(4, 16).Apply(RgbImage(200, 160), 1L, 0L, 0L)
            let boxes = views |> Array.map (fun v -> v.Box)
            Expect.equal (boxes.[2..] |> Array.distinct |> Array.length) 4 (sprintf "four different local crops: %A" boxes.[2..])
            Expect.notEqual boxes.[0] boxes.[1] "two different global crops"
        }

        test "patch centres by hand: a 6×6 box at (left 10, top 20) as a 6 px view of 3 px patches; flipped, the columns swap" {
            // x = 10 + (3c + 1.5)·6/6 − ½ = 11 + 3c, y = 20 + (3r + 1.5) − ½ = 21 + 3r
            let plain = PatchPositions.Compute(CropBox(20.0, 10.0, 6.0, 6.0, false), 6, 3)
            Expect.sequenceEqual plain [| 11.0f; 21.0f; 14.0f; 21.0f; 11.0f; 24.0f; 14.0f; 24.0f |] "row-major (x, y)"
            // a 12 wide × 6 high box: x = 10 + (3c + 1.5)·2 − ½ = 12.5 + 6c; flipped, token c shows column 1 − c
            let flipped = PatchPositions.Compute(CropBox(20.0, 10.0, 6.0, 12.0, true), 6, 3)
            Expect.sequenceEqual flipped [| 18.5f; 21.0f; 12.5f; 21.0f; 18.5f; 24.0f; 12.5f; 24.0f |] "flipped"
        }

        test "mask resizing takes the label under each output pixel's centre, in both directions; a mask flip mirrors every row" {
            // 4 → 2: output centres at (o + ½)·2 = 1 and 3
            Expect.sequenceEqual (MaskResize.Resize([| 0uy; 1uy; 2uy; 3uy |], 4, 1, 2, 1)) [| 1uy; 3uy |] "a row"
            Expect.sequenceEqual (MaskResize.Resize([| 0uy; 1uy; 2uy; 3uy |], 1, 4, 1, 2)) [| 1uy; 3uy |] "a column"
            Expect.sequenceEqual (MaskResize.Flip([| 0uy; 1uy; 2uy; 3uy; 4uy; 5uy |], 2)) [| 1uy; 0uy; 3uy; 2uy; 5uy; 4uy |] "three rows of two"
        }
    ]
