using System.Diagnostics;
using System.Net;
using Heddle.Contracts.Api;

namespace Heddle.LoadBalancer.Announcing;

/// <summary>How a balancer reaches the controllers: its heartbeat and its leaving.</summary>
public interface IBalancerControl
{
    Task<BalancerLease> HeartbeatAsync(BalancerHeartbeat heartbeat, CancellationToken cancellationToken);

    Task LeaveAsync(string name, CancellationToken cancellationToken);
}

/// <summary>Who a balancer is and how it announces.</summary>
/// <param name="Mode">none, arp or bgp.</param>
public sealed record BalancerIdentity(string Name, string Address, string Mode, string? Interface);

/// <summary>
/// A load balancer as a member of the cluster: applies each configuration (routing its VIPs to this host first when it
/// announces them), retries the listeners it could not open every <see cref="RetryInterval"/>, heart-beats to the
/// controllers with its state and problems, and drives its announcer — in ARP mode exactly the VIPs its lease names, for
/// as long as the lease lasts by its own clock; in BGP mode every VIP it opened, while it is healthy. Stopping withdraws
/// every announcement first, then leaves (the others take its VIPs at once), then lets connections drain.
/// </summary>
public sealed class BalancerAgent : IAsyncDisposable
{
    public static readonly TimeSpan RetryInterval = TimeSpan.FromSeconds(5);

    private readonly LoadBalancerHost _host;
    private readonly BalancerIdentity _identity;
    private readonly IBalancerControl _control;
    private readonly IVipAnnouncer? _announcer;
    private readonly LocalVipRoutes? _routes;
    private readonly TimeProvider _time;
    private readonly Action<string> _log;
    private readonly string _instance = Guid.NewGuid().ToString("N");
    private readonly SemaphoreSlim _announcing = new(1, 1);
    private readonly SemaphoreSlim _applying = new(1, 1);
    private readonly CancellationTokenSource _stop = new();
    private LoadBalancerConfig _config = new() { Version = 0, Listeners = [] };
    private IReadOnlyList<ListenerProblem> _problems = [];
    private IReadOnlySet<IPAddress> _owned = new HashSet<IPAddress>();
    private long _validUntil; // timestamp (TimeProvider) after which the owned VIPs are no longer this balancer's
    private TimeSpan _heartbeat = TimeSpan.FromMilliseconds(400);
    private TimeSpan _margin = TimeSpan.FromMilliseconds(250);
    private bool _reachable = true;
    private volatile string? _unhealthy; // why the data plane's own check fails, null while it passes
    private Task? _running;

    public BalancerAgent(LoadBalancerHost host, BalancerIdentity identity, IBalancerControl control, IVipAnnouncer? announcer, LocalVipRoutes? routes, TimeProvider time, Action<string> log)
    {
        _host = host;
        _identity = identity;
        _control = control;
        _announcer = announcer;
        _routes = routes;
        _time = time;
        _log = log;
    }

    /// <summary>What it announces now (empty without an announcer).</summary>
    public IReadOnlyList<string> Announced => _announcer?.Status.Announced ?? [];

    public void Start()
    {
        _running = Task.WhenAll(Task.Run(() => HeartbeatLoopAsync(_stop.Token)), Task.Run(() => WatchdogAsync(_stop.Token)), Task.Run(() => RetryLoopAsync(_stop.Token)),
            Task.Run(() => HealthLoopAsync(_stop.Token)));
    }

    /// <summary>Applies a whole configuration: routes, listeners, announcements.</summary>
    public async Task ApplyAsync(LoadBalancerConfig config)
    {
        await _applying.WaitAsync();
        try
        {
            _config = config;
            var problems = new List<ListenerProblem>();
            if (_routes is not null)
            {
                var vips = config.Listeners.Select(l => IPAddress.Parse(l.Vip)).ToHashSet();
                foreach (var sentence in await _routes.SetAsync(vips, CancellationToken.None))
                {
                    _log(sentence);
                }
            }

            problems.AddRange(await _host.ApplyAsync(config));
            foreach (var problem in problems.Where(p => !_problems.Contains(p)))
            {
                _log($"{problem.Service} {problem.Vip}:{problem.Port}: cannot listen ({problem.Reason}){(problem.Kind == ListenerProblemKinds.NotLocal && _identity.Mode == "none" ? "; the VIP is not an address of this host: give --announce arp or bgp, or route the pool here" : string.Empty)}");
            }

            _problems = problems;
        }
        finally
        {
            _applying.Release();
        }

        await AnnounceAsync(CancellationToken.None);
    }

    private async Task RetryLoopAsync(CancellationToken ct)
    {
        while (!ct.IsCancellationRequested)
        {
            await Task.Delay(RetryInterval, _time, ct).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
            if (!ct.IsCancellationRequested && _problems.Count > 0)
            {
                await ApplyAsync(_config); // listeners that failed are tried again; the others stay as they are
            }
        }
    }

    /// <summary>Checks the data plane every second (on the real clock: a stuck loop is a fact of this process, not of time); withdraws while it fails.</summary>
    private async Task HealthLoopAsync(CancellationToken ct)
    {
        while (!ct.IsCancellationRequested)
        {
            await Task.Delay(HealthInterval, ct).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
            var problem = await _host.CheckAsync(HealthInterval);
            if (problem != _unhealthy)
            {
                _log(problem is null ? "data plane healthy again" : $"data plane unhealthy: {problem}; withdrawing every VIP");
                _unhealthy = problem;
                await AnnounceAsync(ct).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
            }
        }
    }

    /// <summary>How often the data plane checks itself, and how long a check may take.</summary>
    public static TimeSpan HealthInterval { get; } = TimeSpan.FromSeconds(1);

