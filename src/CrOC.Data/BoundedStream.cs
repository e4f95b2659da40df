namespace CrOC.Data;

/// <summary>A read-only view of the next <c>size</c> bytes of a stream (the stream itself is not disposed with it).</summary>
public sealed class BoundedStream(Stream inner, long size) : Stream
{
    readonly long total = size;
    long left = size;
    public override bool CanRead => true;
    public override bool CanSeek => false;
    public override bool CanWrite => false;
    public override long Length => total;
    public override long Position { get => total - left; set => throw new NotSupportedException(); }
    public override void Flush() { }
    public override int Read(byte[] buffer, int offset, int count)
    {
        int n = inner.Read(buffer, offset, (int)System.Math.Min(count, left));
        left -= n;
        return n;
    }
    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
    public override void SetLength(long value) => throw new NotSupportedException();
    public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
}
