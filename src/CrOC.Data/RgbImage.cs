namespace CrOC.Data;

/// <summary>An RGB image as planar float32 in [0, 1]: Pixels[c·H·W + y·W + x].</summary>
public sealed class RgbImage
{
    public int Width { get; }
    public int Height { get; }
    public float[] Pixels { get; }

    public RgbImage(int width, int height, float[]? pixels = null)
    {
        if (width <= 0 || height <= 0) throw new ArgumentException($"image size {width}x{height}");
        Width = width;
        Height = height;
        Pixels = pixels ?? new float[3 * width * height];
        if (Pixels.Length != 3 * width * height) throw new ArgumentException("pixel buffer does not match the size");
    }

    public int Plane => Width * Height;

    public float this[int c, int y, int x]
    {
        get => Pixels[c * Plane + y * Width + x];
        set => Pixels[c * Plane + y * Width + x] = value;
    }
}
