using System.Net;
using System.Net.Http.Headers;

namespace Heddle.Testing;

/// <summary>{"packageSha256":"aaaa... for as long as asked; counts what was read from it.</summary>
public sealed class EndlessJson(long length) : Stream
{
    private static readonly byte[] Start = "{\"packageSha256\":\""u8.ToArray();

    public long Sent { get; private set; }

    /// <summary>
    /// POSTs this body as JSON; the status the server answered. A server that answers 413 may close the connection
    /// while the client still sends, which the client sees as an HttpRequestException: that is read as 413.
    /// </summary>
    public async Task<HttpStatusCode> PostAsync(HttpClient http, string path)
    {
        using var content = new StreamContent(this);
        content.Headers.ContentType = new MediaTypeHeaderValue("application/json");
        try
        {
            using var response = await http.PostAsync(path, content);
            return response.StatusCode;
        }
        catch (HttpRequestException)
        {
            return HttpStatusCode.RequestEntityTooLarge;
        }
    }

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
