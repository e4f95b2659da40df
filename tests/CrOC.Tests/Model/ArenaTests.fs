module CrOC.Tests.ArenaTests

open Expecto
open TorchSharp
open CrOC.Math
open CrOC.Math.Tensors
open CrOC.Tests.TestUtil

/// Sizes that are not multiples of any SIMD width, and one larger than a kernel chunk.
let sizes = [ 7; 1; 33; 300_001 ]

/// AdamW in float64 from the formula (PyTorch's update rule), one parameter.
let referenceStep (p: float[]) (m: float[]) (v: float[]) (g: float[]) (step: int) lr wd =
    let b1, b2, eps = 0.9, 0.999, 1e-8
    for i in 0 .. p.Length - 1 do
        p.[i] <- p.[i] * (1.0 - lr * wd)
        m.[i] <- b1 * m.[i] + (1.0 - b1) * g.[i]
        v.[i] <- b2 * v.[i] + (1.0 - b2) * g.[i] * g.[i]
        p.[i] <- p.[i] - lr * (m.[i] / (1.0 - b1 ** float step)) / (sqrt (v.[i] / (1.0 - b2 ** float step)) + eps)

let tests =
    testList "arenas" [
        test "one arena holds one dtype on one device (mixed ones are refused, not written as the first's bits); element addresses are 64-bit" {
            use _ = torch.NewDisposeScope()
            Expect.throwsT<System.ArgumentException> (fun () -> Arena.zerosLike [ "a", torch.zeros(4L, dtype = torch.float64); "b", torch.zeros(4L) ] |> ignore) "float64 then float32"
            Expect.equal (Arena.float32At 0n ((1L <<< 31) + 8L)) (nativeint ((1L <<< 33) + 32L)) "element 2³¹ + 8 lies 8 GiB + 32 bytes on, not before the buffer"
        }

        test "adopt lays tensors out in one buffer: same names, shapes, values, leaves that take gradients; spanning sees it" {
            use _ = torch.NewDisposeScope()
            let originals = [ for i, n in List.indexed sizes -> sprintf "t%d" i, torch.randn(int64 n).requires_grad_(i <> 1) ]
            let views = Arena.adopt originals
            Expect.equal (List.map fst views) (List.map fst originals) "names in order"
            for (_, a), (_, b) in List.zip views originals do
                Expect.sequenceEqual (valuesOf a) (valuesOf b) "values copied"
                Expect.equal a.requires_grad b.requires_grad "requires_grad kept"
            let tensors = List.map snd views
            Expect.isSome (Arena.spanning tensors) "views tile one buffer"
            Expect.isNone (Arena.spanning (List.map snd originals)) "separate tensors do not"
            Expect.isNone (Arena.spanning (List.rev tensors)) "nor views out of order"
            (tensors |> List.map (fun t -> (t * t).sum()) |> List.reduce plus).backward()
            for t in tensors do
                if t.requires_grad then Expect.isLessThan (maxAbsDiff (nonNull t.grad) (times 2.0 (t.detach()))) 1e-6 "d(t²)/dt = 2t on the view"
            (Arena.spanning tensors).Value.zero_() |> ignore
            Expect.isTrue (tensors |> List.forall (fun t -> toFloat (t.detach().abs().sum()) = 0.0)) "the span writes through to every view"
        }

        test "EMA over two arenas is one update with the per-tensor result" {
            use _ = torch.NewDisposeScope()
            let make seed = [ for i, n in List.indexed sizes -> sprintf "t%d" i, torch.randn(int64 n, generator = new torch.Generator(uint64 (seed + i))) ]
            let teacher, student = Arena.adopt (make 1), Arena.adopt (make 100)
            let teacherLoose, studentLoose = make 1, make 100
            Ema.ema 0.996 (List.map snd teacher) (List.map snd student)
            Ema.ema 0.996 (List.map snd teacherLoose) (List.map snd studentLoose)
            for (_, a), (_, b) in List.zip teacher teacherLoose do
                Expect.isLessThan (maxAbsDiff a b) 1e-7 "same teacher"
        }

        test "fused float32 AdamW (the CPU kernel) follows the float64 formula over 5 steps; moments live in one arena; restore continues exactly" {
            use _ = torch.NewDisposeScope()
            let rng = System.Random 7
            let initial = [ for n in sizes -> normal rng n ]
            let parameters = Arena.adopt [ for i, values in List.indexed initial -> sprintf "p%d" i, torch.tensor(values, dtype = torch.float32).requires_grad_(true) ]
            let expected = [ for values in initial -> Array.copy values ]
            let m, v = [ for n in sizes -> Array.zeroCreate<float> n ], [ for n in sizes -> Array.zeroCreate<float> n ]
            use optimiser = new Optim.AdamW()
            let lr = 0.05
            let decayOf name = if name = "p0" then 0.0 else 0.04
            let applyGradients (tensors: (string * Tensor) list) (grads: float[] list) =
                for (_, p), g in List.zip tensors grads do p.grad <- torch.tensor(g, dtype = torch.float32)
            let mutable resumed = None
            for step in 1 .. 5 do
                let grads = [ for n in sizes -> normal rng n ]
                if step = 3 then
                    // a restored optimiser on copied weights: the same steps from here
                    let copies = Arena.adopt [ for name, p in parameters -> name, p.detach().clone().requires_grad_(true) ]
                    let restored = new Optim.AdamW() // used after this block: not disposed here
                    for KeyValue(name, s) in optimiser.Moments do restored.Restore(name, s.M.clone(), s.V.clone(), s.Steps)
                    resumed <- Some(copies, restored)
                applyGradients parameters grads
                optimiser.Step(parameters, lr, (fun name _ -> decayOf name), (fun _ -> false))
                match resumed with
                | Some(copies, restored) ->
                    applyGradients copies grads
                    restored.Step(copies, lr, (fun name _ -> decayOf name), (fun _ -> false))
                    for (_, a), (_, b) in List.zip parameters copies do Expect.sequenceEqual (valuesOf a) (valuesOf b) (sprintf "restored, step %d" step)
                | None -> ()
                for i in 0 .. sizes.Length - 1 do
                    referenceStep expected.[i] m.[i] v.[i] grads.[i] step lr (decayOf (sprintf "p%d" i))
                    let actual = valuesOf (snd parameters.[i])
                    let worst = Array.map2 (fun (a: float) b -> abs (a - b) / (1.0 + abs b)) actual expected.[i] |> worstError
                    Expect.isLessThan worst 1e-6 (sprintf "step %d, parameter %d: |error| / (1 + |p|), float32 rounding" step i)
            Expect.isSome (Arena.spanning [ for KeyValue(_, s) in optimiser.Moments -> s.M ]) "first moments in one buffer"
            Expect.equal optimiser.Moments.Count sizes.Length "every updated parameter has moments"
        }

        test "AdamW by tensor operations (float64: not the kernel's) over a span of the arena at a time = one tensor at a time, bit for bit, and = the float64 formula; skipped and clipped parameters" {
            use _ = torch.NewDisposeScope()
            let rng = System.Random 11
            let initial = [ for n in sizes -> normal rng n ]
            let make () = [ for i, values in List.indexed initial -> sprintf "p%d" i, torch.tensor(values, dtype = torch.float64).requires_grad_(true) ]
            let inArena, apart = Arena.adopt (make ()), make ()
            let expected = [ for values in initial -> Array.copy values ]
            let m, v = [ for n in sizes -> Array.zeroCreate<float> n ], [ for n in sizes -> Array.zeroCreate<float> n ]
            let counts = Array.zeroCreate sizes.Length
            use optimiser = new Optim.AdamW()
            use optimiserApart = new Optim.AdamW()
            let lr = 0.05
            let decayOf name = if name = "p0" then 0.0 else 0.04
            let clipOf name = if name = "p1" then 0.5 else 1.0
            for step in 1 .. 4 do
                let grads = [ for n in sizes -> normal rng n ]
                let skip name = step = 2 && name = "p2" // p2 then trails by one update: its own span
                for tensors in [ inArena; apart ] do
                    for (_, p), g in List.zip tensors grads do p.grad <- torch.tensor(g, dtype = torch.float64)
                optimiser.Step(inArena, lr, (fun name _ -> decayOf name), skip, clipOf)
                optimiserApart.Step(apart, lr, (fun name _ -> decayOf name), skip, clipOf)
                for i, ((name, a), (_, b)) in List.indexed (List.zip inArena apart) do
                    Expect.sequenceEqual (valuesOf a) (valuesOf b) (sprintf "step %d, %s: span = alone" step name)
                    if not (skip name) then
                        counts.[i] <- counts.[i] + 1
                        referenceStep expected.[i] m.[i] v.[i] (Array.map (fun g -> g * clipOf name) grads.[i]) counts.[i] lr (decayOf name)
                    let worst = Array.map2 (fun (x: float) y -> abs (x - y) / (1.0 + abs y)) (valuesOf a) expected.[i] |> worstError
                    Expect.isLessThan worst 1e-12 (sprintf "step %d, %s: the float64 formula" step name)
            Expect.isSome (Arena.spanning [ for KeyValue(_, s) in optimiser.Moments -> s.M ]) "first moments in one buffer"
        }

        test "AdamW by tensor operations: spans join the parts that follow each other in p, m and v with one update count; float32 spans = one tensor at a time, bit for bit" {
            use _ = torch.NewDisposeScope()
            use generator = new torch.Generator(5UL)
            let named () = [ for i, n in List.indexed sizes -> sprintf "t%d" i, torch.randn(int64 n, generator = generator) ]
            let parts (p: (string * Tensor) list) (m: (string * Tensor) list) (v: (string * Tensor) list) (g: (string * Tensor) list) : AdamWTensors.Part list =
                [ for i, (((_, p), (_, m)), ((_, v), (_, g))) in List.indexed (List.zip (List.zip p m) (List.zip v g)) ->
                    { P = p; G = g; M = m; V = v; Clip = (if i = 1 then 0.25 else 1.0); Decay = (if i = 0 then 1.0 else 0.998)
                      SqrtCorrection2 = 0.0447; StepSize = -0.5 } ]
            let gradients = named ()
            let moments () = Arena.adopt [ for name, t in named () -> name, t.abs() ]
            let make (arena: bool) =
                let copy (named: (string * Tensor) list) = [ for name, t in named -> name, t.clone() ]
                let p, m, v = named (), moments (), moments ()
                if arena then Arena.adopt p, m, v else copy p, copy m, copy v
            let inArena = let p, m, v = make true in parts p m v gradients
            let lengths (parts: AdamWTensors.Part list) = AdamWTensors.spans parts |> List.map List.length
            Expect.equal (lengths inArena) [ sizes.Length ] "one arena: one span"
            Expect.equal (lengths (inArena |> List.filter (fun part -> part.P.numel() <> 33L))) [ 2; 1 ] "a skipped parameter breaks it"
            Expect.equal (lengths (inArena |> List.mapi (fun i part -> if i = 2 then { part with StepSize = -0.4 } else part))) [ 2; 1; 1 ] "so does another update count"
            let apart = let p, m, v = make false in parts p m v gradients
            Expect.equal (lengths apart) [ 1; 1; 1; 1 ] "separate tensors: one span each"
            let shared: AdamWTensors.Shared = { FirstWeight = 0.1; Beta2 = 0.999; SecondWeight = 0.001; Eps = 1e-8 }
            // the same starting values: moments and parameters were drawn alike
            for a, b in List.zip inArena apart do
                use _ = torch.no_grad()
                for x, y in [ a.P, b.P; a.M, b.M; a.V, b.V ] do y.copy_(x) |> ignore
            AdamWTensors.update shared inArena
            AdamWTensors.update shared apart
            for a, b in List.zip inArena apart do
                for x, y in [ a.P, b.P; a.M, b.M; a.V, b.V ] do Expect.sequenceEqual (valuesOf x) (valuesOf y) "span = alone"
        }

        test "AdamW by tensor operations: parts with one step size but another √(1 − β₂ᵗ) (1 − 0.9ᵗ is 1 in float64 from t = 356) are not joined, nor parts that follow each other in p and v but not in m; = one tensor at a time, bit for bit" {
            use _ = torch.NewDisposeScope()
            use generator = new torch.Generator(9UL)
            let draw () = [ for i, n in List.indexed sizes -> sprintf "t%d" i, torch.randn(int64 n, dtype = torch.float64, generator = generator) ]
            let gradients, p0, m0 = draw (), draw (), draw ()
            let v0 = [ for name, t in draw () -> name, t.abs() ]
            let copy (named: (string * Tensor) list) = [ for name, t in named -> name, t.clone() ]
            Expect.equal (1.0 - 0.9 ** 400.0) (1.0 - 0.9 ** 500.0) "counts 400 and 500: the same step size −lr/(1 − β₁ᵗ)"
            let counts = [ 400.0; 400.0; 500.0; 500.0 ]
            let parts (p: (string * Tensor) list) (m: (string * Tensor) list) (v: (string * Tensor) list) : AdamWTensors.Part list =
                [ for (((_, p), (_, m)), ((_, v), (_, g))), t in List.zip (List.zip (List.zip p m) (List.zip v gradients)) counts ->
                    { P = p; G = g; M = m; V = v; Clip = 1.0; Decay = 0.998; SqrtCorrection2 = sqrt (1.0 - 0.999 ** t); StepSize = -0.01 / (1.0 - 0.9 ** t) } ]
            let shared: AdamWTensors.Shared = { FirstWeight = 0.1; Beta2 = 0.999; SecondWeight = 0.001; Eps = 1e-8 }
            for mApart in [ false; true ] do
                let joined = parts (Arena.adopt p0) (if mApart then copy m0 else Arena.adopt m0) (Arena.adopt v0)
                let alone = parts (copy p0) (copy m0) (copy v0)
                let lengths = AdamWTensors.spans joined |> List.map List.length
                Expect.equal lengths (if mApart then [ 1; 1; 1; 1 ] else [ 2; 2 ]) (sprintf "spans (m apart: %b)" mApart)
                AdamWTensors.update shared joined
                AdamWTensors.update shared alone
                for a, b in List.zip joined alone do
                    for x, y in [ a.P, b.P; a.M, b.M; a.V, b.V ] do Expect.sequenceEqual (valuesOf x) (valuesOf y) (sprintf "span = alone (m apart: %b)" mApart)
                // and the first part by hand (float64): p·decay − 0.01·m̂ / (√v̂ + eps)
                let p, m, v, g = valuesOf (snd p0.[0]), valuesOf (snd m0.[0]), valuesOf (snd v0.[0]), valuesOf (snd gradients.[0])
                let expected =
                    Array.init p.Length (fun i ->
                        let m1 = 0.9 * m.[i] + 0.1 * g.[i]
                        let v1 = 0.999 * v.[i] + 0.001 * g.[i] * g.[i]
                        p.[i] * 0.998 - 0.01 * m1 / (sqrt v1 / sqrt (1.0 - 0.999 ** 400.0) + 1e-8))
                Expect.isLessThan (Array.map2 (fun (x: float) y -> abs (x - y) / (1.0 + abs y)) (valuesOf joined.[0].P) expected |> worstError) 1e-12 "the formula"
        }

        test "AdamW moving the EMA teacher in its pass = AdamW, then the EMA (lerp_) over the arenas: same teacher, same student; skipped parameters left to the EMA" {
            use _ = torch.NewDisposeScope()
            let make seed = [ for i, n in List.indexed sizes -> sprintf "p%d" i, torch.randn(int64 n, generator = new torch.Generator(uint64 (seed + i))) ]
            let momentum = 0.996
            let run (fused: bool) =
                let student = Arena.adopt [ for name, t in make 1 -> name, t.requires_grad_(true) ]
                let teacher = Arena.adopt (make 100)
                use optimiser = new Optim.AdamW()
                let skip name = name = "p2"
                for step in 1 .. 3 do
                    for (name, p), (_, g) in List.zip student (make (1000 * step)) do p.grad <- g
                    let follower: Optim.Follower = { Momentum = momentum; Teacher = (Map.ofList teacher).TryFind }
                    let moved =
                        if fused then optimiser.StepFollowing(student, 0.01, (fun _ _ -> 0.04), skip, (fun _ -> 0.5), follower)
                        else optimiser.Step(student, 0.01, (fun _ _ -> 0.04), skip, fun _ -> 0.5); Set.empty
                    if fused then Expect.equal moved (set [ "p0"; "p1"; "p3" ]) "every updated parameter's teacher moved, not the skipped one's"
                    let rest = List.zip teacher student |> List.filter (fun ((name, _), _) -> not (moved.Contains name))
                    Ema.ema momentum [ for (_, t), _ in rest -> t ] [ for _, (_, s) in rest -> s ]
                List.map snd student, List.map snd teacher
            let students, teachers = run true
            let studentsApart, teachersApart = run false
            for a, b in List.zip students studentsApart do Expect.sequenceEqual (valuesOf a) (valuesOf b) "student"
            for a, b in List.zip teachers teachersApart do Expect.sequenceEqual (valuesOf a) (valuesOf b) "teacher, bit for bit (one fused multiply-add, as lerp_)"
        }

        test "AdamW kernel: a range's last elements (through a vector-sized buffer) get the bits whole vectors give them, teacher included; g is only read" {
            use _ = torch.NewDisposeScope()
            let width = System.Numerics.Vector<float32>.Count
            let whole, short = 3 * width, 2 * width + 3                    // short ends in 3 elements past its last whole vector
            let random seed = torch.rand(int64 whole, generator = new torch.Generator(uint64 seed)) - 0.25
            let coefficients : AdamWKernel.Coefficients =
                { GradientScale = 0.7f; Decay = 0.996f; FirstWeight = 0.1f; Beta2 = 0.999f; SecondWeight = 0.001f
                  SqrtCorrection2 = 0.0447f; Eps = 1e-8f; StepSize = -0.05f; TeacherWeight = 0.004f }
            let run (count: int) =
                let p, g, m, v, t = random 1, random 2, random 3, (random 4).abs(), random 5
                let slice : AdamWKernel.Slice =
                    { P = Arena.address p; G = Arena.address g; M = Arena.address m; V = Arena.address v; Teacher = Arena.address t; Count = int64 count; Coefficients = coefficients }
                AdamWKernel.update 1 [ slice ]
                [ p; g; m; v; t ] |> List.map (fun x -> x.narrow(0L, 0L, int64 short))
            for name, a, b in List.zip3 [ "p"; "g"; "m"; "v"; "teacher" ] (run short) (run whole) do
                Expect.isTrue (a.equal(b).all().item<bool>()) (sprintf "%s: the first %d elements of a %d-element range = of a %d-element one" name short short whole)
            Expect.isTrue ((run short).[1].equal((random 2).narrow(0L, 0L, int64 short)).all().item<bool>()) "g unchanged"
        }

        // Catches: weight decay given to every trainable tensor (spec §10: biases and 1-D tensors get none).
        test "optimiserStep decays weights only: a bias and a 1-D tensor with zero gradient stay, a matrix shrinks by 1 − lr·wd" {
            use _ = torch.NewDisposeScope()
            let make (shape: int64[]) = let t = torch.ones(shape).requires_grad_(true) in t.grad <- torch.zeros(shape); t
            let trainable = [ "blocks.0.attn.qkv.bias", make [| 4L |]; "blocks.0.norm1.weight", make [| 4L |]; "blocks.0.attn.qkv.weight", make [| 4L; 4L |] ]
            use optimiser = new Optim.AdamW()
            Croc.optimiserStep optimiser (Seq.ofList trainable) 0.1 0.5 0 1 Map.empty { Momentum = 0.996; Teacher = fun _ -> None } |> ignore
            Expect.sequenceEqual (valuesOf (snd trainable.[0])) (Array.create 4 1.0) "bias: no decay"
            Expect.sequenceEqual (valuesOf (snd trainable.[1])) (Array.create 4 1.0) "1-D: no decay"
            Expect.isLessThan (maxAbsDiff (snd trainable.[2]) (torch.full([| 4L; 4L |], scalar 0.95))) 1e-7 "matrix: × (1 − 0.1·0.5)"
        }
    ]

