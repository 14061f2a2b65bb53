using System.Net;
using System.Net.Sockets;
using Google.Protobuf;
using Grpc.Core;
using Heddle.LoadBalancer.Announcing.Bgp.Apipb;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace Heddle.LoadBalancer.Announcing.Bgp;

/// <summary>
/// Announces every VIP this balancer serves to one router over BGP, through a gobgpd of its own (<see cref="GobgpDaemon"/>):
/// each VIP a host route (/32, /128) with ORIGIN IGP and NEXT_HOP this balancer, so a router that hears the same VIP
/// from several balancers spreads flows over them (ECMP). A balancer that dies or goes silent loses its session within
/// the hold time (3 s) and the router drops its routes. Stopping withdraws every route first, then stops gobgpd, so
/// routers have moved the VIPs' traffic before the listeners go.
/// </summary>
public sealed partial class BgpAnnouncer : IVipAnnouncer
{
    private static readonly TimeSpan CallDeadline = TimeSpan.FromSeconds(5);
    private static readonly TimeSpan StatusEvery = TimeSpan.FromSeconds(1);

    private readonly BgpOptions _options;
    private readonly ILogger _logger;
    private readonly TimeProvider _time;
    private readonly GobgpDaemon _daemon;
    private readonly SemaphoreSlim _gate = new(1, 1);
    private readonly CancellationTokenSource _stopping = new();
    private HashSet<IPAddress> _wanted = [];
    private readonly Dictionary<IPAddress, ByteString> _inGobgpd = []; // VIP → the uuid AddPath gave it, in the running gobgpd
    private Task _watching = Task.CompletedTask;
    private int _disposed;
    private volatile PeerView _peer = new(PeerState.Types.SessionState.Unknown, 0);

    public BgpAnnouncer(BgpOptions options, ILogger<BgpAnnouncer>? logger = null, TimeProvider? time = null)
    {
        _options = options;
        _logger = logger ?? NullLogger<BgpAnnouncer>.Instance;
        _time = time ?? TimeProvider.System;
        _daemon = new GobgpDaemon(options, ConfigureAsync, _logger, _time);
    }

    public string Mode => "bgp";

    internal GobgpDaemon Daemon => _daemon;

    public AnnouncerStatus Status
    {
        get
        {
            var announced = Announced();
            var peer = $"peer {_options.PeerAddress} AS {_options.PeerAsn}";
            if (!_daemon.Up)
            {
                return new AnnouncerStatus(Mode, false, $"bgp: {peer}: gobgpd not running ({_daemon.LastFailure ?? "starting"}), restarting", []);
            }

            var view = _peer;
            var established = view.State == PeerState.Types.SessionState.Established;
            var detail = established
                ? $"bgp: {peer} Established, {Routes(view.Advertised)}"
                : $"bgp: {peer} {Name(view.State)}: no session, {Routes(announced.Count)} waiting";
            return new AnnouncerStatus(Mode, established, detail, announced);
        }
    }

    public async Task StartAsync(CancellationToken cancellationToken)
    {
        _options.Validate();

        // The first path built loads the descriptors of gobgpd's large protos (hundreds of milliseconds on a busy
        // machine): done now, not on the first VIP to announce.
        _ = VipPaths.Announce(_options.LocalAddress, _options.LocalAddress).CalculateSize();
        await _daemon.StartAsync(cancellationToken);
        _watching = WatchPeerAsync(_stopping.Token);
    }

