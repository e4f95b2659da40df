using CrOC.Data;
using CrOC.Host.Weights;
using SixLabors.ImageSharp;
using SixLabors.ImageSharp.PixelFormats;

namespace CrOC.Host.Visual;

/// <summary>
/// Linear-probe predictions next to the ground truth: one row per photo — the photo, its ground
/// truth, then each method's predicted mask — with column titles and a legend of the classes drawn
/// in the picture. Masks are read from the VOC-palette PNGs `eval-seg --save-predictions` writes.
/// </summary>
public static class PredictionPictures
{
    /// <summary>Class colours (index order); 255 (ignored) is black.</summary>
    public static readonly Rgb24[] Colours =
    [
        new(70, 130, 180), new(150, 60, 40), new(240, 220, 40), new(128, 64, 128), new(60, 60, 220), new(40, 150, 40),
        new(255, 140, 0), new(200, 150, 255), new(230, 30, 60), new(255, 255, 255), new(0, 220, 220), new(120, 120, 120),
    ];

    const int Scale = 2, Gap = 8, TextScale = 2, Margin = 10;

    /// <summary>Draws the photos <paramref name="indices"/> of <paramref name="set"/>.</summary>
    public static void Write(VocSegmentation set, int size, IReadOnlyList<string> classNames, IReadOnlyList<(string Label, string Folder)> methods, IReadOnlyList<int> indices, string path)
    {
        int count = indices.Count;
        int cell = size * Scale, columns = 2 + methods.Count;
        int lineHeight = (BitmapFont.Height + 3) * TextScale;
        int top = Margin + lineHeight, legendRows = (classNames.Count + 3) / 4;
        int width = 2 * Margin + columns * cell + (columns - 1) * Gap;
        int height = top + count * (cell + Gap) - Gap + Margin + legendRows * lineHeight + Margin;
        using var picture = new Image<Rgb24>(width, height, new Rgb24(255, 255, 255));
        var titles = new[] { "photo", "ground truth" }.Concat(methods.Select(m => m.Label)).ToArray();
        for (int c = 0; c < columns; c++)
            BitmapFont.Draw(picture, titles[c], Margin + c * (cell + Gap), Margin, TextScale, new Rgb24(0, 0, 0));
        for (int row = 0; row < count; row++)
        {
            int i = indices[row];
            var (image, mask) = set.Load(i);
            var photo = Resampling.ResizeBox(image, 0, 0, image.Width, image.Height, size, size);
            var truth = MaskResize.Resize(mask, image.Width, image.Height, size, size);
            int y = top + row * (cell + Gap);
            DrawPhoto(picture, photo, Margin, y);
            DrawMask(picture, truth, size, Margin + cell + Gap, y);
            for (int m = 0; m < methods.Count; m++)
            {
                var file = Path.Combine(methods[m].Folder, set.Names[i] + ".png");
                var predicted = VocSegmentation.LoadMask(file, out int w, out int h);
                if (w != size || h != size) throw new DatasetException($"{file}: {w}x{h}, expected {size}x{size}");
                DrawMask(picture, predicted, size, Margin + (2 + m) * (cell + Gap), y);
            }
        }
        int legendTop = top + count * (cell + Gap) - Gap + Margin;
        int entry = (width - 2 * Margin) / 4;
        for (int k = 0; k < classNames.Count; k++)
        {
            int x = Margin + k % 4 * entry, y = legendTop + k / 4 * lineHeight;
            int swatch = BitmapFont.Height * TextScale;
            BitmapFont.Fill(picture, x, y, swatch, swatch, new Rgb24(0, 0, 0));
            BitmapFont.Fill(picture, x + 1, y + 1, swatch - 2, swatch - 2, Colours[k % Colours.Length]);
            BitmapFont.Draw(picture, classNames[k], x + (BitmapFont.Height + 2) * TextScale, y, TextScale, new Rgb24(0, 0, 0));
        }
        PictureFile.Write(picture, path);
    }

    static void DrawPhoto(Image<Rgb24> picture, RgbImage photo, int left, int top)
    {
        for (int y = 0; y < photo.Height * Scale; y++)
            for (int x = 0; x < photo.Width * Scale; x++)
            {
                byte Channel(int c) => (byte)System.Math.Clamp((int)System.Math.Round(255 * photo[c, y / Scale, x / Scale]), 0, 255);
                picture[left + x, top + y] = new Rgb24(Channel(0), Channel(1), Channel(2));
            }
    }

    static void DrawMask(Image<Rgb24> picture, byte[] mask, int size, int left, int top)
    {
        for (int y = 0; y < size * Scale; y++)
            for (int x = 0; x < size * Scale; x++)
            {
                byte label = mask[y / Scale * size + x / Scale];
                picture[left + x, top + y] = label == VocPalette.Ignore ? new Rgb24(0, 0, 0) : Colours[label % Colours.Length];
            }
    }
}