    private async Task HeartbeatLoopAsync(CancellationToken ct)
    {
        while (!ct.IsCancellationRequested)
        {
            var sent = _time.GetTimestamp();
            try
            {
                using var deadline = CancellationTokenSource.CreateLinkedTokenSource(ct);
                deadline.CancelAfter(TimeSpan.FromSeconds(1));
                var lease = await _control.HeartbeatAsync(Heartbeat(), deadline.Token);
                _heartbeat = TimeSpan.FromMilliseconds(Math.Clamp(lease.HeartbeatMilliseconds, 50, 10_000));
                _margin = TimeSpan.FromMilliseconds(Math.Min(250, lease.LeaseMilliseconds / 4));
                if (_identity.Mode == "arp")
                {
                    Volatile.Write(ref _validUntil, sent + (long)((TimeSpan.FromMilliseconds(lease.LeaseMilliseconds) - _margin).TotalSeconds * _time.TimestampFrequency));
                    _owned = lease.Owned.Select(IPAddress.Parse).ToHashSet();
                }

                if (!_reachable)
                {
                    _log("heartbeats answered again");
                    _reachable = true;
                }

                await AnnounceAsync(ct);
            }
            catch (Exception e) when (!ct.IsCancellationRequested && e is HeddleApiException or HttpRequestException or IOException or OperationCanceledException)
            {
                if (_reachable)
                {
                    _log($"heartbeat not answered ({e.Message}); {(_identity.Mode == "arp" ? "the VIPs this balancer owns stay its own until its lease ends" : "serving as before")}");
                    _reachable = false;
                }
            }

            var elapsed = _time.GetElapsedTime(sent);
            if (elapsed < _heartbeat)
            {
                await Task.Delay(_heartbeat - elapsed, _time, ct).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
            }
        }
    }

    /// <summary>Stops answering for owned VIPs the moment their lease ends, whether or not a heartbeat is under way.</summary>
    private async Task WatchdogAsync(CancellationToken ct)
    {
        while (!ct.IsCancellationRequested)
        {
            await Task.Delay(TimeSpan.FromMilliseconds(50), _time, ct).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
            if (_identity.Mode == "arp" && _owned.Count > 0 && _time.GetTimestamp() >= Volatile.Read(ref _validUntil))
            {
                _log($"lease ended without a renewal: no longer answering for {string.Join(", ", _owned)}");
                _owned = new HashSet<IPAddress>();
                await AnnounceAsync(ct);
            }
        }
    }

    /// <summary>What the announcer should announce now.</summary>
    private IReadOnlySet<IPAddress> Wanted()
    {
        if (_unhealthy is not null)
        {
            return new HashSet<IPAddress>();
        }

        var servable = _config.Listeners.Select(l => l.Vip).Distinct().Where(v => !_problems.Any(p => p.Vip == v)).Select(IPAddress.Parse).ToHashSet();
        return _identity.Mode switch
        {
            "arp" when _time.GetTimestamp() < Volatile.Read(ref _validUntil) => _owned.Where(servable.Contains).ToHashSet(),
            "bgp" when _announcer?.Status.Healthy != false => servable,
            _ => new HashSet<IPAddress>(),
        };
    }

    private async Task AnnounceAsync(CancellationToken ct)
    {
        if (_announcer is null)
        {
            return;
        }

        await _announcing.WaitAsync(ct);
        try
        {
            await _announcer.AnnounceAsync(Wanted(), ct);
        }
        catch (AnnouncerException e)
        {
            _log($"cannot announce: {e.Message}");
        }
        finally
        {
            _announcing.Release();
        }
    }

    private BalancerHeartbeat Heartbeat()
    {
        var status = _announcer?.Status;
        var unhealthy = _unhealthy;
        var detail = status?.Detail ?? "VIPs routed to this host by the operator";
        return new BalancerHeartbeat(_identity.Name, _instance, _identity.Address, _identity.Mode, _identity.Interface, (status?.Healthy ?? true) && unhealthy is null,
            unhealthy is null ? detail : $"{detail}; data plane unhealthy: {unhealthy}", status?.Announced ?? [], _config.Version, _problems);
    }

    /// <summary>A graceful stop: withdraws every announcement, leaves, lets connections drain for up to <paramref name="drain"/>, closes.</summary>
    public async Task StopAsync(TimeSpan drain)
    {
        await _stop.CancelAsync();
        if (_running is not null)
        {
            await _running.ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
        }

        if (_announcer is not null)
        {
            await _announcing.WaitAsync();
            try
            {
                await _announcer.AnnounceAsync(new HashSet<IPAddress>(), CancellationToken.None);
            }
            catch (AnnouncerException e)
            {
                _log($"cannot withdraw: {e.Message}");
            }
            finally
            {
                _announcing.Release();
            }
        }

        try
        {
            using var deadline = new CancellationTokenSource(TimeSpan.FromSeconds(2));
            await _control.LeaveAsync(_identity.Name, deadline.Token);
        }
        catch (Exception e) when (e is HeddleApiException or HttpRequestException or IOException or OperationCanceledException)
        {
            _log($"could not tell the controllers this balancer stops ({e.Message}); its VIPs move when its lease ends");
        }

        if (_announcer is not null && drain > TimeSpan.Zero)
        {
            // Routers and neighbours move new flows elsewhere; what is already here finishes.
            await Task.Delay(drain, _time).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
        }
    }

    public async ValueTask DisposeAsync()
    {
        if (!_stop.IsCancellationRequested)
        {
            await StopAsync(TimeSpan.Zero);
        }

        if (_announcer is not null)
        {
            await _announcer.DisposeAsync();
        }

        await _host.DisposeAsync();
        if (_routes is not null)
        {
            await _routes.SetAsync([], CancellationToken.None);
        }
    }
}