    public async Task AnnounceAsync(IReadOnlySet<IPAddress> vips, CancellationToken cancellationToken)
    {
        foreach (var vip in vips)
        {
            if (_options.NextHopFor(vip) is null)
            {
                throw new AnnouncerException($"cannot announce {vip} over BGP: IPv6 VIPs need an IPv6 next hop for this balancer (BgpOptions.NextHopV6)");
            }
        }

        await _gate.WaitAsync(cancellationToken);
        try
        {
            _wanted = [.. vips];
            if (_daemon.Up)
            {
                await SyncAsync(_daemon.Client, cancellationToken);
            }
        }
        catch (RpcException e) when (e.StatusCode is StatusCode.Unavailable or StatusCode.DeadlineExceeded)
        {
            // gobgpd is dying or restarting: the restart configures it with what is wanted now.
            LogSyncFailed(_logger, e.Status.Detail);
        }
        catch (RpcException e)
        {
            throw new AnnouncerException($"gobgpd refused the VIPs' routes: {e.Status.Detail}", e);
        }
        finally
        {
            _gate.Release();
        }
    }

    /// <summary>Called by the daemon on every gobgpd it starts: it knows nothing, so it gets the global settings, the peer and every path.</summary>
    private async Task ConfigureAsync(GobgpApi.GobgpApiClient client, CancellationToken cancellationToken)
    {
        await _gate.WaitAsync(cancellationToken);
        try
        {
            lock (_inGobgpd)
            {
                _inGobgpd.Clear();
            }

            await client.StartBgpAsync(new StartBgpRequest { Global = GobgpConfig.Global(_options) }, deadline: Deadline(), cancellationToken: cancellationToken);
            await client.AddPeerAsync(new AddPeerRequest { Peer = GobgpConfig.Peer(_options) }, deadline: Deadline(), cancellationToken: cancellationToken);
            await SyncAsync(client, cancellationToken);
        }
        finally
        {
            _gate.Release();
        }
    }

    /// <summary>Makes gobgpd's paths the wanted VIPs. Holds the gate.</summary>
    private async Task SyncAsync(GobgpApi.GobgpApiClient client, CancellationToken cancellationToken)
    {
        foreach (var vip in _inGobgpd.Keys.Where(v => !_wanted.Contains(v)).ToList())
        {
            await DeleteAsync(client, vip, cancellationToken);
        }

        foreach (var vip in _wanted.Where(v => !_inGobgpd.ContainsKey(v)).ToList())
        {
            var path = VipPaths.Announce(vip, _options.NextHopFor(vip)!);
            var added = await client.AddPathAsync(new AddPathRequest { TableType = TableType.Global, Path = path }, deadline: Deadline(), cancellationToken: cancellationToken);
            lock (_inGobgpd)
            {
                _inGobgpd[vip] = added.Uuid;
            }

            LogAnnounced(_logger, vip);
        }
    }

    private async Task DeleteAsync(GobgpApi.GobgpApiClient client, IPAddress vip, CancellationToken cancellationToken)
    {
        var request = new DeletePathRequest { TableType = TableType.Global, Family = VipPaths.FamilyOf(vip), Uuid = _inGobgpd[vip] };
        await client.DeletePathAsync(request, deadline: Deadline(), cancellationToken: cancellationToken);
        lock (_inGobgpd)
        {
            _inGobgpd.Remove(vip);
        }

        LogWithdrawn(_logger, vip);
    }

    /// <summary>
    /// Withdraws every VIP and waits (up to <paramref name="deadline"/>) until gobgpd has nothing left to send the
    /// router: no route advertised to it and no message queued. The first half of a graceful stop.
    /// </summary>
    internal async Task WithdrawAllAsync(TimeSpan deadline)
    {
        using var timeout = new CancellationTokenSource(deadline);
        await _gate.WaitAsync(timeout.Token);
        try
        {
            _wanted = [];
            await SyncAsync(_daemon.Client, timeout.Token);
            while (await ReadPeerAsync(timeout.Token) is { } peer && (peer.Advertised > 0 || peer.OutQueue > 0))
            {
                await Task.Delay(TimeSpan.FromMilliseconds(50), _time, timeout.Token);
            }
        }
        finally
        {
            _gate.Release();
        }
    }

