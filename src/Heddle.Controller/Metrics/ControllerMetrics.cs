using System.Diagnostics;
using System.Diagnostics.Metrics;
using Heddle.Controller.Store;
using Heddle.Controller.Upgrades;
using Heddle.Placement;

namespace Heddle.Controller.Metrics;

/// <summary>
/// The controller's instruments (meter <c>Heddle.Controller</c>), served on the API port at <c>/metrics</c>
/// (<see cref="MetricsEndpoint"/>). Counters are bumped where things happen; what the store holds (instances by
/// state, nodes by condition) is read from this controller's copy when a scrape asks.
/// </summary>
public sealed class ControllerMetrics
{
    public const string MeterName = "Heddle.Controller";

    /// <summary>Latency buckets in seconds: API calls and reconcile passes are milliseconds to seconds.</summary>
    private static readonly IReadOnlyList<double> SecondsBuckets = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];

    private readonly Counter<long> _requests;
    private readonly Histogram<double> _requestDuration;
    private readonly Counter<long> _passes;
    private readonly Histogram<double> _passDuration;
    private readonly Counter<long> _placements;
    private readonly Counter<long> _placementFailures;
    private readonly Counter<long> _heartbeats;
    private readonly Counter<long> _domainsWalked;
    private readonly Counter<long> _walks;
    private readonly Counter<long> _streams;
    private readonly Counter<long> _sent;
    private readonly Counter<long> _sentBytes;
    private readonly Histogram<double> _writeDuration;

    public ControllerMetrics(IMeterFactory meters, IClusterStore store)
    {
        var meter = meters.Create(MeterName);
        _requests = meter.CreateCounter<long>("heddle.controller.api.requests", "{request}", "API requests answered, by route template, method and status class");
        _requestDuration = meter.CreateHistogram("heddle.controller.api.request.duration", "s", "Time to answer an API request (a followed stream: its whole life)",
            advice: new InstrumentAdvice<double> { HistogramBucketBoundaries = SecondsBuckets });
        _passes = meter.CreateCounter<long>("heddle.controller.reconcile.passes", "{pass}", "Reconcile passes of a service, by result (done, requeue, conflict, error)");
        _passDuration = meter.CreateHistogram("heddle.controller.reconcile.duration", "s", "Time one reconcile pass of a service took",
            advice: new InstrumentAdvice<double> { HistogramBucketBoundaries = SecondsBuckets });
        _placements = meter.CreateCounter<long>("heddle.controller.placements", "{instance}", "Instances placed on a node (new, or moved from another), committed");
        _placementFailures = meter.CreateCounter<long>("heddle.controller.placement.failures", "{instance}",
            "Instances a reconcile pass could not place, once for every rule that turned nodes away (the rule's words, as heddle status says them)");
        _heartbeats = meter.CreateCounter<long>("heddle.controller.node.heartbeats", "{heartbeat}", "Heartbeats received from agents by this controller, by how they came (stream, datagram)");
        _domainsWalked = meter.CreateCounter<long>("heddle.controller.upgrade.domains", "{domain}",
            "Upgrade domains an upgrade walk finished, by direction (forward, rollback)");
        _walks = meter.CreateCounter<long>("heddle.controller.upgrade.walks", "{walk}", "Upgrade walks that ended or stopped, by outcome (completed, rolled_back, paused)");
        _streams = meter.CreateCounter<long>("heddle.controller.agent.streams", "{stream}", "Agent streams opened (a Hello taken): a count that climbs while the nodes do not is a reconnect storm");
        _sent = meter.CreateCounter<long>("heddle.controller.agent.messages", "{message}", "Messages written to agents' streams, by kind (goal, peers, keepalive)");
        _sentBytes = meter.CreateCounter<long>("heddle.controller.agent.bytes", "By", "Bytes of the messages written to agents' streams (protobuf, before framing and TLS), by kind");
        _writeDuration = meter.CreateHistogram("heddle.controller.agent.write.duration", "s", "Time one write to an agent's stream took (a slow reader holds it: HTTP/2 flow control), by kind",
            advice: new InstrumentAdvice<double> { HistogramBucketBoundaries = SecondsBuckets });
        meter.CreateObservableGauge("heddle.controller.instances", () => Instances(store), "{instance}", "Instances in the store, by service and state");
        meter.CreateObservableGauge("heddle.controller.nodes", () => Nodes(store), "{node}", "Nodes, by condition");
    }

    public void Request(string route, string method, int status, TimeSpan elapsed)
    {
        var tags = new TagList { { "route", route }, { "method", method }, { "status_class", StatusClass(status) } };
        _requests.Add(1, tags);
        _requestDuration.Record(elapsed.TotalSeconds, tags);
    }

    public static string StatusClass(int status) => status switch
    {
        >= 100 and < 200 => "1xx",
        >= 200 and < 300 => "2xx",
        >= 300 and < 400 => "3xx",
        >= 400 and < 500 => "4xx",
        >= 500 and < 600 => "5xx",
        _ => "other",
    };

    /// <param name="result">done, requeue, conflict or error.</param>
    public void Pass(string result, TimeSpan elapsed)
    {
        var tag = new KeyValuePair<string, object?>("result", result);
        _passes.Add(1, tag);
        _passDuration.Record(elapsed.TotalSeconds, tag);
    }

    public void Placed(int instances)
    {
        if (instances > 0)
        {
            _placements.Add(instances);
        }
    }

    /// <summary>One instance that could not be placed: counted under every rule that turned a node away.</summary>
    public void Unplaced(Explanation why)
    {
        if (why.Nodes == 0)
        {
            _placementFailures.Add(1, new KeyValuePair<string, object?>("rule", "no nodes"));
            return;
        }

        foreach (var (rule, nodes) in why.Reasons)
        {
            if (nodes > 0)
            {
                _placementFailures.Add(1, new KeyValuePair<string, object?>("rule", rule));
            }
        }
    }

    /// <summary>A heartbeat was heard on a stream (<paramref name="datagram"/> false) or as a datagram.</summary>
    public void Heartbeat(bool datagram) => _heartbeats.Add(1, new KeyValuePair<string, object?>("via", datagram ? "datagram" : "stream"));

    /// <summary>An agent's stream was opened.</summary>
    public void StreamOpened() => _streams.Add(1);

    /// <summary>A message of <paramref name="kind"/>, <paramref name="bytes"/> long, was written to an agent's stream in <paramref name="elapsed"/>.</summary>
    public void Sent(string kind, int bytes, TimeSpan elapsed)
    {
        var tag = new KeyValuePair<string, object?>("kind", kind);
        _sent.Add(1, tag);
        _sentBytes.Add(bytes, tag);
        _writeDuration.Record(elapsed.TotalSeconds, tag);
    }

    /// <summary>A walk went from <paramref name="before"/> to <paramref name="after"/> in a committed pass.</summary>
    public void Walked(UpgradeWalk before, UpgradeWalk? after)
    {
        if (after is null)
        {
            return;
        }

        if (after.RollingBack == before.RollingBack && after.Position > before.Position)
        {
            _domainsWalked.Add(after.Position - before.Position, new KeyValuePair<string, object?>("direction", after.RollingBack ? "rollback" : "forward"));
        }

        var outcome = after.Phase switch
        {
            WalkPhase.Completed when before.Phase != WalkPhase.Completed => "completed",
            WalkPhase.RolledBack when before.Phase != WalkPhase.RolledBack => "rolled_back",
            WalkPhase.Paused when before.Phase != WalkPhase.Paused => "paused",
            _ => null,
        };
        if (outcome is not null)
        {
            _walks.Add(1, new KeyValuePair<string, object?>("outcome", outcome));
        }
    }

    private static IEnumerable<Measurement<long>> Instances(IClusterStore store) =>
        store.ListInstances()
            .GroupBy(i => (i.Service, i.State))
            .Select(g => new Measurement<long>(g.LongCount(), new KeyValuePair<string, object?>("service", g.Key.Service), new KeyValuePair<string, object?>("state", g.Key.State.ToString())));

    private static IEnumerable<Measurement<long>> Nodes(IClusterStore store) =>
        store.ListNodes()
            .GroupBy(n => n.Condition)
            .Select(g => new Measurement<long>(g.LongCount(), new KeyValuePair<string, object?>("condition", g.Key.ToString())));
}
