using System.Net;
using System.Threading.Channels;
using Grpc.Core;
using Grpc.Net.Client;
using Heddle.Contracts.Agents;
using Microsoft.Extensions.Logging;

namespace Heddle.Agent.Connection;

/// <summary>
/// Keeps one Connect stream open to the controller: Hello (node and current instances), then heartbeats (as datagrams
/// when the controller offers them: <see cref="DatagramHeartbeats"/>) and reports up, goal states down. A lost stream
/// is reopened with <see cref="ReconnectBackoff"/> (0.2 s doubling to a quarter of the fence time, at most 5 s); the
/// instances keep running meanwhile, and the controller resends the whole goal state on reconnect. Every time read, wait and timer runs on <paramref name="time"/>, the agent's clock, so tests can drive it.
/// </summary>
public sealed partial class ControllerConnection(AgentOptions options, NodeInfo node, NodeIdentity identity, ILogger logger, TimeProvider time, Metrics.AgentMetrics? metrics = null)
{
    private readonly TimeProvider _time = time;
    private readonly FenceClock _fenceClock = new(time, options.Controllers.Count);

    private AgentService.AgentServiceClient? _client;
    private int _controller;

    /// <summary>
    /// Opens the transport to a controller for one session: a gRPC channel over mutual TLS presenting the certificate in
    /// force then. Tests give a fake one.
    /// </summary>
    internal Func<Uri, (CallInvoker Calls, IDisposable Channel)> Transport { get; init; } = url => OpenChannel(url, identity);

    private static (CallInvoker Calls, IDisposable Channel) OpenChannel(Uri url, NodeIdentity identity)
    {
        var channel = GrpcChannel.ForAddress(url, new GrpcChannelOptions
        {
            MaxReceiveMessageSize = 64 << 20, HttpHandler = Heddle.Contracts.Trust.ClusterTrust.Handler(identity.Ca, () => identity.Certificate),
            DisposeHttpClient = true, // a channel given up for another closes its connection (else the controller holds it until it idles out)
        });
        return (channel.CreateCallInvoker(), channel);
    }

    /// <summary>What the agent says of its node in each Hello.</summary>
    public NodeInfo Node => node;

    /// <summary>The controller this agent talks to now (downloads go there too); the next one is tried when it does not answer.</summary>
    public Uri Current => options.Controllers[_controller % options.Controllers.Count];

    /// <summary>The client of the current channel (mutual TLS with this node's certificate), for renewals.</summary>
    public AgentService.AgentServiceClient Client => _client ?? throw new InvalidOperationException("not running");

    /// <summary>What goes up besides the Hello and heartbeats: instance reports, and refusals of a reboot directive.</summary>
    private readonly Channel<AgentMessage> _reports = Channel.CreateUnbounded<AgentMessage>();

    /// <summary>True while a stream is open.</summary>
    public bool Connected { get; private set; }

    /// <summary>Whether heartbeats go as datagrams alone now: the controller offered them and answers them.</summary>
    public bool HeartbeatsByDatagram => _datagrams?.Carry(Millis(_time)) == true;

    public void Report(InstanceReport report) => _reports.Writer.TryWrite(new AgentMessage { Report = report });

    /// <summary>Sends a message on the current stream (dropped when there is none: the next Hello brings a new goal state, and the answer to it).</summary>
    public void Send(AgentMessage message) => _reports.Writer.TryWrite(message);

    private volatile CancellationTokenSource? _session;

    /// <summary>Ends the current stream so that a new one starts, with a Hello and the whole goal state again (after fencing).</summary>
    public void Reconnect()
    {
        try
        {
            _session?.Cancel();
        }
        catch (ObjectDisposedException)
        {
        }
    }

    /// <summary>When the controller last said anything (a goal state or its keepalive), in <see cref="Millis"/>; the agent's start before that.</summary>
    public long LastHeard => _fenceClock.LastHeard;

    /// <summary>The fence clock's unit: milliseconds of <paramref name="time"/>'s monotonic timestamp.</summary>
    public static long Millis(TimeProvider time) => FenceClock.Millis(time);

    /// <summary>Since when a running controller could have been judging this node without hearing from it, in <see cref="Millis"/>: see <see cref="FenceClock.SilentSince"/>.</summary>
    public long SilentSince => _fenceClock.SilentSince;

    /// <summary>Whether the connection failed because nothing listens there (a TCP reset to the connect), not a timeout or TLS or protocol failure.</summary>
    private static bool IsRefused(Exception e)
    {
        for (Exception? inner = e; inner is not null; inner = inner.InnerException)
        {
            if (inner is System.Net.Sockets.SocketException { SocketErrorCode: System.Net.Sockets.SocketError.ConnectionRefused })
            {
                return true;
            }
        }

        return false;
    }

