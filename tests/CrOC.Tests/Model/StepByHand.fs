/// One CrOC step's forward built by hand from its parts (spec §2): what `Croc.step` and
/// `TrainingStep.run` are compared against.
module CrOC.Tests.StepByHand

open TorchSharp
open CrOC.Math
open CrOC.Math.Clustering
open CrOC.Tests.TestUtil

type Outputs =
    { /// The heads' outputs, (2B, L) images and (2V, Lc) objects, rows view 1 first.
      TeacherImage: Tensor
      TeacherObjects: Tensor
      StudentImage: Tensor
      StudentObjects: Tensor
      /// The clustering of the teacher's last-block keys.
      Clusters: Clusters
      /// The student's final tokens (2B, 1+N, D).
      StudentTokens: Tensor }

/// The teacher's forward (keeping its last block's keys), their clustering with `seeding`, each
/// network's tokens pooled with the teacher's masks, and each network's heads. The student runs
/// without stochastic depth; gradients flow into whatever requires them.
let forward (cfg: Network.NetworkConfig) (clustering: ClusteringConfig) (teacher: Network.NetworkParams) (student: Network.NetworkParams)
            (seeding: Seeding) (views: Tensor) (positions: Tensor) : Outputs =
    let teacherOut = Vit.forward cfg.Vit teacher.Backbone { Vit.ForwardOptions.Inference with LastBlock = true } views
    let keys = teacherOut.Last.Value.Keys                                                  // (2B, h, 1+N, dh)
    let clusters = cluster clustering seeding (keys.reshape(-1L, keys.shape.[2], keys.shape.[3])) positions
    let studentOut = Vit.forward cfg.Vit student.Backbone Vit.ForwardOptions.Inference views
    let flat (objects: Tensor) = objects.reshape(-1L, objects.shape.[2])
    { TeacherImage = Heads.image teacher.Head teacherOut.Cls
      TeacherObjects = Heads.objects teacher.Head (flat (Objects.objectVectors clusters teacherOut.Tokens))
      StudentImage = Heads.image student.Head studentOut.Cls
      StudentObjects = Heads.objects student.Head (flat (Objects.objectVectors clusters studentOut.Tokens))
      Clusters = clusters
      StudentTokens = studentOut.Tokens }
