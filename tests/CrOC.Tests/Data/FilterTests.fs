module CrOC.Tests.FilterTests

open Expecto
open CrOC.Data

let randomImage (seed: int) (width: int) (height: int) =
    let rng = System.Random seed
    RgbImage(width, height, Array.init (3 * width * height) (fun _ -> float32 (rng.NextDouble())))

let maxDifference (a: RgbImage) (b: RgbImage) = Array.map2 (fun (x: float32) y -> abs (float x - float y)) a.Pixels b.Pixels |> TestUtil.worstError

/// A view made as ViewAugmentation.Apply makes it, with the scalar filters and colour operations.
let referenceView (spec: ViewSpec) (image: RgbImage) (random: SampleRandom) =
    let box = RandomResizedCrop.Sample(random, image.Width, image.Height, spec.Scale, spec.AspectRatio)
    let view = ReferenceFilters.resizeBox image box.Left box.Top box.Width box.Height spec.Size spec.Size
    let flipped = random.Chance(spec.FlipProbability)
    if flipped then ColorAugment.FlipHorizontal(view)
    if random.Chance(spec.JitterProbability) then ReferenceFilters.jitter view random spec.Brightness spec.Contrast spec.Saturation spec.Hue
    if random.Chance(spec.GrayscaleProbability) then ReferenceFilters.grayscale view
    if random.Chance(spec.BlurProbability) then (let struct (low, high) = spec.Sigma in ReferenceFilters.gaussianBlur view (random.Uniform(low, high)))
    if random.Chance(spec.SolarizeProbability) then ReferenceFilters.solarize view
    ReferenceFilters.normalize view
    view.Pixels, CropBox(box.Top, box.Left, box.Height, box.Width, flipped)

let tests =
    testList "vectorised filters" [
        test "resampling equals the scalar horizontal-first loop within 1e-5 (boxes inside, at and over the edges; up and down)" {
            let image = randomImage 1 97 61
            let boxes = [ 0.0, 0.0, 97.0, 61.0; 10.3, 5.7, 40.2, 33.9; 60.0, 30.0, 37.0, 31.0; -3.0, -2.0, 20.0, 10.0; 90.5, 55.5, 6.5, 5.5 ]
            for left, top, width, height in boxes do
                for outWidth, outHeight in [ 224, 224; 33, 17; 5, 9; 1, 1 ] do
                    let actual = Resampling.ResizeBox(image, left, top, width, height, outWidth, outHeight)
                    let expected = ReferenceFilters.resizeBox image left top width height outWidth outHeight
                    Expect.isLessThan (maxDifference actual expected) 1e-5 (sprintf "box %A → %dx%d" (left, top, width, height) outWidth outHeight)
        }

        test "Gaussian blur equals the scalar row/column loops bit for bit (σ 0.1 to 2, images narrower than the kernel)" {
            for sigma in [ 0.1; 0.7; 1.3; 2.0 ] do
                for width, height in [ 224, 224; 31, 7; 3, 2; 1, 1 ] do
                    let actual = randomImage 2 width height
                    let expected = randomImage 2 width height
                    ColorAugment.GaussianBlur(actual, sigma)
                    ReferenceFilters.gaussianBlur expected sigma
                    Expect.sequenceEqual actual.Pixels expected.Pixels (sprintf "σ %.1f, %dx%d" sigma width height)
        }

        test "colour operations equal the scalar formulas bit for bit (images with and without a partial last vector, grays, all hue sectors)" {
            let operations : (string * (RgbImage -> unit) * (RgbImage -> unit)) list =
                [ "brightness 1.3", (fun i -> ColorAugment.Brightness(i, 1.3f)), (fun i -> ReferenceFilters.brightness i 1.3f)
                  "brightness 0.6", (fun i -> ColorAugment.Brightness(i, 0.6f)), (fun i -> ReferenceFilters.brightness i 0.6f)
                  "contrast 1.4", (fun i -> ColorAugment.Contrast(i, 1.4f)), (fun i -> ReferenceFilters.contrast i 1.4f)
                  "contrast 0.7", (fun i -> ColorAugment.Contrast(i, 0.7f)), (fun i -> ReferenceFilters.contrast i 0.7f)
                  "saturation 1.2", (fun i -> ColorAugment.Saturation(i, 1.2f)), (fun i -> ReferenceFilters.saturation i 1.2f)
                  "saturation 0", (fun i -> ColorAugment.Saturation(i, 0.0f)), (fun i -> ReferenceFilters.saturation i 0.0f)
                  "grayscale", ColorAugment.Grayscale, ReferenceFilters.grayscale
                  "solarize", ColorAugment.Solarize, ReferenceFilters.solarize
                  "normalize", ColorAugment.Normalize, ReferenceFilters.normalize ]
                @ [ for shift in [ -0.1f; -0.03f; 0.0f; 0.07f; 0.1f; 0.5f; -0.5f ] ->
                        sprintf "hue %g" shift, (fun i -> ColorAugment.Hue(i, shift)), (fun i -> ReferenceFilters.hue i shift) ]
            for width, height in [ 224, 224; 31, 7; 3, 2; 1, 1 ] do
                let source = randomImage 4 width height
                // some grays and some exact extremes (hue undefined; saturation and value at the bounds)
                for i in 0 .. 5 .. source.Plane - 1 do
                    source.Pixels.[source.Plane + i] <- source.Pixels.[i]
                    source.Pixels.[2 * source.Plane + i] <- source.Pixels.[i]
                for i in 2 .. 7 .. source.Plane - 1 do source.Pixels.[i] <- 1.0f
                for i in 3 .. 11 .. source.Plane - 1 do source.Pixels.[2 * source.Plane + i] <- 0.0f
                for name, vectorised, scalar in operations do
                    let actual = RgbImage(width, height, Array.copy source.Pixels)
                    let expected = RgbImage(width, height, Array.copy source.Pixels)
                    vectorised actual
                    scalar expected
                    Expect.sequenceEqual actual.Pixels expected.Pixels (sprintf "%s, %dx%d" name width height)
        }

        test "colour jitter equals the scalar jitter bit for bit over many random draws" {
            for index in 0L .. 39L do
                let actual = randomImage 5 29 13
                let expected = randomImage 5 29 13
                ColorAugment.Jitter(actual, SampleRandom(3L, 0L, index, 1L), 0.4, 0.4, 0.2, 0.1)
                ReferenceFilters.jitter expected (SampleRandom(3L, 0L, index, 1L)) 0.4 0.4 0.2 0.1
                Expect.sequenceEqual actual.Pixels expected.Pixels (sprintf "draw %d" index)
        }

        test "CrOC's two views: the same crops as with the scalar filters, normalised pixels within 1e-4" {
            let image = randomImage 3 160 120
            let spec = MultiCropSpec.Croc(64, 8)
            for index in 0L .. 19L do
                let views = spec.Apply(image, 7L, 2L, index)
                for v, viewSpec in [ 0, spec.Global1; 1, spec.Global2 ] do
                    let pixels, box = referenceView viewSpec image (SampleRandom(7L, 2L, index, int64 (v + 1)))
                    Expect.equal views.[v].Box box (sprintf "image %d view %d: crop" index v)
                    let worst = Array.map2 (fun (a: float32) b -> abs (float a - float b)) views.[v].Pixels pixels |> TestUtil.worstError
                    Expect.isLessThan worst 1e-4 (sprintf "image %d view %d: pixels (normalised: 1e-5 / std 0.224 ≈ 4.5e-5)" index v)
        }
    ]
