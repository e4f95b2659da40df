using CrOC.Host.Weights;
using SixLabors.ImageSharp;
using SixLabors.ImageSharp.PixelFormats;

namespace CrOC.Host.Visual;

/// <summary>A line chart of a few series over training steps (points with markers joined by lines),
/// with axes, tick labels, a title and a legend drawn in the picture.</summary>
public static class CurvePicture
{
    static readonly Rgb24[] Colours = [new(230, 25, 75), new(0, 110, 200), new(60, 160, 60), new(120, 120, 120)];
    const int Width = 760, Height = 440, Left = 80, Right = 200, Top = 50, Bottom = 60, Text = 2;

    /// <summary>Draws <paramref name="series"/> (label → (x, y) points, y in percent) to <paramref name="path"/>.</summary>
    public static void Write(string title, string xLabel, string yLabel, IReadOnlyList<(string Label, IReadOnlyList<(double X, double Y)> Points)> series, string path)
    {
        var all = series.SelectMany(s => s.Points).ToList();
        double xMax = System.Math.Max(1, all.Max(p => p.X));
        double yMin = System.Math.Floor(all.Min(p => p.Y) - 0.5), yMax = System.Math.Ceiling(all.Max(p => p.Y) + 0.5);
        int plotW = Width - Left - Right, plotH = Height - Top - Bottom;
        int X(double x) => Left + (int)System.Math.Round(x / xMax * plotW);
        int Y(double y) => Top + plotH - (int)System.Math.Round((y - yMin) / (yMax - yMin) * plotH);
        using var picture = new Image<Rgb24>(Width, Height, new Rgb24(255, 255, 255));
        var black = new Rgb24(0, 0, 0);
        var grid = new Rgb24(225, 225, 225);
        BitmapFont.Draw(picture, title, Left, 8, Text, black);
        double yStep = System.Math.Max(0.5, System.Math.Round((yMax - yMin) / 5 * 2) / 2);
        for (double y = yMin; y <= yMax + 1e-9; y += yStep)
        {
            Line(picture, Left, Y(y), Left + plotW, Y(y), grid);
            var label = y.ToString("0.#", System.Globalization.CultureInfo.InvariantCulture);
            BitmapFont.Draw(picture, label, Left - 8 - BitmapFont.Measure(label, Text), Y(y) - 7, Text, black);
        }
        foreach (var x in all.Select(p => p.X).Distinct().Order())
        {
            var label = x.ToString(System.Globalization.CultureInfo.InvariantCulture);
            BitmapFont.Draw(picture, label, X(x) - BitmapFont.Measure(label, Text) / 2, Top + plotH + 8, Text, black);
        }
        Line(picture, Left, Top, Left, Top + plotH, black);
        Line(picture, Left, Top + plotH, Left + plotW, Top + plotH, black);
        BitmapFont.Draw(picture, xLabel, Left + plotW / 2 - BitmapFont.Measure(xLabel, Text) / 2, Height - 24, Text, black);
        BitmapFont.Draw(picture, yLabel, 8, Top - 22, Text, black);
        for (int s = 0; s < series.Count; s++)
        {
            var colour = Colours[s % Colours.Length];
            var points = series[s].Points.OrderBy(p => p.X).ToList();
            for (int i = 1; i < points.Count; i++)
                Line(picture, X(points[i - 1].X), Y(points[i - 1].Y), X(points[i].X), Y(points[i].Y), colour, 2);
            foreach (var p in points) BitmapFont.Fill(picture, X(p.X) - 4, Y(p.Y) - 4, 9, 9, colour);
            int legendY = Top + 10 + s * 26;
            BitmapFont.Fill(picture, Left + plotW + 20, legendY, 24, 6, colour);
            BitmapFont.Draw(picture, series[s].Label, Left + plotW + 52, legendY - 5, Text, black);
        }
        PictureFile.Write(picture, path);
    }

    /// <summary>A straight line (DDA), <paramref name="thickness"/> pixels wide.</summary>
    static void Line(Image<Rgb24> picture, int x0, int y0, int x1, int y1, Rgb24 colour, int thickness = 1)
    {
        int steps = System.Math.Max(System.Math.Abs(x1 - x0), System.Math.Abs(y1 - y0));
        for (int i = 0; i <= steps; i++)
        {
            double t = steps == 0 ? 0 : (double)i / steps;
            int x = (int)System.Math.Round(x0 + t * (x1 - x0)), y = (int)System.Math.Round(y0 + t * (y1 - y0));
            BitmapFont.Fill(picture, x - thickness / 2, y - thickness / 2, thickness, thickness, colour);
        }
    }
}
