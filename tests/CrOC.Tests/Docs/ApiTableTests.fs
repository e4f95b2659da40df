/// The README's table of the math API, checked against the CrOC.Math assembly: a renamed or
/// removed function, type or record field fails here instead of drifting in the docs.
module CrOC.Tests.ApiTableTests

open System
open System.IO
open System.Reflection
open System.Text.RegularExpressions
open Expecto

/// The README's path in the repository the tests were built from.
let readmePath () =
    let rec up (dir: DirectoryInfo | null) =
        match dir with
        | null -> failwith "README.md not found above the test binaries"
        | d when File.Exists(Path.Combine(d.FullName, "README.md")) && Directory.Exists(Path.Combine(d.FullName, "src")) -> Path.Combine(d.FullName, "README.md")
        | d -> up d.Parent
    up (DirectoryInfo AppContext.BaseDirectory)

/// The README of the repository the tests were built from.
let readme () = File.ReadAllText(readmePath ())

/// (module, names) of each row of the "The math API" table: the first word of every `code` item of
/// the second column, and the record fields named in `{A; B; …}`.
let rows (text: string) =
    let section = text.Substring(text.IndexOf "## The math API")
    let section = section.Substring(0, section.IndexOf("\n## ", 4))
    [ for line in section.Split('\n') do
        if line.StartsWith "| `" then
            let cells = line.Split('|')
            let moduleName = cells.[1].Trim().Trim('`')
            let items = [ for m in Regex.Matches(cells.[2], "`([^`]+)`") -> m.Groups.[1].Value ]
            let functions = items |> List.map (fun i -> i.Split(' ').[0]) |> List.filter (fun n -> not (n.StartsWith "…"))
            let fields = [ for i in items do for m in Regex.Matches(i, @"\{([^}]*)\}") do for f in m.Groups.[1].Value.Split(';') do let f = f.Trim() in if f <> "…" then yield f ]
            yield moduleName, functions, fields ]

let tests =
    testList "Docs" [
        test "every function, type and record field the README's API table names exists in CrOC.Math" {
            let assembly = typeof<CrOC.Math.Clustering.Clusters>.Assembly
            let table = rows (readme ())
            Expect.isGreaterThan table.Length 10 "the table was found"
            for moduleName, functions, fields in table do
                let m = assembly.GetType("CrOC.Math." + moduleName) |> Option.ofObj |> Option.defaultWith (fun () -> failtestf "module %s does not exist" moduleName)
                let flags = BindingFlags.Public ||| BindingFlags.Static ||| BindingFlags.Instance
                let nested = m.GetNestedTypes()
                for f in functions do
                    let found = m.GetMember(f, flags).Length > 0 || nested |> Array.exists (fun t -> t.Name = f)
                    Expect.isTrue found (sprintf "%s.%s is named in the README but does not exist" moduleName f)
                for f in fields do
                    let found = nested |> Array.exists (fun t -> t.GetProperty(f) <> null)
                    Expect.isTrue found (sprintf "the field %s (module %s) is named in the README but no record of the module has it" f moduleName)
        }
    ]
