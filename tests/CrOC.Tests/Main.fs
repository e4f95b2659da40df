module CrOC.Tests.Main

open Expecto

[<Tests>]
let all =
    testList "CrOC" [
        SinkhornTests.tests
        CostsTests.tests
        ClusteringTests.tests
        LossesTests.tests
        SchedulesTests.tests
        VitTests.tests
        WeightsTests.tests
        DataTests.tests
        TarTests.tests
        TrainingTests.tests
        DistributedTests.tests
        EvaluationTests.tests
    ]

/// Runs every test, one at a time (TorchSharp already uses both cores), and closes with the
/// line CI reads, alone on its line: `N passed, N failed`.
[<EntryPoint>]
let main argv =
    let mutable counts = (0, 0)
    let record =
        SummaryHandler(fun summary ->
            counts <- summary.passed.Length, summary.failed.Length + summary.errored.Length + summary.timedOut.Length)
    let exitCode =
        Tests.runTestsWithCLIArgs [ CLIArguments.Sequenced; CLIArguments.No_Spinner; CLIArguments.Colours 0; CLIArguments.Append_Summary_Handler record ] argv all
    System.Console.Out.Flush()
    // Straight to the stream: Expecto's console writer pads its last line with spaces.
    use stdout = System.Console.OpenStandardOutput()
    let line = System.Text.Encoding.UTF8.GetBytes(sprintf "\n%d passed, %d failed\n" (fst counts) (snd counts))
    stdout.Write(line, 0, line.Length)
    exitCode