    private async Task WatchPeerAsync(CancellationToken stopping)
    {
        var wasEstablished = false;
        try
        {
            while (!stopping.IsCancellationRequested)
            {
                try
                {
                    _peer = _daemon.Up && await ReadPeerAsync(stopping) is { } view ? view : new PeerView(PeerState.Types.SessionState.Unknown, 0);
                }
                catch (RpcException)
                {
                    _peer = new PeerView(PeerState.Types.SessionState.Unknown, 0);
                }

                var established = _peer.State == PeerState.Types.SessionState.Established;
                if (established != wasEstablished)
                {
                    LogSession(_logger, _options.PeerAddress, _options.PeerAsn, established ? "Established" : $"lost ({Name(_peer.State)})");
                }

                wasEstablished = established;
                await Task.Delay(StatusEvery, _time, stopping);
            }
        }
        catch (OperationCanceledException) when (stopping.IsCancellationRequested)
        {
        }
    }

    private async Task<PeerView?> ReadPeerAsync(CancellationToken cancellationToken)
    {
        using var call = _daemon.Client.ListPeer(new ListPeerRequest { Address = _options.PeerAddress.ToString(), EnableAdvertised = true }, deadline: Deadline(), cancellationToken: cancellationToken);
        while (await call.ResponseStream.MoveNext(cancellationToken))
        {
            var peer = call.ResponseStream.Current.Peer;
            var advertised = peer.AfiSafis.Sum(a => (long)(a.State?.Advertised ?? 0));
            return new PeerView(peer.State?.SessionState ?? PeerState.Types.SessionState.Unknown, advertised, peer.State?.OutQ ?? 0);
        }

        return null;
    }

    private IReadOnlyList<string> Announced()
    {
        // The gate may be held across calls to gobgpd; a status read must not wait on them, so it reads a copy.
        lock (_inGobgpd)
        {
            return [.. _inGobgpd.Keys.Select(v => v.ToString()).Order(StringComparer.Ordinal)];
        }
    }

    private static string Routes(long count) => count == 1 ? "1 route" : $"{count} routes";

    private DateTime Deadline() => _time.GetUtcNow().UtcDateTime + CallDeadline;

    private static string Name(PeerState.Types.SessionState state) => state switch
    {
        PeerState.Types.SessionState.Opensent => "OpenSent",
        PeerState.Types.SessionState.Openconfirm => "OpenConfirm",
        PeerState.Types.SessionState.Unknown => "gobgpd not answering",
        _ => state.ToString(),
    };

    /// <summary>Withdraws every route (and waits for the router to have been told), then stops gobgpd.</summary>
    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) == 1)
        {
            return;
        }

        _stopping.Cancel();
        await _watching;
        if (_daemon.Up)
        {
            try
            {
                await WithdrawAllAsync(TimeSpan.FromSeconds(3));
            }
            catch (Exception e) when (e is RpcException or OperationCanceledException)
            {
                // gobgpd's Cease on SIGTERM withdraws them as well, only not before the session ends.
                LogWithdrawFailed(_logger, e.Message);
            }
        }

        await _daemon.DisposeAsync();
        _stopping.Dispose();
    }

    private sealed record PeerView(PeerState.Types.SessionState State, long Advertised, uint OutQueue = 0);

    [LoggerMessage(Level = LogLevel.Information, Message = "Announcing {Vip} over BGP")]
    private static partial void LogAnnounced(ILogger logger, IPAddress vip);

    [LoggerMessage(Level = LogLevel.Information, Message = "Withdrew {Vip} from BGP")]
    private static partial void LogWithdrawn(ILogger logger, IPAddress vip);

    [LoggerMessage(Level = LogLevel.Information, Message = "BGP session to {Peer} AS {Asn}: {State}")]
    private static partial void LogSession(ILogger logger, IPAddress peer, uint asn, string state);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Could not update gobgpd's routes ({Reason}); it is restarting and will be given them")]
    private static partial void LogSyncFailed(ILogger logger, string reason);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Could not withdraw the VIPs before stopping gobgpd ({Reason}); its Cease withdraws them")]
    private static partial void LogWithdrawFailed(ILogger logger, string reason);
}
