/// Linear segmentation evaluation (spec §12.1): the 1×1-convolution probe on frozen patch
/// tokens, and the confusion matrix / IoU / mIoU of its predictions.
module CrOC.Math.Segmentation

open TorchSharp
open CrOC.Math.Tensors

/// The label that is never counted (VOC boundaries, COCO "other").
[<Literal>]
let Ignore = 255L

/// Patch tokens (B, 1+N, D) of a gridH × gridW input → feature maps (B, D, gridH, gridW).
let featureMaps (gridH: int) (gridW: int) (tokens: Tensor) : Tensor =
    let b, n, d = tokens.shape.[0], tokens.shape.[1] - 1L, tokens.shape.[2]
    if n <> int64 (gridH * gridW) then invalidArg "tokens" (sprintf "%d patch tokens do not make a %dx%d grid" n gridH gridW)
    tokens.narrow(1L, 1L, n).transpose(1, 2).reshape(b, d, int64 gridH, int64 gridW)

/// Bilinear resize of (B, C, h, w) maps to size × size (align_corners = false).
let upsample (size: int) (maps: Tensor) : Tensor =
    torch.nn.functional.interpolate(maps, size = [| int64 size; int64 size |], mode = torch.InterpolationMode.Bilinear, align_corners = false)

/// The probe: logits = W ∗ features + b, a 1×1 convolution. weight (C, D, 1, 1), bias (C).
type Probe = { Weight: Tensor; Bias: Tensor }

let probe (p: Probe) (features: Tensor) : Tensor = torch.nn.functional.conv2d(features, p.Weight, p.Bias)

/// Whether every weight and every bias is finite: a probe with one NaN or ∞ among either scores nothing.
let isFinite (p: Probe) : bool =
    let allFinite (t: Tensor) =
        use finite = t.isfinite()
        use all = finite.all()
        all.item<bool>()
    allFinite p.Weight && allFinite p.Bias

/// Cross-entropy of logits (B, C, H, W) against labels (B, H, W) int64, ignoring 255.
let loss (logits: Tensor) (labels: Tensor) : Tensor =
    torch.nn.functional.cross_entropy(logits, labels, ignore_index = Ignore)

/// The C × C confusion matrix (rows: ground truth, columns: prediction) of predictions and labels
/// of any (equal) shape; pixels labelled 255 (or ≥ C) are not counted. Returns int64 counts.
let confusion (classes: int) (predictions: Tensor) (labels: Tensor) : Tensor =
    use _ = torch.no_grad()
    let truth = labels.flatten().to_type(torch.int64)
    let predicted = predictions.flatten().to_type(torch.int64)
    let c = torch.tensor(int64 classes)
    let counted = truth.lt(c).logical_and(truth.ge(torch.tensor(0L)))
    let clamped = torch.minimum(torch.maximum(predicted.masked_select(counted), torch.tensor(0L)), torch.tensor(int64 (classes - 1)))
    let pairs = plus (truth.masked_select(counted) * c) clamped
    torch.bincount(pairs, minlength = int64 (classes * classes)).reshape(int64 classes, int64 classes)

/// IoU of each class, TP / (TP + FP + FN), from a confusion matrix; NaN for a class that appears
/// neither in the ground truth nor in the predictions.
let iou (confusion: Tensor) : float[] =
    let c = confusion.to_type(torch.float64)
    let tp = c.diagonal()
    let union = minus (plus (c.sum(0L)) (c.sum(1L))) tp
    let values = (tp / union).data<double>().ToArray()
    values

/// mIoU: the mean over all C classes (spec §12.1); a class absent from both the ground truth and
/// the predictions (NaN above) counts 0, as Leopart's TP / max(TP + FP + FN, 1e-8).
let meanIoU (perClass: float[]) : float =
    if perClass.Length = 0 then nan
    else perClass |> Array.averageBy (fun v -> if System.Double.IsNaN v then 0.0 else v)