/// (4) float32 values `v`.
let filled (v: float32) = torch.tensor(Array.create 4 v)

let clippingTests =
    testList "clipping" [
        test "clip factors: maxNorm/(‖g‖ + 1e-6) above maxNorm, 1 below, all 1 when off (0); AdamW with a factor = AdamW on the scaled gradient, bit for bit" {
            use _ = torch.NewDisposeScope()
            let big = (filled 5.0f).requires_grad_(true)    // ‖g‖ = 10 once g = 5·1
            let small = (filled 0.1f).requires_grad_(true)
            big.grad <- filled 5.0f
            small.grad <- filled 0.1f
            let factors = Optim.clipFactors 3.0 [ "big", big; "small", small ]
            Expect.floatClose Accuracy.high factors.["big"] (3.0 / (10.0 + 1e-6)) "clipped to norm 3"
            Expect.equal factors.["small"] 1.0 "norm 0.2: untouched"
            Expect.equal (Optim.clipFactors 0.0 [ "big", big; "small", small ]) (Map.ofList [ "big", 1.0; "small", 1.0 ]) "--clip-grad 0 turns clipping off (it zeroed every gradient before)"
            Expect.sequenceEqual (valuesOf (nonNull big.grad)) [ 5.0; 5.0; 5.0; 5.0 ] "gradients are not touched"
            let run (scaleFirst: bool) =
                let p = Arena.adopt [ "big", big.detach().clone().requires_grad_(true) ]
                use optimiser = new Optim.AdamW()
                let factor = factors.["big"]
                (snd p.Head).grad <- if scaleFirst then filled (5.0f * float32 factor) else filled 5.0f
                if scaleFirst then optimiser.Step(p, 0.1, (fun _ _ -> 0.0), (fun _ -> false))
                else optimiser.Step(p, 0.1, (fun _ _ -> 0.0), (fun _ -> false), fun _ -> factor)
                valuesOf (snd p.Head)
            Expect.sequenceEqual (run false) (run true) "the factor applied as the gradient is read"
        }

        test "clip factors from the one-pass norms match float64 norms: partial vectors, several chunks, float64 gradients by norm()" {
            use _ = torch.NewDisposeScope()
            use generator = new torch.Generator(7UL)
            let named =
                [ for i, n in List.indexed sizes ->
                    let p = torch.zeros(int64 n).requires_grad_(true)
                    p.grad <- torch.randn(int64 n, generator = generator) * scalar (if i % 2 = 0 then 0.01 else 1.0) // norms on both sides of 3
                    sprintf "p%d" i, p ]
                @ [ for name, value in [ "double", 0.5; "double small", 0.001 ] ->
                      let p = torch.zeros(1000L, dtype = torch.float64).requires_grad_(true)
                      p.grad <- torch.full(1000L, value, dtype = torch.float64) // ‖g‖ = √1000·value: norm(), read back at once
                      name, p ]
            let factors = Optim.clipFactors 3.0 named
            for name, p in named do
                let norm = valuesOf (nonNull p.grad) |> Array.sumBy (fun g -> g * g) |> sqrt
                Expect.floatClose { absolute = 0.0; relative = 1e-12 } factors.[name] (min 1.0 (3.0 / (norm + 1e-6))) name
            Expect.isLessThan factors.["p3"] 1.0 "some are clipped"
            Expect.isLessThan factors.["double"] 1.0 "a float64 one too"
            Expect.equal factors.["double small"] 1.0 "not the other, each with its own norm"
            Expect.equal factors.["p0"] 1.0 "some are not"
        }
    ]
