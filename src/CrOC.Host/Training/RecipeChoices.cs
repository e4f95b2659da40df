namespace CrOC.Host.Training;

/// <summary>The recipe a run's other defaults come from: <c>Tiny</c> (ViT-Ti/8 at 64 px on the
/// synthetic scenes) or <c>Official</c> (spec §10: ViT-S/16 at 224 px).</summary>
public enum Preset { Tiny, Official }

/// <summary>ViT width: tiny D = 192, small D = 384 (CrOC's), base D = 768.</summary>
public enum Arch { Tiny, Small, Base }

/// <summary>The image-level vector: the CLS token (official) or the mean patch token (poster).</summary>
public enum GlobalPoolChoice { Cls, Avg }

/// <summary>The features clustered: the last block's keys per head (official) or the output tokens (poster).</summary>
public enum ClusteredFeatures { Keys, Tokens }

/// <summary>Sinkhorn's solver: linear domain (official) or log domain.</summary>
public enum SinkhornSolverChoice { Linear, Log }

/// <summary>The layout of the selected clusters: data-dependent shapes (the spec's) or fixed ones.</summary>
public enum ObjectShapesChoice { Dynamic, Fixed }
