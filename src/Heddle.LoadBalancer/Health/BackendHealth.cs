using System.Net;
using System.Net.Sockets;
using Heddle.Contracts.Api;

namespace Heddle.LoadBalancer.Health;

/// <summary>
/// The balancer's own view of a listener's backends: each is probed on its own timer; one that fails the probe
/// <c>UnhealthyThreshold</c> times in a row leaves the pool, and comes back after one success. The listener is
/// given the healthy subset at once when the controller's list changes, and within <see cref="VerdictBatch"/> of a
/// probe's verdict changing: verdicts that arrive together (a host of many backends going away, a listener's backends
/// all new) make one new pool, not one each. Each pool is a new Maglev table of 65,537 slots, and a balancer whose
/// backends all failed their first probe rebuilt it once per backend (issue 27: 47% of its CPU in the scale benchmark).
/// Probes run on the given clock: the balancer gives every listener one <see cref="Heddle.Contracts.Timing.SharedClock"/>,
/// not a runtime timer per backend.
/// </summary>
internal sealed class BackendHealth : IAsyncDisposable
{
    private static readonly HttpClient Http = new(new SocketsHttpHandler { UseProxy = false, PooledConnectionLifetime = TimeSpan.FromMinutes(1) }) { Timeout = Timeout.InfiniteTimeSpan };

    private readonly IVipListener _listener;
    private readonly TimeProvider _clock;
    private readonly Dictionary<string, Probe> _probes = new(StringComparer.Ordinal);
    private readonly Lock _lock = new();
    private IReadOnlyList<Backend> _backends = [];
    private BackendProbe? _settings;
    private int _verdictsPending;
    private bool _disposed;

    /// <summary>How long a changed verdict waits for others before the pool is made again: small beside a probe's interval times its threshold.</summary>
    internal static readonly TimeSpan VerdictBatch = TimeSpan.FromMilliseconds(100);

    public BackendHealth(IVipListener listener, TimeProvider? clock = null)
    {
        _listener = listener;
        _clock = clock ?? TimeProvider.System;
    }

    /// <summary>Takes the controller's list (its Ready instances) and keeps probing them.</summary>
    public void Update(IReadOnlyList<Backend> backends, BackendProbe? settings)
    {
        List<Probe> stopped;
        lock (_lock)
        {
            _backends = backends;
            _settings = settings;
            var wanted = new Dictionary<string, Backend>(StringComparer.Ordinal);
            foreach (var backend in backends)
            {
                wanted.TryAdd(backend.Id, backend);
            }

            stopped = [.. _probes.Where(p => !wanted.TryGetValue(p.Key, out var backend) || p.Value.Backend != backend).Select(p => p.Value)];
            foreach (var probe in stopped)
            {
                _probes.Remove(probe.Backend.Id);
            }

            if (settings is not null)
            {
                foreach (var backend in backends.Where(b => !_probes.ContainsKey(b.Id)))
                {
                    _probes[backend.Id] = new Probe(backend, settings, _clock, VerdictChanged);
                }
            }
        }

        stopped.ForEach(p => p.Stop());
        Publish();
    }

    /// <summary>The listener checked (L4 or L7), for the metrics.</summary>
    public IVipListener Listener => _listener;

    /// <summary>Each probed backend: whether it is in the pool, and the checks it passed and failed (read by a scrape).</summary>
    public IReadOnlyList<(string Backend, bool Healthy, long Passed, long Failed)> ReadProbes()
    {
        lock (_lock)
        {
            return [.. _probes.Values.Select(p => (p.Backend.Id, p.Healthy, p.Passed, p.Failed))];
        }
    }

    /// <summary>A probe's verdict changed: the pool is made again after <see cref="VerdictBatch"/>, with every verdict changed by then.</summary>
    private void VerdictChanged()
    {
        if (Interlocked.Exchange(ref _verdictsPending, 1) == 0)
        {
            _ = Task.Delay(VerdictBatch).ContinueWith(_ =>
            {
                Volatile.Write(ref _verdictsPending, 0);
                Publish();
            }, TaskScheduler.Default);
        }
    }

