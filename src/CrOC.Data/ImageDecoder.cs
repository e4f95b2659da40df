using System.Runtime.InteropServices;
using SixLabors.ImageSharp;
using SixLabors.ImageSharp.Formats.Gif;
using SixLabors.ImageSharp.Formats.Png;
using SixLabors.ImageSharp.Formats.Tiff;
using SixLabors.ImageSharp.Metadata.Profiles.Exif;
using SixLabors.ImageSharp.PixelFormats;
using SixLabors.ImageSharp.Processing;

namespace CrOC.Data;

/// <summary>
/// Decodes untrusted image files (JPEG, PNG, BMP, GIF, WebP, TIFF) to RGB with ImageSharp 2.1.
/// The header is identified first and images beyond <see cref="MaxPixels"/> or
/// <see cref="MaxFileBytes"/> are refused before any pixel is decoded; only the first frame of
/// animated or multi-page files is decoded; EXIF orientation is applied (unless
/// <see cref="ApplyOrientation"/> is off); grayscale, palette,
/// CMYK, 16-bit and alpha images become 8-bit RGB (alpha dropped). Every failure of a file is a
/// <see cref="DecodeException"/> with the reason; the process out of file descriptors, an <see cref="IOException"/>.
/// </summary>
public sealed class ImageDecoder
{
    public long MaxPixels { get; init; } = 64L << 20;
    /// <summary>The longest side (JPEG's own limit): a 12-megapixel row of 1 px height would pass
    /// <see cref="MaxPixels"/> but not fit a resize's intermediate buffer.</summary>
    public int MaxSide { get; init; } = 65535;
    public long MaxFileBytes { get; init; } = 256L << 20;
    /// <summary>Turn the pixels as the EXIF orientation says. Off for images paired with a mask,
    /// which is drawn on the stored pixel grid (as PIL and torchvision read both).</summary>
    public bool ApplyOrientation { get; init; } = true;

    readonly Configuration configuration;

    public ImageDecoder()
    {
        configuration = Configuration.Default.Clone();
        configuration.MaxDegreeOfParallelism = 1; // the loader's workers are the parallelism
        configuration.ImageFormatsManager.SetDecoder(SixLabors.ImageSharp.Formats.Gif.GifFormat.Instance, new GifDecoder { DecodingMode = SixLabors.ImageSharp.Metadata.FrameDecodingMode.First });
        configuration.ImageFormatsManager.SetDecoder(SixLabors.ImageSharp.Formats.Tiff.TiffFormat.Instance, new TiffDecoder { DecodingMode = SixLabors.ImageSharp.Metadata.FrameDecodingMode.First });
    }

    public RgbImage Decode(string path) => Decode(ImageEntry.File(path));

    /// <summary>Decodes a file or an archive member; the pixels go into <paramref name="reuse"/>
    /// when it has the image's size (a worker's previous image: no new 4-byte-per-value buffer, whose
    /// large-object allocation costs more than the decode of a small JPEG).</summary>
    public RgbImage Decode(ImageEntry entry, RgbImage? reuse = null) => Decode(Read(entry), entry.Name, reuse);

    /// <summary>Waits before each retry of a read that failed with a storage error (see
    /// <see cref="IsStorageFailure"/>): a network file system's short outage is ridden out, not
    /// taken for a bad image. After the last, the file is reported (and skipped by the loader).</summary>
    public IReadOnlyList<TimeSpan> StorageRetryWaits { get; init; } = [TimeSpan.FromSeconds(0.5), TimeSpan.FromSeconds(2), TimeSpan.FromSeconds(8)];

