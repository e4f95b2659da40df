namespace CrOC.Data;

/// <summary>Nearest-neighbour resizing of label masks (labels must not be blended).</summary>
public static class MaskResize
{
    /// <summary>The box (left, top, width, height) of a width×height mask resized to outWidth×outHeight;
    /// each output pixel takes the label under its centre.</summary>
    public static byte[] ResizeBox(byte[] mask, int width, int height, double left, double top, double boxWidth, double boxHeight, int outWidth, int outHeight)
    {
        var output = new byte[outWidth * outHeight];
        for (int y = 0; y < outHeight; y++)
        {
            int sy = System.Math.Clamp((int)System.Math.Floor(top + (y + 0.5) * boxHeight / outHeight), 0, height - 1);
            for (int x = 0; x < outWidth; x++)
            {
                int sx = System.Math.Clamp((int)System.Math.Floor(left + (x + 0.5) * boxWidth / outWidth), 0, width - 1);
                output[y * outWidth + x] = mask[sy * width + sx];
            }
        }
        return output;
    }

    public static byte[] Resize(byte[] mask, int width, int height, int outWidth, int outHeight) =>
        ResizeBox(mask, width, height, 0, 0, width, height, outWidth, outHeight);

    /// <summary>Mirrors a mask left-right.</summary>
    public static byte[] Flip(byte[] mask, int width)
    {
        var output = (byte[])mask.Clone();
        for (int row = 0; row < mask.Length / width; row++) Array.Reverse(output, row * width, width);
        return output;
    }
}
