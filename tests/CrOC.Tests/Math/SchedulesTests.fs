module CrOC.Tests.SchedulesTests

open Expecto
open TorchSharp
open CrOC.Math.Schedules
open CrOC.Math.Ema
open CrOC.Tests.TestUtil

let close (expected: float) (actual: float) what = Expect.floatClose { absolute = 1e-12; relative = 1e-12 } actual expected what

let tests =
    testList "Schedules" [
        test "learning rate: linspace warm-up from 0 to the peak, then cosine to min_lr (DINO's cosine_scheduler)" {
            // 3 epochs × 4 iterations, 1 warm-up epoch: warm-up = linspace(0, 1e-3, 4).
            let s = learningRate 1e-3 1e-6 3 4 1
            close 0.0 (cosineAt s 0) "first warm-up value"
            close (1e-3 / 3.0) (cosineAt s 1) "linspace step"
            close 1e-3 (cosineAt s 3) "last warm-up value is the peak"
            close 1e-3 (cosineAt s 4) "cosine starts at the peak"
            // decay iteration j of n = 8: final + ½(base − final)(1 + cos(πj/n))
            close (1e-6 + 0.5 * (1e-3 - 1e-6) * (1.0 + cos (System.Math.PI * 3.0 / 8.0))) (cosineAt s 7) "cosine middle"
            close (1e-6 + 0.5 * (1e-3 - 1e-6) * (1.0 + cos (System.Math.PI * 7.0 / 8.0))) (cosineAt s 11) "last iteration"
        }

        test "teacher momentum m_i = 1 + ½(0.996 − 1)(1 + cos(πi/I)) rises from 0.996 toward 1" {
            let s = teacherMomentum 0.996 10 7
            for i in 0 .. 69 do
                close (1.0 + 0.5 * (0.996 - 1.0) * (1.0 + cos (System.Math.PI * float i / 70.0))) (cosineAt s i) (sprintf "iteration %d" i)
            close 0.996 (cosineAt s 0) "starts at 0.996"
        }

        test "weight decay runs 0.04 → 0.4 with no warm-up" {
            let s = weightDecay 0.04 0.4 2 5
            close 0.04 (cosineAt s 0) "start"
            Expect.isGreaterThan (cosineAt s 9) 0.39 "close to 0.4 at the end"
        }

        test "teacher temperature: linspace warm-up by epoch, then constant" {
            close 0.04 (teacherTemperature 0.04 0.07 30 0) "epoch 0"
            close (0.04 + 0.03 * 10.0 / 29.0) (teacherTemperature 0.04 0.07 30 10) "epoch 10"
            close 0.07 (teacherTemperature 0.04 0.07 30 29) "end of warm-up"
            close 0.07 (teacherTemperature 0.04 0.07 30 200) "after"
            close 0.04 (teacherTemperature 0.04 0.04 0 0) "the CrOC default: constant 0.04"
        }

        test "the peak learning rate scales linearly with the global batch" {
            close 5e-4 (scaledLearningRate 5e-4 256) "batch 256"
            close 2.5e-4 (scaledLearningRate 5e-4 128) "batch 128"
        }

        test "warm-ups: none in runs of at most 2 epochs (the official rule), as configured otherwise" {
            Expect.equal (warmupFor 2 10) 0 "2 epochs"
            Expect.equal (warmupFor 1 10) 0 "1 epoch"
            Expect.equal (warmupFor 3 10) 10 "3 epochs keep the configured 10"
        }

        test "collapse check: after 20 steps, a teacher entropy above 98% of ln L or below 0.01" {
            let ln = log 4096.0
            Expect.isTrue (CrOC.Math.TrainingStep.looksCollapsed 21L (0.99 * ln) 4096) "near uniform"
            Expect.isTrue (CrOC.Math.TrainingStep.looksCollapsed 21L 0.001 4096) "near one-hot"
            Expect.isFalse (CrOC.Math.TrainingStep.looksCollapsed 21L (0.9 * ln) 4096) "healthy"
            Expect.isFalse (CrOC.Math.TrainingStep.looksCollapsed 20L (0.99 * ln) 4096) "not in the first 20 steps"
        }

        test "EMA: θ_t ← m·θ_t + (1 − m)·θ_s in place, student untouched" {
            use _ = torch.NewDisposeScope()
            let teacher = [ tensorOf [| 2L |] [| 1.0; 2.0 |]; tensorOf [| 1L |] [| -1.0 |] ]
            let student = [ tensorOf [| 2L |] [| 3.0; 4.0 |]; tensorOf [| 1L |] [| 1.0 |] ]
            ema 0.75 teacher student
            Expect.sequenceEqual (valuesOf teacher.[0]) [| 1.5; 2.5 |] "first tensor"
            Expect.sequenceEqual (valuesOf teacher.[1]) [| -0.5 |] "second tensor"
            Expect.sequenceEqual (valuesOf student.[0]) [| 3.0; 4.0 |] "student unchanged"
        }

        // Catches: `epoch > warmupEpochs` (the first epoch after the warm-up extrapolates past the final τ_t).
        test "teacher temperature: the first epoch after the warm-up is at the final value" {
            Expect.floatClose Accuracy.veryHigh (teacherTemperature 0.04 0.07 30 30) 0.07 "epoch 30 of a 30-epoch warm-up"
            Expect.floatClose Accuracy.veryHigh (teacherTemperature 0.04 0.07 1 1) 0.07 "epoch 1 of a 1-epoch warm-up"
        }

        // Catches: the decay index not clamped to the last iteration (a resumed or extended run).
        test "cosine schedules stay at their last value past the end" {
            let s = learningRate 1e-3 1e-6 3 4 1
            for i in [ 12; 13; 100 ] do
                Expect.equal (cosineAt s i) (cosineAt s 11) (sprintf "iteration %d" i)
        }
    ]