    private void Publish()
    {
        IReadOnlyList<Backend> healthy;
        lock (_lock)
        {
            if (_disposed)
            {
                return; // a batch of verdicts that came due after the listener was closed
            }

            healthy = [.. _backends.Where(b => !_probes.TryGetValue(b.Id, out var p) || p.Healthy)];
        }

        _listener.Update(healthy);
    }

    public async ValueTask DisposeAsync()
    {
        lock (_lock)
        {
            _disposed = true;
            foreach (var probe in _probes.Values)
            {
                probe.Stop();
            }

            _probes.Clear();
        }

        await _listener.DisposeAsync();
    }

    private sealed class Probe
    {
        private readonly CancellationTokenSource _stop = new();
        private readonly BackendProbe _settings;
        private readonly TimeProvider _clock;
        private readonly IPEndPoint? _endpoint; // the backend's address as an IP (else connected to by name)
        private readonly Action _changed;
        private int _failures;
        private long _passed; // written by the probe's one loop, read by a scrape
        private long _failed;

        public long Passed => Volatile.Read(ref _passed);

        public long Failed => Volatile.Read(ref _failed);

        public Probe(Backend backend, BackendProbe settings, TimeProvider clock, Action changed)
        {
            Backend = backend;
            _settings = settings;
            _clock = clock;
            _endpoint = IPAddress.TryParse(backend.Address, out var ip) && backend.Port is > 0 and <= 65535 ? new IPEndPoint(ip, backend.Port) : null;
            _changed = changed;
            _ = RunAsync();
        }

        public Backend Backend { get; }

        /// <summary>A new backend counts as healthy: the controller has just seen it Ready.</summary>
        public bool Healthy { get; private set; } = true;

        public void Stop() => _stop.Cancel();

        private async Task RunAsync()
        {
            using var timer = new PeriodicTimer(TimeSpan.FromMilliseconds(Math.Max(50, _settings.IntervalMilliseconds)), _clock);
            try
            {
                while (await timer.WaitForNextTickAsync(_stop.Token))
                {
                    var ok = await CheckAsync();
                    if (_stop.IsCancellationRequested)
                    {
                        return;
                    }

                    if (ok)
                    {
                        _passed++;
                    }
                    else
                    {
                        _failed++;
                    }

                    var was = Healthy;
                    _failures = ok ? 0 : _failures + 1;
                    Healthy = ok || (Healthy && _failures < _settings.UnhealthyThreshold);
                    if (Healthy != was)
                    {
                        _changed();
                    }
                }
            }
            catch (OperationCanceledException)
            {
            }
        }

        private async Task<bool> CheckAsync()
        {
            var limit = TimeSpan.FromMilliseconds(Math.Max(50, _settings.TimeoutMilliseconds));
            if (_settings.Kind != "http" && _endpoint is not null)
            {
                try
                {
                    return await TcpConnectCheck.ConnectsAsync(_endpoint, limit, _clock, _stop.Token);
                }
                catch (SocketException)
                {
                    return false; // no socket to be had (out of descriptors): not the backend's fault, but not known healthy
                }
            }

            using var timeout = new CancellationTokenSource(limit, _clock);
            using var linked = CancellationTokenSource.CreateLinkedTokenSource(timeout.Token, _stop.Token);
            try
            {
                if (_settings.Kind == "http")
                {
                    using var response = await Http.GetAsync($"http://{Backend.Address}:{Backend.Port}{_settings.Path ?? "/"}", HttpCompletionOption.ResponseHeadersRead, linked.Token);
                    return (int)response.StatusCode is >= 200 and < 400;
                }

                using var client = new TcpClient();
                await client.ConnectAsync(Backend.Address, Backend.Port, linked.Token);
                return true;
            }
            catch (Exception e) when (e is HttpRequestException or SocketException or OperationCanceledException && !_stop.IsCancellationRequested)
            {
                return false;
            }
        }
    }
}
