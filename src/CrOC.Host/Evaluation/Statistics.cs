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
}
