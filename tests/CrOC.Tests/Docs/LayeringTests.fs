/// The host's folders form layers: no folder uses a type of a folder that (directly or through
/// others) uses one of its own. Found from the sources: each folder's declared type names, and the
/// names each file mentions outside comments and strings.
module CrOC.Tests.LayeringTests

open System.IO
open System.Text.RegularExpressions
open Expecto

let hostFolder () =
    Path.Combine(Path.GetDirectoryName(ApiTableTests.readmePath ()) |> nonNull, "src", "CrOC.Host")

/// Folder of a source file relative to the host project ("." for the root).
let folderOf (root: string) (file: string) =
    let relative = Path.GetRelativePath(root, file)
    match relative.Split(Path.DirectorySeparatorChar) with
    | [| _ |] -> "."
    | parts -> parts.[0]

let sources (root: string) =
    Directory.GetFiles(root, "*.cs", SearchOption.AllDirectories)
    |> Array.filter (fun f -> not (f.Contains $"{Path.DirectorySeparatorChar}obj{Path.DirectorySeparatorChar}" || f.Contains $"{Path.DirectorySeparatorChar}bin{Path.DirectorySeparatorChar}"))

/// The code of a file without comments and string literals.
let code (text: string) =
    Regex.Replace(text, @"//[^\n]*|/\*.*?\*/|@""(?:""""|[^""])*""|\$?""(?:\\.|[^""\\\n])*""", " ", RegexOptions.Singleline)

/// folder → the folders whose types it uses, with the names that make each dependency.
let usages (root: string) =
    let files = sources root
    let declared =
        [ for f in files do
            for m in Regex.Matches(code (File.ReadAllText f), @"\b(?:class|record|struct|interface|enum)\s+([A-Z]\w*)") ->
                m.Groups.[1].Value, folderOf root f ]
        |> List.groupBy fst
        |> List.choose (fun (name, places) -> match places |> List.map snd |> List.distinct with [ folder ] -> Some(name, folder) | _ -> None)
        |> Map.ofList
    files
    |> Array.groupBy (folderOf root)
    |> Array.map (fun (folder, group) ->
        let used =
            group
            |> Seq.collect (fun f -> Regex.Matches(code (File.ReadAllText f), @"\b[A-Z]\w*\b") |> Seq.map (fun m -> m.Value))
            |> Seq.choose (fun name -> Map.tryFind name declared |> Option.map (fun other -> other, name))
            |> Seq.filter (fun (other, _) -> other <> folder)
            |> Seq.groupBy fst
            |> Seq.map (fun (other, names) -> other, names |> Seq.map snd |> Seq.distinct |> List.ofSeq)
            |> Map.ofSeq
        folder, used)
    |> Map.ofArray

/// folder → the folders whose types it uses.
let dependencies (root: string) = usages root |> Map.map (fun _ used -> used |> Map.keys |> Set.ofSeq)

/// A cycle through `start`, if any: the folders in order.
let cycleThrough (graph: Map<string, Set<string>>) (start: string) =
    let rec walk path node =
        (Map.tryFind node graph |> Option.defaultValue Set.empty)
        |> Seq.tryPick (fun next ->
            if next = start then Some(List.rev (next :: path))
            elif List.contains next path then None
            else walk (next :: path) next)
    walk [ start ] start

let tests =
    testList "host layering" [
        test "no cycles between the host's folders; the root (entry point and commands) is used by none" {
            let root = hostFolder ()
            for KeyValue(folder, used) in usages root do
                match Map.tryFind "." used with
                | Some names when folder <> "." -> failtestf "%s uses types of the root folder: %s" folder (String.concat ", " names)
                | _ -> ()
            let used = usages root
            let graph = dependencies root |> Map.remove "."
            Expect.isGreaterThan graph.Count 4 "the folders were found"
            for folder in graph.Keys do
                match cycleThrough graph folder with
                | Some cycle ->
                    let edges = cycle |> List.pairwise |> List.map (fun (a, b) -> sprintf "%s → %s (%s)" a b (String.concat ", " used.[a].[b]))
                    failtestf "a cycle: %s" (String.concat "; " edges)
                | None -> ()
        }
    ]
