/// The committed golden files (made by tools/fixtures/make_vit_fixture.py) and the network they describe.
module CrOC.Tests.Fixtures

open System.IO
open CrOC.Math
open CrOC.Host.Weights

let path (name: string) = Path.Combine(System.AppContext.BaseDirectory, "fixtures", name)

/// The fixture's tiny network: 32 px images, patch 8, D = 48, depth 2, 3 heads; head 48 → 64 → 16
/// → 40 / 24 with trainable g (the fixture's g are not 1).
let config : Network.NetworkConfig =
    { Vit = { Vit.VitConfig.Tiny(8, 32) with Dim = 48; Depth = 2; Heads = 3 }
      Head = { InDim = 48; Hidden = 64; Bottleneck = 16; OutDim = 40; OutDimC = 24; NormLastLayer = false } }

/// All tensors of vit_tiny_golden.pth by name.
let golden () : NamedTensors = (CheckpointImport.Import(path "vit_tiny_golden.pth")).Student

/// The fixture's network, built from the golden weights.
let network (tensors: NamedTensors) : Network.NetworkParams = Network.ofNamed config (fun name -> tensors.[name])
