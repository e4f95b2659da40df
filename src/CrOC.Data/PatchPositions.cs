namespace CrOC.Data;

/// <summary>
/// Where each patch of a view came from in the original image (spec §9), the input of CrOC's
/// positional cost.
/// </summary>
public static class PatchPositions
{
    /// <summary>
    /// The (x, y) centre, in original-image pixels, of every patch of a view made by resizing
    /// <paramref name="box"/> to <paramref name="viewSize"/>² pixels and cutting it into
    /// <paramref name="patch"/>² patches: x = j0 + (p·c + p/2)·w/S − ½, y = i0 + (p·r + p/2)·h/S − ½,
    /// with c replaced by (G − 1 − c) for a flipped view. This equals the mean of the bicubically
    /// resized coordinate map over the patch (up to resampling ringing at the borders).
    /// Returns a flat array of G·G (x, y) pairs in token order (row-major over the G×G grid).
    /// </summary>
    public static float[] Compute(CropBox box, int viewSize, int patch)
    {
        if (patch <= 0 || viewSize % patch != 0)
            throw new ArgumentException($"view size {viewSize} must be a positive multiple of the patch size {patch}");
        int grid = viewSize / patch;
        var xy = new float[grid * grid * 2];
        for (int r = 0; r < grid; r++)
        {
            for (int c = 0; c < grid; c++)
            {
                int column = box.Flipped ? grid - 1 - c : c;
                int token = r * grid + c;
                xy[2 * token] = (float)(box.Left + (patch * column + patch / 2.0) * box.Width / viewSize - 0.5);
                xy[2 * token + 1] = (float)(box.Top + (patch * r + patch / 2.0) * box.Height / viewSize - 0.5);
            }
        }
        return xy;
    }
}
