namespace CrOC.Host.Evaluation;

/// <summary>Summaries of repeated measurements.</summary>
public static class Statistics
{
    /// <summary>The mean and the sample standard deviation (0 for one value).</summary>
    public static (double Mean, double Std) MeanStd(IEnumerable<double> values)
    {
        var v = values.ToArray();
        if (v.Length == 0) return (double.NaN, double.NaN);
        double mean = v.Average();
        double std = v.Length > 1 ? System.Math.Sqrt(v.Sum(x => (x - mean) * (x - mean)) / (v.Length - 1)) : 0;
        return (mean, std);
    }

    /// <summary>The mean of a class's IoU over probe seeds or runs, an absent class's NaN (in neither
    /// the masks nor the predictions) counting 0 as the mIoU counts it (Leopart's TP / max(TP + FP + FN,
    /// 1e-8), see Segmentation.meanIoU); NaN when absent in every one.</summary>
    public static double MeanAbsentAsZero(IEnumerable<double> values)
    {
        var v = values.ToArray();
        return v.All(double.IsNaN) ? double.NaN : v.Average(x => double.IsNaN(x) ? 0 : x);
    }

    /// <summary>Fractions as "mean ± std (a / b / …)" in percent with one decimal; one value alone
    /// as itself (its std of 0 would claim a spread that was not measured).</summary>
    public static string PercentCell(IEnumerable<double> fractions)
    {
        var v = fractions.Select(x => 100 * x).ToArray();
        var (mean, std) = MeanStd(v);
        string f(double x) => x.ToString("F1", System.Globalization.CultureInfo.InvariantCulture);
        return v.Length > 1 ? $"{f(mean)} ± {f(std)} ({string.Join(" / ", v.Select(f))})" : f(mean);
    }
}
