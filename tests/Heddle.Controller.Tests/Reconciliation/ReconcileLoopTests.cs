using System.Diagnostics.Metrics;
using System.Reflection;
using System.Runtime.ExceptionServices;
using Heddle.Controller.Agents;
using Heddle.Controller.Metrics;
using Heddle.Controller.Publishing;
using Heddle.Controller.Reconciliation;
using Heddle.Controller.Store;
using Heddle.Testing;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Time.Testing;

namespace Heddle.Controller.Tests.Reconciliation;

/// <summary>
/// The reconcile loop over a real deployment reconciler, an in-memory store and a fake clock: services in the store at
/// start and keys queued later are reconciled, every service is looked at again each resync interval, and a pass that
/// conflicts or fails is retried after a backoff that doubles (100 ms, 200 ms, 400 ms, …) on the controller's clock.
/// </summary>
public sealed class ReconcileLoopTests : IAsyncDisposable
{
    private const string ServiceYaml = """
        name: hello
        upgradeDomains: 3
        roles:
          web:
            entryPoint: { command: web }
            size: { cores: 1, memoryMiB: 64 }
        """;

    private static readonly string Package = new('e', 64);
    private static readonly TimeSpan Deadline = TimeSpan.FromSeconds(30);
    private static readonly TimeSpan ResyncInterval = TimeSpan.FromMinutes(10);

    private readonly FakeTimeProvider _time = new(new DateTimeOffset(2026, 12, 1, 8, 0, 0, TimeSpan.Zero));
    private readonly IClusterStore _inner;
    private readonly IClusterStore _store;
    private readonly StoreWatch _watch;
    private readonly WorkQueue _queue = new();
    private readonly LogCapture _logs = new();
    private readonly ILoggerFactory _loggers;
    private readonly TestMeters _meters = new();
    private readonly CancellationTokenSource _stop = new();
    private Task _running = Task.CompletedTask;

