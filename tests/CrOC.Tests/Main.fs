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
        CrocStepTests.tests
        ArenaTests.tests
        ArenaTests.clippingTests
        WeightsTests.tests
        DataTests.tests
        FilterTests.tests
        AugmentationTests.tests
        TarTests.tests
        TrainingTests.tests
        TrainingStepTests.tests
        DistributedTests.tests
        EvaluationTests.tests
        FuzzTests.tests
        HardeningTests.tests
        MklVendorCheckTests.tests
        HeapSettingsTests.tests
        SignalStackTests.tests
        ApiTableTests.tests
        LayeringTests.tests
        CompareScriptTests.tests
    ]

/// Writes through to `inner`, without ANSI escape sequences (Expecto's logger emits colour resets
/// even with colours off; CI logs and redirected output stay plain text).
type PlainTextWriter(inner: System.IO.TextWriter) =
    inherit System.IO.TextWriter()
    let mutable escape = false
    override _.Encoding = inner.Encoding
    override _.Write(c: char) =
        if c = '\u001b' then escape <- true
        elif escape then (if System.Char.IsLetter c then escape <- false)
        else inner.Write c
    override _.Flush() = inner.Flush()

/// Removes the tests' scratch folder after a run without failures, or keeps it for a look after one;
/// the line that says which (empty when it was removed).
let removeScratch (passed: bool) =
    let root = TestUtil.scratchRoot.Value
    if not passed then sprintf "the tests' files are kept in %s\n" root
    else
        try System.IO.Directory.Delete(root, true); ""
        with e -> sprintf "could not remove the tests' files in %s: %s\n" root e.Message

/// Runs every test, one at a time (TorchSharp already uses both cores), and closes with the
/// line CI reads, alone on its line: `N passed, N failed`.
[<EntryPoint>]
let main argv =
    match argv with
    | [| SignalStackTests.ProbeArgument; mode |] -> SignalStackTests.probe mode // a child of SignalStackTests
    | _ ->
    // what croc-host writes to the temporary directory, in this process and its children, lands there too
    System.Environment.SetEnvironmentVariable("TMPDIR", TestUtil.scratchRoot.Value)
    // and so do the synthetic scenes: every run generates them as on a fresh machine (a test failed only
    // where no copy existed yet), and the user's data folder is left alone
    System.Environment.SetEnvironmentVariable("CROC_DATA_HOME", System.IO.Path.Combine(TestUtil.scratchRoot.Value, "data-home"))
    if System.Console.IsOutputRedirected then
        System.Console.SetOut(new PlainTextWriter(System.Console.Out))
    let mutable passed = 0
    let mutable skipped = []
    let mutable failedNames = []
    let record =
        SummaryHandler(fun summary ->
            passed <- summary.passed.Length
            skipped <-
                [ for test, result in summary.ignored ->
                    let name = String.concat "." test.name
                    match result.result with
                    | Impl.Ignored reason -> sprintf "%s: %s" name reason
                    | _ -> name ]
            // failed, errored and timed out: each counts as failed
            let failedTests = List.map fst (summary.failed @ summary.errored) @ summary.timedOut
            failedNames <- [ for test in failedTests -> String.concat "." test.name ])
    let exitCode =
        Tests.runTestsWithCLIArgs [ CLIArguments.Sequenced; CLIArguments.No_Spinner; CLIArguments.Colours 0; CLIArguments.Append_Summary_Handler record ] argv all
    System.Console.Out.Flush()
    // Straight to the stream: Expecto's console writer pads its last line with spaces.
    use stdout = System.Console.OpenStandardOutput()
    // A test skipped where the machine cannot run it (no tmpfs mount, say) is named with its reason, not hidden.
    let skippedLines = skipped |> List.map (sprintf "skipped: %s\n") |> String.concat ""
    // A failure is named again here, next to the closing line, where a log's tail shows it.
    let failedLines = failedNames |> List.map (sprintf "failed: %s\n") |> String.concat ""
    let line =
        System.Text.Encoding.UTF8.GetBytes(
            sprintf "\n%s%s%s%d passed, %d failed\n" (removeScratch failedNames.IsEmpty) skippedLines failedLines passed failedNames.Length)
    stdout.Write(line, 0, line.Length)
    exitCode
