using System.Net;
using System.Net.Sockets;
using System.Text;
using Heddle.Contracts.Api;
using Heddle.LoadBalancer.L4;
using Heddle.Testing;

namespace Heddle.LoadBalancer.Tests;

/// <summary>A backend that greets each connection with its name, then echoes.</summary>
internal sealed class EchoBackend : IDisposable
{
    private readonly TcpListener _listener = new(IPAddress.Loopback, 0);
    private readonly CancellationTokenSource _stop = new();
    private readonly List<TcpClient> _clients = [];

    public EchoBackend(string name)
    {
        Name = name;
        _listener.Start();
        _ = AcceptAsync();
    }

    public string Name { get; }

    public int Port => ((IPEndPoint)_listener.LocalEndpoint).Port;

    public Backend Backend => new(Name, "127.0.0.1", Port);

    private async Task AcceptAsync()
    {
        while (!_stop.IsCancellationRequested)
        {
            TcpClient client;
            try
            {
                client = await _listener.AcceptTcpClientAsync(_stop.Token);
            }
            catch (Exception)
            {
                return;
            }

            lock (_clients)
            {
                _clients.Add(client);
            }

            _ = ServeAsync(client);
        }
    }

    private async Task ServeAsync(TcpClient client)
    {
        try
        {
            var stream = client.GetStream();
            await stream.WriteAsync(Encoding.ASCII.GetBytes(Name + "\n"));
            var buffer = new byte[1024];
            int read;
            while ((read = await stream.ReadAsync(buffer)) > 0)
            {
                await stream.WriteAsync(buffer.AsMemory(0, read));
            }
        }
        catch (Exception)
        {
        }
        finally
        {
            client.Dispose();
        }
    }

    /// <summary>Dies like a crashed process: stops listening and resets every open connection.</summary>
    public void Dispose()
    {
        _stop.Cancel();
        _listener.Stop();
        lock (_clients)
        {
            foreach (var client in _clients)
            {
                try
                {
                    client.Client.LingerState = new LingerOption(true, 0);
                }
                catch (Exception)
                {
                }

                client.Dispose();
            }
        }
    }
}

public sealed class TcpProxyTests
{
    private static VipListener Listener(params EchoBackend[] backends) => new("svc", "127.0.0.1", 0, "tcp", [.. backends.Select(b => b.Backend)]);

    private static (TcpClient Client, StreamReader Reader) Connect(TcpVipListener proxy)
    {
        var client = new TcpClient();
        client.Connect(proxy.Endpoint);
        client.ReceiveTimeout = 5000;
        return (client, new StreamReader(client.GetStream(), Encoding.ASCII));
    }

    private static string Greeting(TcpVipListener proxy)
    {
        var (client, reader) = Connect(proxy);
        using (client)
        {
            var name = reader.ReadLine()!;
            client.Client.LingerState = new LingerOption(true, 0); // close with a reset: no client port left in TIME_WAIT
            return name;
        }
    }

    [Fact]
    public async Task NewConnections_SpreadOverBackendsWithinFivePercent()
    {
        using var a = new EchoBackend("a");
        using var b = new EchoBackend("b");
        using var c = new EchoBackend("c");
        await using var proxy = new TcpVipListener(Listener(a, b, c), new LoadBalancerOptions());

        // 24,000 connections put ±5% at about 5.5 standard deviations of a fair three-way split.
        var counts = Enumerable.Range(0, 24_000).Select(_ => Greeting(proxy)).GroupBy(n => n).ToDictionary(g => g.Key, g => g.Count());

        Assert.Equal(3, counts.Count);
        Assert.All(counts.Values, n => Assert.InRange(n, 8000 * 0.95, 8000 * 1.05));
    }

    [Fact]
    public async Task NoBackend_TheClientIsResetAtOnce()
    {
        await using var proxy = new TcpVipListener(Listener(), new LoadBalancerOptions());
        var clock = System.Diagnostics.Stopwatch.StartNew();
        var (client, _) = Connect(proxy);
        using (client)
        {
            var buffer = new byte[16];
            var outcome = Record.Exception(() => client.GetStream().Read(buffer));
            Assert.True(outcome is IOException { InnerException: SocketException { SocketErrorCode: SocketError.ConnectionReset } }, $"expected a reset, got {outcome}");
        }

        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(2));
    }

    [Fact]
    public async Task BackendDiesMidConnection_TheClientConnectionIsClosed()
    {
        var a = new EchoBackend("a");
        await using var proxy = new TcpVipListener(Listener(a), new LoadBalancerOptions());
        var (client, reader) = Connect(proxy);
        using (client)
        {
            Assert.Equal("a", reader.ReadLine());

            a.Dispose();

            string? line = "unread";
            var outcome = Record.Exception(() => line = reader.ReadLine());
            Assert.True(outcome is IOException || line is null, "the client connection ends when its backend dies");
        }
    }

    [Fact]
    public async Task RemovedBackend_DrainsOpenConnections_ThenClosesThem_WhileNewOnesGoElsewhere()
    {
        using var a = new EchoBackend("a");
        using var b = new EchoBackend("b");
        await using var proxy = new TcpVipListener(Listener(a, b), new LoadBalancerOptions { DrainTimeout = TimeSpan.FromSeconds(1) });
        var open = Enumerable.Range(0, 40).Select(_ => Connect(proxy)).ToList();
        var onA = open.Where(o => o.Reader.ReadLine() == "a").ToList();
        Assert.NotEmpty(onA);

        proxy.Update([b.Backend]);

        var (client, reader) = onA[0];
        client.GetStream().Write("still here\n"u8);
        Assert.Equal("still here", reader.ReadLine());
        Assert.All(Enumerable.Range(0, 50), _ => Assert.Equal("b", Greeting(proxy)));
        await Poll.UntilAsync(() =>
        {
            try
            {
                client.GetStream().Write("x\n"u8);
                return reader.ReadLine() is null;
            }
            catch (IOException)
            {
                return true;
            }
        }, TimeSpan.FromSeconds(10), "the drained connection closed after the drain timeout");
        open.ForEach(o => o.Client.Dispose());
    }

    [Fact]
    public async Task ConfigurationSwapsUnderLoad_DropNoConnectionToARemainingBackend()
    {
        using var a = new EchoBackend("a");
        using var b = new EchoBackend("b");
        using var c = new EchoBackend("c");
        await using var proxy = new TcpVipListener(Listener(a, b), new LoadBalancerOptions { DrainTimeout = TimeSpan.FromMilliseconds(100) });
        var open = Enumerable.Range(0, 50).Select(_ => Connect(proxy)).ToList();
        open.ForEach(o => o.Reader.ReadLine());

        for (var i = 0; i < 20; i++)
        {
            proxy.Update(i % 2 == 0 ? [a.Backend, b.Backend, c.Backend] : [a.Backend, b.Backend]);
            foreach (var (client, reader) in open)
            {
                client.GetStream().Write(Encoding.ASCII.GetBytes($"ping {i}\n"));
                Assert.Equal($"ping {i}", reader.ReadLine());
            }
        }

        open.ForEach(o => o.Client.Dispose());
    }
}