    /// <summary>The encoded bytes of a file or an archive member, its size checked before it is read.</summary>
    public byte[] Read(ImageEntry entry)
    {
        for (int retry = 0; ; retry++)
        {
            try { return ReadOnce(entry); }
            catch (IOException e) when (OutOfDescriptors(e)) // the process's or the system's, not the file's: each image was skipped after 10.5 s of retries once
            {
                throw new IOException($"out of open files (the process's limit, ulimit -n, or the system's) opening {entry.Name}: {System.Runtime.InteropServices.Marshal.GetPInvokeErrorMessage(e.HResult & 0xFFFF)}", e);
            }
            catch (IOException e) when (IsStorageFailure(e) && retry < StorageRetryWaits.Count) { Thread.Sleep(StorageRetryWaits[retry]); }
            catch (Exception e) when (e is FileNotFoundException or DirectoryNotFoundException) { throw new DecodeException(entry.Name, "file not found") { Missing = true }; }
            catch (NotRegularFileException) { throw new DecodeException(entry.Name, NotAnImageFile); }
            catch (IOException e) when (entry.Member is null && (e.HResult & 0xFFFF) == EISDIR) { throw new DecodeException(entry.Name, "a folder, not an image file"); }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                throw new DecodeException(entry.Name, $"{e.GetType().Name}: {e.Message}") { Storage = IsStorageFailure(e) };
            }
        }
    }

    /// <summary>Whether <paramref name="e"/>, raised while ImageSharp read a file, is that file's failure.
    /// The third-party decoders raise many kinds of exception on malformed input (a BMP whose bit count
    /// is 0 divides by zero; a PNG cut inside its pHYs chunk is out of range): every one is the file's;
    /// a cancellation and the process's out-of-memory are not (the limits keep a file's own demands small).</summary>
    public static bool IsMalformedInput(Exception e) => e is not (OperationCanceledException or OutOfMemoryException);

    /// <summary>An I/O error of the storage (EIO, a stale NFS handle, a dropped mount) rather than
    /// of the file: not a missing file, not one cut short, not a path that cannot lead to a file
    /// (a symbolic-link loop, a folder, a name too long: retrying cannot help).</summary>
    public static bool IsStorageFailure(Exception e) =>
        e is IOException and not (FileNotFoundException or DirectoryNotFoundException or EndOfStreamException or PathTooLongException or NotRegularFileException)
        && (e.HResult & 0xFFFF) is not (EISDIR or ELOOP) // RegularFile.OpenOrThrow raises ENOTDIR and ENAMETOOLONG as the types above
        && !OutOfDescriptors(e);

    /// <summary>EMFILE or ENFILE: no descriptor was left to open a file with.</summary>
    static bool OutOfDescriptors(Exception e) => (e.HResult & 0xFFFF) is EMFILE or ENFILE;

    const string NotAnImageFile = "not a regular file (a FIFO or a socket?), not an image file";

    const int ENFILE = 23, EMFILE = 24, EISDIR = 21, ELOOP = 40; // Linux errno values, as .NET puts them in HResult

    byte[] ReadOnce(ImageEntry entry)
    {
        if (entry.Member is null) return ReadWhole(entry);
        if (entry.Length == 0) throw new DecodeException(entry.Name, "empty file");
        CheckBytes(entry.Length, entry.Name);
        return TarArchive.ReadMember(entry.Path, entry.Offset, entry.Length);
    }

    /// <summary>A file's bytes, opened without blocking and sized by what opened (a link's target, as the
    /// kernel resolves it): a FIFO is refused, not waited on (a worker waited for a writer forever once,
    /// and the run with it); a device gives no length and is not read on (a link to /dev/zero was read
    /// until out of memory once); a file's size is checked before its bytes are allocated.</summary>
    byte[] ReadWhole(ImageEntry entry)
    {
        using var stream = RegularFile.OpenOrThrow(entry.Path);
        long length = stream.Length;
        if (length == 0) throw new DecodeException(entry.Name, stream.ReadByte() >= 0 ? "a device, not an image file" : "empty file"); // "empty file" named a FIFO or a device once
        CheckBytes(length, entry.Name);
        var bytes = new byte[length];
        stream.ReadExactly(bytes);
        return bytes;
    }

    /// <summary>Decodes encoded image bytes; <paramref name="name"/> names them in errors.</summary>
    public RgbImage Decode(byte[] bytes, string name, RgbImage? reuse = null)
    {
        try
        {
            CheckHeader(bytes, name);
            using var image = Image.Load<Rgb24>(configuration, bytes);
            if (ApplyOrientation && image.Metadata.ExifProfile?.GetValue(ExifTag.Orientation) is not null) image.Mutate(x => x.AutoOrient());
            return ToPlanar(image, reuse);
        }
        catch (DecodeException) { throw; }
        catch (Exception e) when (IsMalformedInput(e))
        {
            throw new DecodeException(name, CutShort(bytes) ?? $"{e.GetType().Name}: {e.Message}");
        }
    }

    /// <summary>Why bytes a decoder failed on are an image cut short, or null: a file cut inside its headers fails there,
    /// before its end is checked (the decoder's "InvalidImageContentException: … the C4 marker" was said once).</summary>
    public string? CutShort(byte[] bytes) => Image.DetectFormat(configuration, bytes) is { } format ? EncodedEnd.Missing(format, bytes) : null;

    /// <summary>Pixels of a kind ImageSharp converts to (a mask's stored values: L8, L16), under this
    /// decoder's limits and settings (bytes, pixels, sides, first frame only).</summary>
    public Image<TPixel> Load<TPixel>(byte[] bytes, string name) where TPixel : unmanaged, IPixel<TPixel>
    {
        CheckBytes(bytes.LongLength, name);
        CheckHeader(bytes, name);
        return Image.Load<TPixel>(configuration, bytes);
    }

    /// <summary>The checks <see cref="Load"/> makes before any pixel is decoded (bytes, pixels, sides, expansion, a
    /// cut end), for a reader that decodes the pixels itself (<see cref="PngIndices"/>: tiny interlaced PNGs too).</summary>
    public void Check(byte[] bytes, string name)
    {
        CheckBytes(bytes.LongLength, name);
        CheckHeader(bytes, name, byImageSharp: false);
    }

    /// <summary>Refuses bytes whose metadata would expand beyond bounds (<see cref="ExpansionBombs"/>), whose header is
    /// missing, whose size is beyond the limits, that are cut short (<see cref="EncodedEnd"/>), or a TIFF whose JPEG
    /// strips would be decoded outside the limits (<see cref="TiffJpegStrips"/>), or, for ImageSharp's decoding, an interlaced PNG
    /// with a side below 5 (<see cref="TinyInterlaced"/>), before any pixel is decoded.</summary>
    void CheckHeader(byte[] bytes, string name, bool byImageSharp = true)
    {
        if (ExpansionBombs.Why(bytes) is { } bomb) throw new DecodeException(name, bomb); // before Identify, which would expand them
        var header = Image.Identify(configuration, bytes, out var format);
        CheckSize(header, name);
        if (byImageSharp && format is PngFormat && TinyInterlaced(bytes, header!)) // after CheckSize: a header is there
            throw new DecodeException(name, $"an interlaced PNG of {header!.Width}x{header.Height} pixels: with a side below 5 some of its seven passes are empty, which ImageSharp 2.1 decodes wrongly or never finishes");
        if (EncodedEnd.Missing(format, bytes) is { } why) throw new DecodeException(name, why);
        if (format is TiffFormat && TiffJpegStrips.Why(bytes) is { } strips) throw new DecodeException(name, strips);
    }

    /// <summary>Whether a PNG (IHDR first, as the format requires: its interlace byte at offset 28) is
    /// Adam7-interlaced with a side below 5 pixels. A 3×3 one hung a training run's step beyond SIGTERM
    /// (ImageSharp looping on the empty passes); 8-bit ones were refused as "unknown filter type".</summary>
    static bool TinyInterlaced(byte[] bytes, IImageInfo header) =>
        bytes.Length > 28 && bytes[28] == 1 && (header.Width < 5 || header.Height < 5);

    void CheckBytes(long length, string name)
    {
        if (length > MaxFileBytes) throw new DecodeException(name, $"{length} bytes exceed the limit of {MaxFileBytes}");
    }

    /// <summary>Refuses a missing header and sizes beyond <see cref="MaxPixels"/> or <see cref="MaxSide"/>,
    /// before any pixel is decoded.</summary>
    public void CheckSize(IImageInfo? header, string name)
    {
        if (header is null) throw new DecodeException(name, "not a supported image format");
        if ((long)header.Width * header.Height > MaxPixels || header.Width <= 0 || header.Height <= 0)
            throw new DecodeException(name, $"{header.Width}x{header.Height} pixels exceed the limit of {MaxPixels}");
        if (header.Width > MaxSide || header.Height > MaxSide)
            throw new DecodeException(name, $"{header.Width}x{header.Height} pixels: a side exceeds the limit of {MaxSide}");
    }

    /// <summary>Interleaved 8-bit RGB rows to planar float32 in [0, 1] (byte · (1/255), as the
    /// scalar conversion does; <see cref="InterleavedRows"/> does it a vector at a time).</summary>
    static RgbImage ToPlanar(Image<Rgb24> image, RgbImage? reuse)
    {
        var rgb = reuse is not null && reuse.Width == image.Width && reuse.Height == image.Height
            ? reuse : new RgbImage(image.Width, image.Height);
        var pixels = rgb.Pixels;
        int plane = rgb.Plane, width = image.Width;
        image.ProcessPixelRows(rows =>
        {
            for (int y = 0; y < rows.Height; y++)
                InterleavedRows.ToPlanes(MemoryMarshal.AsBytes(rows.GetRowSpan(y)),
                    pixels.AsSpan(y * width, width), pixels.AsSpan(plane + y * width, width), pixels.AsSpan(2 * plane + y * width, width));
        });
        return rgb;
    }
}

/// <summary>An image that could not be decoded, with the file and the reason.</summary>
public sealed class DecodeException(string path, string reason) : Exception($"{path}: {reason}")
{
    public string Path { get; } = path;
    public string Reason { get; } = reason;
    /// <summary>The storage failed (<see cref="ImageDecoder.IsStorageFailure"/>), not the file.</summary>
    public bool Storage { get; init; }
    /// <summary>The file is not there (not found).</summary>
    public bool Missing { get; init; }

    /// <summary>"PATH: REASON" on one line, control characters escaped: a file named with a newline wrote a
    /// line of its choosing into train.log once.</summary>
    public string Said => $"{Quoted.Escaped(Path)}: {Quoted.Escaped(Reason)}";
}