    public ReconcileLoopTests()
    {
        _inner = KvStores.InMemory(_time);
        _store = DispatchProxy.Create<IClusterStore, StoreWatch>();
        _watch = (StoreWatch)_store;
        _watch.Inner = _inner;
        _watch.Time = _time;
        _loggers = _logs.For("controller");
        for (var i = 1; i <= 3; i++)
        {
            _inner.PutNodeAsync(new NodeRecord
            {
                Name = $"n{i}", Address = $"127.0.9.{i}", FaultDomain = $"fd{i}", Labels = new Dictionary<string, string>(), MemoryMiB = 4096,
                Cores = [[0], [1], [2], [3]], Condition = NodeCondition.Ready, LastSeen = _time.GetUtcNow(),
            }).GetAwaiter().GetResult();
        }
    }

    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync();
        await _running;
        _stop.Dispose();
        _loggers.Dispose();
        _meters.Dispose();
        _inner.Dispose();
    }

    /// <summary>
    /// The store the reconciler sees: the in-memory one, with the time of every placement commit recorded and, while
    /// <see cref="Fault"/> gives one, that commit's outcome replaced (a conflict, or the store failing). A
    /// <see cref="DispatchProxy"/> rather than a hand-written decorator because the store contract has dozens of members
    /// and only two matter here; it forwards everything else unchanged.
    /// </summary>
    public class StoreWatch : DispatchProxy
    {
        private readonly Lock _lock = new();
        private readonly List<DateTimeOffset> _commits = [];
        private int _looks;
        private int _lists;

        public IClusterStore Inner { get; set; } = null!;

        public TimeProvider Time { get; set; } = TimeProvider.System;

        /// <summary>Given the number of the commit (from 1), what it returns instead of committing; null to commit.</summary>
        public Func<int, Task<bool>?> Fault { get; set; } = _ => null;

        public IReadOnlyList<DateTimeOffset> Commits
        {
            get
            {
                lock (_lock)
                {
                    return [.. _commits];
                }
            }
        }

        /// <summary>How many times a pass read the service.</summary>
        public int Looks => Volatile.Read(ref _looks);

        /// <summary>How many times the list of services has been read (and returned).</summary>
        public int Lists => Volatile.Read(ref _lists);

        protected override object? Invoke(MethodInfo? method, object?[]? args)
        {
            ArgumentNullException.ThrowIfNull(method);
            if (method.Name == nameof(IClusterStore.GetService))
            {
                Interlocked.Increment(ref _looks);
            }

            if (method.Name == nameof(IClusterStore.CommitPlacementAsync))
            {
                int number;
                lock (_lock)
                {
                    _commits.Add(Time.GetUtcNow());
                    number = _commits.Count;
                }

                if (Fault(number) is { } replaced)
                {
                    return replaced;
                }
            }

            try
            {
                var result = method.Invoke(Inner, args);
                if (method.Name == nameof(IClusterStore.ListServices))
                {
                    Interlocked.Increment(ref _lists);
                }

                return result;
            }
            catch (TargetInvocationException e) when (e.InnerException is not null)
            {
                ExceptionDispatchInfo.Throw(e.InnerException);
                throw;
            }
        }
    }

    private sealed class TestMeters : IMeterFactory
    {
        private readonly List<Meter> _meters = [];

        public Meter Create(MeterOptions options)
        {
            var meter = new Meter(options);
            _meters.Add(meter);
            return meter;
        }

        public void Dispose()
        {
            foreach (var meter in _meters)
            {
                meter.Dispose();
            }
        }
    }

    private async Task Deploy()
    {
        await _inner.PutPackageAsync(new PackageRecord(Package, 1, "hello", ServiceYaml, _time.GetUtcNow()));
        Assert.True(await _inner.PutDeploymentAsync(new DeploymentWrite("hello", "default", 1, Package, "service: hello\nroles:\n  web: { instances: 3 }\n", "test", 0)));
    }

    private void Start()
    {
        var options = new ControllerOptions { StateDirectory = "/nonexistent", ResyncInterval = ResyncInterval };
        var models = new ServiceModels(_store);
        var reconciler = new DeploymentReconciler(_store, models, new EventLog(_store), options, new AlwaysPublished(), _time,
            _loggers.CreateLogger<DeploymentReconciler>());
        var loop = new ReconcileLoop(_queue, reconciler, _store, options, _time, _loggers.CreateLogger<ReconcileLoop>(), new ControllerMetrics(_meters, _store));
        _running = Task.Run(() => loop.RunAsync(_stop.Token));
    }

    private int Placed() => _inner.ListInstances("hello").Count;

    /// <summary>Moves the fake clock on 10 ms at each look until <paramref name="done"/>, so retries come due without any real wait.</summary>
    private Task AdvanceUntilAsync(Func<bool> done, string what) =>
        Poll.UntilAsync(() =>
        {
            if (done())
            {
                return true;
            }

            _time.Advance(TimeSpan.FromMilliseconds(10));
            return false;
        }, Deadline, what);

    [Fact]
    public async Task RunAsync_AServiceInTheStoreAtStart_IsReconciled()
    {
        await Deploy();

        Start();

        await Poll.UntilAsync(() => Placed() == 3, Deadline, "3 instances of hello placed");
    }

    [Fact]
    public async Task RunAsync_AServiceDeployedLater_IsReconciledWhenItsKeyIsQueued()
    {
        Start();
        await Poll.UntilAsync(() => _watch.Lists > 0, Deadline, "the resync at start, of an empty store");
        await Deploy();

        _queue.Add("hello");

        await Poll.UntilAsync(() => Placed() == 3, Deadline, "3 instances of hello placed");
        Assert.Single(_watch.Commits);
    }

    [Fact]
    public async Task RunAsync_EveryResyncInterval_LooksAtEveryServiceAgain()
    {
        await Deploy();
        Start();
        await Poll.UntilAsync(() => Placed() == 3, Deadline, "3 instances of hello placed");
        await Poll.UntilAsync(() => _watch.Looks > 0, Deadline, "the first pass");
        var looks = _watch.Looks;

        _time.Advance(ResyncInterval);

        await Poll.UntilAsync(() => _watch.Looks > looks, Deadline, "a pass at the resync");
    }

    [Fact]
    public async Task RunAsync_APassThatConflicts_IsRetriedAfterABackoffThatDoubles()
    {
        await Deploy();
        _watch.Fault = number => number <= 3 ? Task.FromResult(false) : null;
        Start();

        await AdvanceUntilAsync(() => Placed() == 3, "3 instances of hello placed after 3 conflicts");

        var commits = _watch.Commits;
        Assert.Equal(4, commits.Count);
        AssertGaps(commits, 100, 200, 400);
    }

    [Fact]
    public async Task RunAsync_APassThatFails_IsLoggedAndRetriedWithBackoff()
    {
        await Deploy();
        _watch.Fault = number => number == 1 ? Task.FromException<bool>(new IOException("the store is unavailable")) : null;
        Start();

        await AdvanceUntilAsync(() => Placed() == 3, "3 instances of hello placed after a failed pass");

        AssertGaps(_watch.Commits, 100);
        Assert.Contains(_logs.Lines, l => l.Contains("Reconciling hello failed; retrying with backoff", StringComparison.Ordinal) && l.Contains("the store is unavailable", StringComparison.Ordinal));
    }

    /// <summary>
    /// Each retry came at least its backoff after the pass before (in milliseconds of the fake clock), and not much later:
    /// the clock moves 10 ms per look, so a pass's own real time adds a little.
    /// </summary>
    private static void AssertGaps(IReadOnlyList<DateTimeOffset> commits, params int[] backoffs)
    {
        Assert.Equal(backoffs.Length + 1, commits.Count);
        for (var i = 0; i < backoffs.Length; i++)
        {
            var gap = (commits[i + 1] - commits[i]).TotalMilliseconds;
            Assert.InRange(gap, backoffs[i], backoffs[i] + 1_000);
        }
    }
}
