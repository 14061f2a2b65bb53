using System.Net;
using System.Net.Sockets;
using System.Text;
using Heddle.Contracts.Api;
using Heddle.LoadBalancer.L7;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;

namespace Heddle.LoadBalancer.Tests;

/// <summary>The HTTP/1.1 pass-through of an http VIP:port: framing, hop-by-hop headers, its own answers, and HTTP/2 handed to YARP.</summary>
public sealed class HttpPassThroughTests
{
    /// <summary>An instance that echoes request bodies and says which headers it got.</summary>
    private static async Task<(WebApplication App, Backend Backend)> EchoBackendAsync()
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.WebHost.UseUrls("http://127.0.0.1:0");
        var app = builder.Build();
        app.MapPost("/echo", async (HttpRequest request) =>
        {
            using var body = new MemoryStream();
            await request.Body.CopyToAsync(body);
            return Results.Bytes(body.ToArray(), "application/octet-stream");
        });
        app.MapGet("/headers", (HttpRequest request) =>
            Results.Text($"xff={request.Headers["X-Forwarded-For"]};proto={request.Headers["X-Forwarded-Proto"]};connection={request.Headers.Connection};version={request.Protocol}"));
        await app.StartAsync();
        return (app, new Backend("echo", "127.0.0.1", new Uri(app.Urls.Single()).Port));
    }

    private static async Task<string> RawAsync(IPEndPoint proxy, string request)
    {
        using var client = new TcpClient();
        await client.ConnectAsync(proxy);
        var stream = client.GetStream();
        await stream.WriteAsync(Encoding.ASCII.GetBytes(request));
        using var reader = new StreamReader(stream);
        return await reader.ReadToEndAsync().WaitAsync(TimeSpan.FromSeconds(10));
    }

    [Fact]
    public async Task Post_BodiesWithALengthChunkedAndLarge_ReachTheInstanceWhole()
    {
        var (app, backend) = await EchoBackendAsync();
        await using var _ = app;
        await using var proxy = await HttpVipListener.StartAsync(new VipListener("svc", "127.0.0.1", 0, "http", [backend]), new LoadBalancerOptions());
        using var http = new HttpClient { BaseAddress = new Uri($"http://{proxy.Endpoint}/") };
        var large = new byte[3 * 1024 * 1024];
        new Random(7).NextBytes(large);

        using var sized = await http.PostAsync("/echo", new StringContent("hello"));
        using var chunked = await http.PostAsync("/echo", new StreamContent(new NonSeekable(Encoding.ASCII.GetBytes("in chunks"))));
        using var big = await http.PostAsync("/echo", new ByteArrayContent(large));

        Assert.Equal("hello", await sized.Content.ReadAsStringAsync());
        Assert.True(chunked.RequestMessage!.Content!.Headers.ContentLength is null);
        Assert.Equal("in chunks", await chunked.Content.ReadAsStringAsync());
        Assert.Equal(large, await big.Content.ReadAsByteArrayAsync());
    }

    [Fact]
    public async Task Request_GetsXForwardedFor_AndTheClientsConnectionHeaderStaysWithTheProxy()
    {
        var (app, backend) = await EchoBackendAsync();
        await using var _ = app;
        await using var proxy = await HttpVipListener.StartAsync(new VipListener("svc", "127.0.0.1", 0, "http", [backend]), new LoadBalancerOptions());

        var answer = await RawAsync(proxy.Endpoint, "GET /headers HTTP/1.1\r\nHost: x\r\nX-Forwarded-For: 6.6.6.6\r\nConnection: close\r\n\r\n");

        Assert.StartsWith("HTTP/1.1 200", answer);
        Assert.Contains("Connection: close\r\n", answer); // told the client, which asked; the instance's connection stays open
        Assert.EndsWith("xff=127.0.0.1;proto=http;connection=;version=HTTP/1.1", answer);
    }

    [Fact]
    public async Task PipelinedRequests_AreAnsweredInOrder()
    {
        var (app, backend) = await EchoBackendAsync();
        await using var _ = app;
        await using var proxy = await HttpVipListener.StartAsync(new VipListener("svc", "127.0.0.1", 0, "http", [backend]), new LoadBalancerOptions());

        var answer = await RawAsync(proxy.Endpoint,
            "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nfirstPOST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 6\r\nConnection: close\r\n\r\nsecond");

        Assert.Equal(2, answer.Split("HTTP/1.1 200").Length - 1);
        Assert.True(answer.IndexOf("first", StringComparison.Ordinal) < answer.IndexOf("second", StringComparison.Ordinal), answer);
    }

    [Fact]
    public async Task ResponseEndingWithItsConnection_IsPassedOnWhole_ThenTheClientConnectionCloses()
    {
        using var backend = new TcpListener(IPAddress.Loopback, 0);
        backend.Start();
        var serving = Task.Run(async () =>
        {
            using var client = await backend.AcceptTcpClientAsync();
            var stream = client.GetStream();
            var buffer = new byte[4096];
            var head = string.Empty;
            while (!head.Contains("\r\n\r\n", StringComparison.Ordinal))
            {
                head += Encoding.ASCII.GetString(buffer, 0, await stream.ReadAsync(buffer));
            }

            await stream.WriteAsync("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nuntil the end"u8.ToArray());
        });
        await using var proxy = await HttpVipListener.StartAsync(
            new VipListener("svc", "127.0.0.1", 0, "http", [new Backend("raw", "127.0.0.1", ((IPEndPoint)backend.LocalEndpoint).Port)]), new LoadBalancerOptions());

        var answer = await RawAsync(proxy.Endpoint, "GET / HTTP/1.1\r\nHost: x\r\n\r\n");
        await serving;

        Assert.StartsWith("HTTP/1.1 200 OK\r\n", answer);
        Assert.Contains("Connection: close\r\n", answer);
        Assert.EndsWith("\r\n\r\nuntil the end", answer);
    }

    [Theory]
    [InlineData("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n", "400")]
    [InlineData("GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n", "400")]
    [InlineData("GET / HTTP/1.1\r\nHost : x\r\n\r\n", "400")]
    [InlineData("GET / HTTP/3.0\r\nHost: x\r\n\r\n", "400")]
    public async Task AmbiguousOrMalformedHead_Is400_AndNeverReachesTheInstance(string request, string status)
    {
        var (app, backend) = await EchoBackendAsync();
        await using var _ = app;
        await using var proxy = await HttpVipListener.StartAsync(new VipListener("svc", "127.0.0.1", 0, "http", [backend]), new LoadBalancerOptions());

        var answer = await RawAsync(proxy.Endpoint, request);

        Assert.StartsWith($"HTTP/1.1 {status} ", answer);
        Assert.Equal(0, proxy.Counters.Read().Sum(b => b.Value.ByStatusClass.Sum()));
    }

    [Fact]
    public async Task AHeadTrickledSlowerThanTheHeadTimeout_Gets408AndIsClosed_WhileAnIdleKeptAliveConnectionIsNot()
    {
        var (app, backend) = await EchoBackendAsync();
        await using var _ = app;
        var headTimeout = TimeSpan.FromSeconds(1);
        await using var proxy = await HttpVipListener.StartAsync(new VipListener("svc", "127.0.0.1", 0, "http", [backend]), new LoadBalancerOptions { HeadTimeout = headTimeout });
        using var idle = new TcpClient();
        await idle.ConnectAsync(proxy.Endpoint);
        var kept = idle.GetStream();
        var request = Encoding.ASCII.GetBytes("GET /headers HTTP/1.1\r\nHost: svc\r\n\r\n");
        await kept.WriteAsync(request);
        Assert.StartsWith("HTTP/1.1 200 ", await ReadAnswerAsync(kept));

        // A client that began a head and went quiet gets 408 at the head timeout (the idle timeout is minutes).
        using var quiet = new TcpClient();
        await quiet.ConnectAsync(proxy.Endpoint);
        await quiet.GetStream().WriteAsync("GET /headers HTTP/1.1\r\nHost: svc\r\nX-Half: "u8.ToArray());
        var clock = System.Diagnostics.Stopwatch.StartNew();
        var answer = await new StreamReader(quiet.GetStream()).ReadToEndAsync().WaitAsync(TimeSpan.FromSeconds(10));
        var took = clock.Elapsed;
        Assert.StartsWith("HTTP/1.1 408 Request Timeout\r\n", answer);
        Assert.Contains("Connection: close", answer);
        Assert.True(took >= headTimeout * 0.9 && took < headTimeout * 3, $"the half head was answered after {took.TotalSeconds:0.00} s (head timeout {headTimeout.TotalSeconds} s)");

        // A slowloris client: a byte of header every 100 ms, never the blank line. It is never idle, so only the deadline
        // on the head ends it: with the 408, or with a reset when the balancer closes on bytes it had not read.
        using var slow = new TcpClient();
        await slow.ConnectAsync(proxy.Endpoint);
        var trickle = slow.GetStream();
        await trickle.WriteAsync("GET /headers HTTP/1.1\r\nHost: svc\r\nX-Slow: "u8.ToArray());
        clock.Restart();
        var reading = ReadUntilEndedAsync(trickle);
        while (!reading.IsCompleted && clock.Elapsed < TimeSpan.FromSeconds(10))
        {
            try
            {
                await trickle.WriteAsync("a"u8.ToArray());
            }
            catch (IOException)
            {
                break; // closed by the balancer
            }

            await Task.WhenAny(reading, Task.Delay(100));
        }

        var (slowAnswer, _) = await reading.WaitAsync(TimeSpan.FromSeconds(5));
        var ended = clock.Elapsed;
        Assert.True(ended >= headTimeout * 0.9 && ended < headTimeout * 3, $"the trickled head was ended after {ended.TotalSeconds:0.00} s (head timeout {headTimeout.TotalSeconds} s)");
        Assert.True(slowAnswer.Length == 0 || slowAnswer.StartsWith("HTTP/1.1 408 ", StringComparison.Ordinal), slowAnswer);

        // The kept-alive connection has waited longer than the head timeout with no request begun: it is not cut.
        await kept.WriteAsync(request);
        Assert.StartsWith("HTTP/1.1 200 ", await ReadAnswerAsync(kept));
    }

    /// <summary>Everything the other side sent until it closed or reset the connection, and whether it reset it.</summary>
    private static async Task<(string Text, bool Reset)> ReadUntilEndedAsync(NetworkStream stream)
    {
        var buffer = new byte[8192];
        var text = new StringBuilder();
        try
        {
            while (await stream.ReadAsync(buffer) is var read and > 0)
            {
                text.Append(Encoding.ASCII.GetString(buffer, 0, read));
            }

            return (text.ToString(), false);
        }
        catch (IOException)
        {
            return (text.ToString(), true);
        }
    }

    /// <summary>One answer with a Content-Length body off a kept-alive connection.</summary>
    private static async Task<string> ReadAnswerAsync(NetworkStream stream)
    {
        var buffer = new byte[8192];
        var text = new StringBuilder();
        while (true)
        {
            var read = await stream.ReadAsync(buffer).AsTask().WaitAsync(TimeSpan.FromSeconds(10));
            Assert.True(read > 0, $"the connection closed after: {text}");
            text.Append(Encoding.ASCII.GetString(buffer, 0, read));
            var all = text.ToString();
            var end = all.IndexOf("\r\n\r\n", StringComparison.Ordinal);
            var length = System.Text.RegularExpressions.Regex.Match(all, "Content-Length: (\\d+)", System.Text.RegularExpressions.RegexOptions.IgnoreCase);
            if (end >= 0 && length.Success && all.Length >= end + 4 + int.Parse(length.Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture))
            {
                return all;
            }
        }
    }

    [Fact]
    public async Task HeadLargerThan32KiB_Is431()
    {
        await using var proxy = await HttpVipListener.StartAsync(new VipListener("svc", "127.0.0.1", 0, "http", [new Backend("none", "127.0.0.1", 9)]), new LoadBalancerOptions());

        var answer = await RawAsync(proxy.Endpoint, $"GET / HTTP/1.1\r\nHost: x\r\nX-Big: {new string('a', 40_000)}\r\n\r\n");

        Assert.StartsWith("HTTP/1.1 431 ", answer);
    }

    [Fact]
    public async Task Http2WithPriorKnowledge_IsServedByTheFullProxy()
    {
        var (app, backend) = await EchoBackendAsync();
        await using var _ = app;
        await using var proxy = await HttpVipListener.StartAsync(new VipListener("svc", "127.0.0.1", 0, "http", [backend]), new LoadBalancerOptions());
        using var http = new HttpClient { DefaultRequestVersion = HttpVersion.Version20, DefaultVersionPolicy = HttpVersionPolicy.RequestVersionExact };

        using var response = await http.GetAsync($"http://{proxy.Endpoint}/headers");

        Assert.Equal(HttpVersion.Version20, response.Version);
        Assert.Contains("xff=127.0.0.1", await response.Content.ReadAsStringAsync());
    }

    [Fact]
    public void ChunkedFraming_FindsTheEndAcrossAnySplit()
    {
        var body = "4;ext=1\r\nWiki\r\n5\r\npedia\r\n0\r\nTrailer: x\r\n\r\nNEXT"u8.ToArray();
        for (var split = 1; split < body.Length - 4; split++)
        {
            var framing = BodyFraming.Chunks();
            var first = framing.Consume(body.AsSpan(0, split));
            var second = framing.Consume(body.AsSpan(split));
            Assert.Equal(split, first);
            Assert.True(framing.Done, $"split at {split}");
            Assert.Equal(body.Length - 4, first + second);
        }
    }

    [Fact]
    public void ChunkedFraming_BrokenSizes_AreRefused()
    {
        var framing = BodyFraming.Chunks();

        Assert.Equal(-1, framing.Consume("zz\r\n"u8));
    }

    /// <summary>A body without a known length: HttpClient sends it chunked.</summary>
    private sealed class NonSeekable(byte[] data) : MemoryStream(data)
    {
        public override bool CanSeek => false;
    }
}
