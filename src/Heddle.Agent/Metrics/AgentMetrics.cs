using System.Diagnostics.Metrics;
using Heddle.Contracts.Agents;

namespace Heddle.Agent.Metrics;

/// <summary>
/// The agent's instruments (meter <c>Heddle.Agent</c>), served by `heddle agent --metrics-port` (off by default):
/// <list type="bullet">
/// <item><c>heddle_agent_instances{service, state}</c>: this node's instances by state, read from the supervisor at each scrape.</item>
/// <item><c>heddle_agent_instance_starts_total{kind}</c>: entry points started, <c>first</c> or <c>restart</c> (after a crash or a failed liveness probe).</item>
/// <item><c>heddle_agent_probes_total{result}</c>: health probes of instances, <c>pass</c> or <c>fail</c>.</item>
/// <item><c>heddle_agent_heartbeats_total</c>: heartbeats sent to a controller.</item>
/// </list>
/// </summary>
public sealed class AgentMetrics
{
    public const string MeterName = "Heddle.Agent";

    private static readonly KeyValuePair<string, object?> First = new("kind", "first");
    private static readonly KeyValuePair<string, object?> Restart = new("kind", "restart");
    private static readonly KeyValuePair<string, object?> Pass = new("result", "pass");
    private static readonly KeyValuePair<string, object?> Fail = new("result", "fail");

    private readonly Counter<long> _starts;
    private readonly Counter<long> _probes;
    private readonly Counter<long> _heartbeats;
    private Func<IReadOnlyList<InstanceReport>> _instances = () => [];

    public AgentMetrics(IMeterFactory meters)
    {
        var meter = meters.Create(MeterName);
        _starts = meter.CreateCounter<long>("heddle.agent.instance.starts", "{start}", "Instance entry points started, first or restart (after a crash or a failed liveness probe)");
        _probes = meter.CreateCounter<long>("heddle.agent.probes", "{probe}", "Health probes of instances, by result (pass, fail)");
        _heartbeats = meter.CreateCounter<long>("heddle.agent.heartbeats", "{heartbeat}", "Heartbeats sent to a controller, by how (stream, datagram)");
        meter.CreateObservableGauge("heddle.agent.instances", Instances, "{instance}", "This node's instances, by service and state");
    }

    /// <summary>Where the instances' current reports are read from at a scrape (the supervisor, once it exists).</summary>
    public void Observe(Func<IReadOnlyList<InstanceReport>> instances) => _instances = instances;

    public void Started(bool restart) => _starts.Add(1, restart ? Restart : First);

    public void Probed(bool healthy) => _probes.Add(1, healthy ? Pass : Fail);

    public void HeartbeatSent(bool datagram) => _heartbeats.Add(1, new KeyValuePair<string, object?>("via", datagram ? "datagram" : "stream"));

    private IEnumerable<Measurement<long>> Instances() =>
        _instances()
            .GroupBy(r => (Service: r.InstanceId.Split('/')[0], r.State))
            .Select(g => new Measurement<long>(g.LongCount(), new KeyValuePair<string, object?>("service", g.Key.Service), new KeyValuePair<string, object?>("state", g.Key.State)));
}