    /// <summary>Keeps a session open with one controller after another, for as long as the agent runs: hello with <paramref name="target"/>'s instances, goal states to it.</summary>
    public async Task RunAsync(IGoalStateTarget target, CancellationToken cancellationToken)
    {
        var backoff = new ReconnectBackoff(options.FenceAfter, _time, Random.Shared);
        while (!cancellationToken.IsCancellationRequested)
        {
            // A channel (so a TLS connection) per session: each presents the certificate in force then, so a renewed one is taken up.
            var url = Current;
            var (calls, channel) = Transport(url);
            using var opened = channel;
            var client = _client = new AgentService.AgentServiceClient(calls);
            try
            {
                await SessionAsync(client, target, cancellationToken, backoff.Reset);
            }
            catch (Exception e) when (e is RpcException or IOException or HttpRequestException or InvalidOperationException or OperationCanceledException && !cancellationToken.IsCancellationRequested)
            {
                if (e is RpcException { StatusCode: StatusCode.PermissionDenied or StatusCode.Unauthenticated or StatusCode.FailedPrecondition or StatusCode.InvalidArgument } refusal)
                {
                    // Not a network fault: the controller answered and said no. It stays so until someone acts on the reason.
                    LogRefusedByController(logger, url, refusal.Status.Detail, backoff.Current.TotalSeconds);
                    backoff.Refused();
                }
                else
                {
                    LogDisconnected(logger, url, e.Message, backoff.Current.TotalSeconds);
                }

                Connected = false;
                if (IsRefused(e))
                {
                    _fenceClock.Refused(_controller);
                }

                if (options.Controllers.Count > 1)
                {
                    _controller++; // the next controller; each is tried in turn, with the backoff growing between rounds
                    if (_controller % options.Controllers.Count != 0)
                    {
                        continue;
                    }
                }
            }
            catch (Exception e) when (e is OperationCanceledException or RpcException && cancellationToken.IsCancellationRequested)
            {
                return;
            }

            Connected = false;
            try
            {
                await backoff.WaitAsync(cancellationToken);
            }
            catch (OperationCanceledException)
            {
                return;
            }
        }
    }

    private async Task SessionAsync(AgentService.AgentServiceClient client, IGoalStateTarget target, CancellationToken cancellationToken, Action connected)
    {
        using var session = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        _session = session;
        using var call = client.Connect(cancellationToken: session.Token);

        // Reports queued while disconnected are covered by the snapshot in Hello.
        while (_reports.Reader.TryRead(out _))
        {
        }

        // The watchdog runs from the start: the Hello's write is where the connection and its TLS handshake are made, and
        // one to a host gone silent would otherwise hang there with nothing to end it (until the agent fenced itself).
        var heard = Millis(_time);
        var watchdog = WatchAsync(() => heard, session, SilenceLimit(options.Controllers.Count), _time);
        Task writer = Task.CompletedTask;
        GoalState? goal = null; // the last on this stream: peer changes apply to it
        try
        {
            _datagrams = null;
            var hello = new Hello { Node = node, TakesPeerChanges = true, TakesInstanceChanges = true, TakesDatagramHeartbeats = true };
            hello.Instances.AddRange(target.Reports());
            await call.RequestStream.WriteAsync(new AgentMessage { Hello = hello }, session.Token);
            writer = WriteAsync(call.RequestStream, session.Token);
            await foreach (var message in call.ResponseStream.ReadAllAsync(session.Token))
            {
                heard = _fenceClock.Heard();
                if (!Connected)
                {
                    Connected = true;
                    connected();
                    LogConnected(logger, Current);
                }

                if (message.BodyCase == ControllerMessage.BodyOneofCase.Keepalive && _datagrams is { } datagrams)
                {
                    datagrams.KeepaliveSaid(message.Keepalive.Heard, heard);
                    if (datagrams.Unheard(heard) is { } why)
                    {
                        LogDatagramsUnheard(logger, datagrams.To, 2 * datagrams.Window.TotalSeconds, why);
                    }
                }
                else if (message.BodyCase == ControllerMessage.BodyOneofCase.Datagrams)
                {
                    _datagrams?.Dispose();
                    _datagrams = DatagramHeartbeats.Open(message.Datagrams, Current, DatagramHeartbeats.WindowFor(options.FenceAfter, options.HeartbeatInterval),
                        () => heard = _fenceClock.Heard()); // an answer is the controller heard
                }
                else if (message.BodyCase == ControllerMessage.BodyOneofCase.Goal)
                {
                    target.Apply(goal = message.Goal);
                }
                else if (message.BodyCase == ControllerMessage.BodyOneofCase.Peers)
                {
                    if (goal is null || goal.Version != message.Peers.BaseVersion)
                    {
                        // Never from a sane controller: the stream starts whole and each change follows the last. A new
                        // stream starts whole again.
                        LogPeerChangesOutOfTurn(logger, message.Peers.BaseVersion, goal?.Version ?? 0);
                        break;
                    }

                    target.Apply(goal = message.Peers.ApplyTo(goal));
                }
            }
        }
        finally
        {
            await session.CancelAsync();
            try
            {
                await writer;
            }
            catch (Exception e) when (e is OperationCanceledException or RpcException or InvalidOperationException)
            {
            }

            _datagrams?.Dispose(); // after the writer, which sends them
            _datagrams = null;

            await watchdog;
        }
    }

