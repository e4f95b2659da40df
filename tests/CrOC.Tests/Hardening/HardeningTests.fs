/// Run folders that never lose data, one error contract (exit codes and one-line messages), and
/// hostile inputs: the hardening tests, one file per concern, run one at a time.
module CrOC.Tests.HardeningTests

open Expecto

let tests =
    testSequenced <| testList "Hardening" [
        RunFolderHardening.tests
        StopHardening.tests
        StorageHardening.tests
        InputHardening.tests
        EvaluationHardening.tests
        ExportHardening.tests
    ]
