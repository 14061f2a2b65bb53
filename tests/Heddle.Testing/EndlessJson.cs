namespace Heddle.Testing;

/// <summary>{"packageSha256":"aaaa... for as long as asked; counts what was read from it.</summary>
public sealed class EndlessJson(long length) : Stream
{
    private static readonly byte[] Start = "{\"packageSha256\":\""u8.ToArray();

    public long Sent { get; private set; }

    public override int Read(byte[] buffer, int offset, int count)
    {
        if (Sent >= length)
        {
            return 0;
        }

        var n = (int)Math.Min(count, length - Sent);
        for (var i = 0; i < n; i++)
        {
            var position = Sent + i;
            buffer[offset + i] = position < Start.Length ? Start[position] : (byte)'a';
        }

        Sent += n;
        return n;
    }

    public override bool CanRead => true;
    public override bool CanSeek => false;
    public override bool CanWrite => false;
    public override long Length => throw new NotSupportedException();
    public override long Position { get => Sent; set => throw new NotSupportedException(); }
    public override void Flush() { }
    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
    public override void SetLength(long value) => throw new NotSupportedException();
    public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
}
