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
    public async Task AnIdleConnection_IsClosedAfterTheIdleTimeout_WhileABusyOneStays()
    {
        using var a = new EchoBackend("a");
        // Pings every 100 ms keep the busy one alive with a wide margin: a loaded test machine can delay a 100 ms wait by a second.
        await using var proxy = new TcpVipListener(Listener(a), new LoadBalancerOptions { IdleTimeout = TimeSpan.FromSeconds(2) });
        var (idle, idleReader) = Connect(proxy);
        var (busy, busyReader) = Connect(proxy);
        using (idle)
        using (busy)
        {
            Assert.Equal("a", idleReader.ReadLine());
            Assert.Equal("a", busyReader.ReadLine());
            var closed = Task.Run(() => idle.GetStream().Read(new byte[16]) == 0 || true);
            var clock = System.Diagnostics.Stopwatch.StartNew();
            while (!closed.IsCompleted && clock.Elapsed < TimeSpan.FromSeconds(10))
            {
                // Talk on the busy one while the idle one waits for its end.
                busy.GetStream().Write("ping\n"u8);
                Assert.Equal("ping", busyReader.ReadLine());
                await Task.Delay(100);
            }

            Assert.True(closed.IsCompleted, "the idle connection is still open after 10 s");
            busy.GetStream().Write("still\n"u8);
            Assert.Equal("still", busyReader.ReadLine());
        }
    }

    [Fact]
    public async Task OneClientAddress_CannotTakeEveryConnection()
    {
        using var a = new EchoBackend("a");
        await using var proxy = new TcpVipListener(Listener(a), new LoadBalancerOptions { MaxConnectionsPerClient = 5 });
        var greedy = new List<TcpClient>();
        try
        {
            var greeted = 0;
            for (var i = 0; i < 12; i++)
            {
                var client = new TcpClient(new IPEndPoint(IPAddress.Parse("127.0.0.2"), 0));
                greedy.Add(client);
                client.Connect(proxy.Endpoint);
                client.ReceiveTimeout = 5000;
                try
                {
                    greeted += new StreamReader(client.GetStream(), Encoding.ASCII).ReadLine() == "a" ? 1 : 0;
                }
                catch (IOException)
                {
                    // reset: over this client's share
                }
            }

            Assert.Equal(5, greeted);
            Assert.Equal("a", Greeting(proxy)); // another address still gets through
        }
        finally
        {
            greedy.ForEach(c => c.Dispose());
        }
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

    [Fact]
    public async Task TwoLoopThreads_ShareThePort_AndBothServe()
    {
        using var a = new EchoBackend("a");
        using var b = new EchoBackend("b");
        await using var proxy = new TcpVipListener(Listener(a, b), new LoadBalancerOptions { L4Threads = 2 });

        var open = Enumerable.Range(0, 200).Select(_ => Connect(proxy)).ToList();
        var names = open.Select(o => o.Reader.ReadLine()).ToList();

        Assert.Equal(200, names.Count(n => n is "a" or "b"));
        Assert.Equal(200, proxy.OpenConnections);
        Assert.All(proxy.OpenConnectionsByLoop, n => Assert.InRange(n, 1, 199)); // the kernel spreads over both sockets
        open.ForEach(o => o.Client.Dispose());
        await Poll.UntilAsync(() => proxy.OpenConnections == 0, TimeSpan.FromSeconds(10), "every relay ended when its client closed");
    }

    [Fact]
    public async Task LargeTransfer_ArrivesIntact_WhileTheClientReadsSlowly()
    {
        using var a = new EchoBackend("a");
        await using var proxy = new TcpVipListener(Listener(a), new LoadBalancerOptions());
        using var client = Connect(proxy).Client;
        var stream = client.GetStream();
        Assert.Equal("a\n", ReadExactly(stream, 2));

        // 8 MiB out while the echo is read back 4 KiB at a time, slower than it is written: the proxy must hold
        // bytes back (and push back on the sender), never drop or reorder them.
        var payload = new byte[8 << 20];
        new Random(7).NextBytes(payload);
        var sending = Task.Run(() => stream.Write(payload));
        var echoed = new byte[payload.Length];
        var received = 0;
        while (received < echoed.Length)
        {
            var read = stream.Read(echoed, received, Math.Min(4096, echoed.Length - received));
            Assert.True(read > 0, $"the connection ended after {received} bytes");
            received += read;
        }

        await sending;
        Assert.True(payload.AsSpan().SequenceEqual(echoed), "the echoed bytes differ from the sent ones");
    }

    [Fact]
    public async Task HalfClose_TheBackendSeesTheEnd_AndItsLastBytesStillReachTheClient()
    {
        using var a = new EchoBackend("a");
        await using var proxy = new TcpVipListener(Listener(a), new LoadBalancerOptions());
        using var client = Connect(proxy).Client;
        var stream = client.GetStream();
        stream.Write("last words\n"u8);
        client.Client.Shutdown(SocketShutdown.Send);

        // The echo backend answers, then sees end of stream and closes; the client reads everything, then the end.
        Assert.Equal("a\nlast words\n", Encoding.ASCII.GetString(ReadToEnd(stream)));
    }

    [Fact]
    public async Task ABackendThatRefuses_IsSkipped_ForAnother()
    {
        using var a = new EchoBackend("a");
        var dead = new Backend("dead", "127.0.0.1", ClosedPort());
        await using var proxy = new TcpVipListener(new VipListener("svc", "127.0.0.1", 0, "tcp", [a.Backend, dead]), new LoadBalancerOptions());

        Assert.All(Enumerable.Range(0, 40), _ => Assert.Equal("a", Greeting(proxy)));
    }

    [Fact]
    public async Task ABackendThatNeverAnswers_TheConnectTimesOut_AndTheClientIsReset()
    {
        // A listener whose accept queue is full drops new SYNs, so a connection to it neither succeeds nor fails.
        using var silent = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        silent.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        silent.Listen(0);
        var port = ((IPEndPoint)silent.LocalEndPoint!).Port;
        var fillers = new List<Socket>();
        for (var i = 0; i < 8; i++)
        {
            var filler = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
            fillers.Add(filler);
            using var wait = new CancellationTokenSource(TimeSpan.FromMilliseconds(300));
            try
            {
                await filler.ConnectAsync(new IPEndPoint(IPAddress.Loopback, port), wait.Token);
            }
            catch (OperationCanceledException)
            {
                break; // the queue is full
            }
        }

        var timeout = TimeSpan.FromMilliseconds(300);
        await using var proxy = new TcpVipListener(
            new VipListener("svc", "127.0.0.1", 0, "tcp", [new Backend("silent", "127.0.0.1", port)]),
            new LoadBalancerOptions { ConnectTimeout = timeout });
        var clock = System.Diagnostics.Stopwatch.StartNew();
        using var client = new TcpClient();
        client.Connect(proxy.Endpoint);
        client.ReceiveTimeout = 10_000;
        var outcome = Record.Exception(() => client.GetStream().Read(new byte[16]));

        Assert.True(outcome is IOException { InnerException: SocketException { SocketErrorCode: SocketError.ConnectionReset } }, $"expected a reset, got {outcome?.ToString() ?? "an orderly end"}");
        Assert.True(clock.Elapsed >= timeout * 0.9, $"reset after {clock.Elapsed}, before the connect timeout");
        fillers.ForEach(f => f.Dispose());
    }

    private static int ClosedPort()
    {
        using var probe = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        probe.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        return ((IPEndPoint)probe.LocalEndPoint!).Port;
    }

    private static string ReadExactly(NetworkStream stream, int count)
    {
        var buffer = new byte[count];
        stream.ReadExactly(buffer);
        return Encoding.ASCII.GetString(buffer);
    }

    private static byte[] ReadToEnd(NetworkStream stream)
    {
        using var all = new MemoryStream();
        stream.CopyTo(all);
        return all.ToArray();
    }
}
