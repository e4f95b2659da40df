namespace CrOC.Data;

/// <summary>
/// A crop of an original image, in original-image pixels: top row <see cref="Top"/>, left column
/// <see cref="Left"/>, size <see cref="Height"/> × <see cref="Width"/>; <see cref="Flipped"/> when
/// the resized view was mirrored horizontally afterwards.
/// </summary>
public readonly record struct CropBox(double Top, double Left, double Height, double Width, bool Flipped);
