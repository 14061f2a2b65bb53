using Heddle.Contracts.Api;
using Heddle.Controller.Publishing;
using Heddle.Controller.Store;
using Heddle.Model.Definition;

namespace Heddle.Controller.LoadBalancing;

/// <summary>What the load balancer should serve: for each input endpoint of each active service, its VIP and port, with the
/// Ready instances of the role that owns the endpoint as backends.</summary>
public sealed class LoadBalancerConfigSource(IClusterStore store, ServiceModels models) : PerServiceProjection<VipListener, LoadBalancerConfig>(store)
{
    protected override IReadOnlyList<VipListener> BuildService(ServiceRecord service, IReadOnlyDictionary<string, string> addresses)
    {
        if (service.Deleting || service.Vip is null || models.For(service) is not { } model)
        {
            return [];
        }

        var listeners = new List<VipListener>();
        var instances = Store.ListInstances(service.Name);
        foreach (var role in model.Definition.Roles)
        {
            foreach (var endpoint in role.Endpoints.Where(e => e.Kind == EndpointKind.Input && e.Port is not null))
            {
                var backends = instances
                    .Where(i => i.Role == role.Name && i.State == InstanceState.Ready && !i.Draining && addresses.ContainsKey(i.Node) && i.Ports.ContainsKey(endpoint.Name))
                    .OrderBy(i => i.Index)
                    .Select(i => new Backend(i.Id, addresses[i.Node], i.Ports[endpoint.Name]))
                    .ToList();
                listeners.Add(new VipListener(service.Name, service.Vip, endpoint.Port!.Value, endpoint.Protocol == EndpointProtocol.Http ? "http" : "tcp", backends, Probe(role, endpoint)));
            }
        }

        return listeners;
    }

    protected override LoadBalancerConfig Assemble(IEnumerable<VipListener> parts) => Views.LoadBalancer(parts, 0);

    /// <summary>The role's probe when it checks this endpoint; otherwise a TCP connect with the probe defaults.</summary>
    private static BackendProbe Probe(RoleDefinition role, EndpointDefinition endpoint) => role.Probe is { } p && p.Endpoint == endpoint.Name
        ? new BackendProbe(p.Kind == ProbeKind.Http ? "http" : "tcp", p.Path, p.IntervalSeconds * 1000, p.TimeoutSeconds * 1000, p.UnhealthyThreshold)
        : new BackendProbe("tcp", null, ProbeDefinition.DefaultIntervalSeconds * 1000, ProbeDefinition.DefaultTimeoutSeconds * 1000, ProbeDefinition.DefaultUnhealthyThreshold);

    public override long VersionOf(LoadBalancerConfig view) => view.Version;

    protected override LoadBalancerConfig Stamp(LoadBalancerConfig view, long version) => view with { Version = version };
}
