using System.Net;
using System.Net.Http.Headers;
using Heddle.Testing;

namespace Heddle.Controller.Tests.Integration;

/// <summary>A huge JSON body is cut off at the door (configurations are small), the controller stays the same process and keeps answering.</summary>
[Collection(nameof(ClusterCollection))]
public sealed class RequestLimitTests
{
    [Fact]
    public async Task AHugeDeploymentBody_Is413_WithoutBufferingIt_AndTheApiKeepsAnswering()
    {
        await using var cluster = await TestCluster.StartAsync(nodes: 1);
        using var http = new HttpClient { BaseAddress = cluster.Controller.ApiUrl, Timeout = TimeSpan.FromSeconds(30) };
        http.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", cluster.Controller.ApiToken);

        // 64 MiB of JSON: a string that never ends before the limit.
        var body = new EndlessJson(64L << 20);
        using var content = new StreamContent(body);
        content.Headers.ContentType = new MediaTypeHeaderValue("application/json");
        HttpStatusCode status;
        try
        {
            using var response = await http.PostAsync("v1/deployments", content);
            status = response.StatusCode;
        }
        catch (HttpRequestException)
        {
            status = HttpStatusCode.RequestEntityTooLarge; // the server may close the connection while the client still sends
        }

        Assert.Equal(HttpStatusCode.RequestEntityTooLarge, status);
        Assert.True(body.Sent < 32L << 20, $"the server read {body.Sent >> 20} MiB before refusing");
        Assert.Empty(await cluster.Api.ListServicesAsync());
    }

    /// <summary>{"packageSha256":"aaaa... for as long as asked; counts what was read from it.</summary>
    private sealed class EndlessJson(long length) : Stream
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
}
