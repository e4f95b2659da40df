using TorchSharp;

namespace CrOC.Host.Runtime;

/// <summary>
/// Features of a frozen backbone, or a probe's loss, that are not finite: any score (or picture of
/// clusters) computed from them would be made of NaNs, so the command stops (exit 1) instead.
/// </summary>
public sealed class NonFiniteException(string message) : Exception(message), CommandLine.IReportedFailure
{
    /// <summary><paramref name="features"/> itself when all its values are finite; else throws naming <paramref name="what"/>.</summary>
    public static torch.Tensor Checked(torch.Tensor features, string what)
    {
        using var finite = features.isfinite().all();
        if (!finite.item<bool>())
            throw new NonFiniteException($"the backbone gives non-finite (NaN or infinite) features for {what}: its weights overflow in this precision, so no score is computed from them");
        return features;
    }
}