    /// <summary>
    /// A controller says something every second; one silent for <paramref name="limit"/> (its host gone without a
    /// reset, a partition, a connect or handshake that hangs) ends the session, so the next controller is tried. The
    /// time this process was itself stalled is not the controller's silence (<see cref="SilenceWatch"/>).
    /// </summary>
    private static async Task WatchAsync(Func<long> heard, CancellationTokenSource session, TimeSpan limit, TimeProvider time)
    {
        // Looked at every second, not more often: the limit is 5 s or more, and a thousand hollow agents in one process looked 4,000
        // times a second, a third of what that process did while idle.
        using var timer = new PeriodicTimer(SilenceWatch.Period, time);
        var watch = new SilenceWatch(limit, Millis(time));
        try
        {
            while (await timer.WaitForNextTickAsync(session.Token))
            {
                if (watch.Silent(Millis(time), heard()))
                {
                    await session.CancelAsync();
                    return;
                }
            }
        }
        catch (OperationCanceledException)
        {
        }
    }

    /// <summary>
    /// How long a session may hear nothing before it is ended: 5 s when there is another controller to try; 15 s when
    /// there is only the one. Then a hang-up finds no other controller, only the same one again, and it costs that
    /// controller a TLS handshake, a Hello and a whole goal state where waiting cost nothing: at 1,000 hollow nodes on
    /// a busy machine a controller slowed past 5 s by a deployment was hung up on by every agent at once, and spent
    /// itself on their reconnections (a storm it did not come out of). Fencing still runs from the last word heard.
    /// </summary>
    internal static TimeSpan SilenceLimit(int controllers) => controllers > 1 ? TimeSpan.FromSeconds(5) : TimeSpan.FromSeconds(15);

    private async Task WriteAsync(IClientStreamWriter<AgentMessage> stream, CancellationToken cancellationToken)
    {
        var sequence = 0L;
        using var heartbeat = new PeriodicTimer(options.HeartbeatInterval, _time);
        var tick = heartbeat.WaitForNextTickAsync(cancellationToken).AsTask();
        var report = _reports.Reader.WaitToReadAsync(cancellationToken).AsTask();
        while (!cancellationToken.IsCancellationRequested)
        {
            var ready = await Task.WhenAny(tick, report);
            if (ready == tick)
            {
                await tick;
                var now = Millis(_time);
                var datagrams = _datagrams;
                if (datagrams?.Send(++sequence, now) == true)
                {
                    metrics?.HeartbeatSent(datagram: true);
                }

                if (datagrams?.Carry(now) != true)
                {
                    await stream.WriteAsync(new AgentMessage { Heartbeat = new Heartbeat { Sequence = datagrams is null ? ++sequence : sequence } }, cancellationToken);
                    metrics?.HeartbeatSent(datagram: false);
                }

                tick = heartbeat.WaitForNextTickAsync(cancellationToken).AsTask();
            }
            else
            {
                if (!await report)
                {
                    return;
                }

                while (_reports.Reader.TryRead(out var item))
                {
                    await stream.WriteAsync(item, cancellationToken);
                }

                report = _reports.Reader.WaitToReadAsync(cancellationToken).AsTask();
            }
        }
    }

    /// <summary>The heartbeat datagrams the controller offered on the current stream, if it did.</summary>
    private volatile DatagramHeartbeats? _datagrams;

    [LoggerMessage(Level = LogLevel.Warning, Message = "The controller speaks on the stream, but this node's heartbeat datagrams to UDP {To} have not been answered for {Seconds} s ({Why}): heartbeats go on the stream as well, which costs the controller more. Is UDP dropped on the way, either way?")]
    private static partial void LogDatagramsUnheard(ILogger logger, IPEndPoint to, double seconds, string why);

    [LoggerMessage(Level = LogLevel.Warning, Message = "The controller sent peer changes to goal state {Base}, but this node holds goal state {Holds}; reconnecting for a whole one")]
    private static partial void LogPeerChangesOutOfTurn(ILogger logger, long @base, long holds);

    [LoggerMessage(Level = LogLevel.Information, Message = "Connected to the controller at {Url}")]
    private static partial void LogConnected(ILogger logger, Uri url);

    [LoggerMessage(Level = LogLevel.Error, Message = "The controller at {Url} refused this node: {Reason}. This node takes no goal state until that is fixed ('heddle events' on the controller shows the same refusal); trying again in {Seconds} s")]
    private static partial void LogRefusedByController(ILogger logger, Uri url, string reason, double seconds);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Lost the controller at {Url} ({Reason}); retrying in {Seconds} s")]
    private static partial void LogDisconnected(ILogger logger, Uri url, string reason, double seconds);
}
