using Heddle.Contracts.Api;
using Heddle.Controller.Publishing;
using Heddle.Controller.Store;
using Heddle.Model.Definition;

namespace Heddle.Controller.Dns;

/// <summary>What the cluster's DNS zone should say: every active service (with its VIP) and the Ready instances of each role.</summary>
public sealed class DnsRecordSource(IClusterStore store, ServiceModels models) : PerServiceProjection<DnsService, DnsRecordSet>(store)
{
    protected override IReadOnlyList<DnsService> BuildService(ServiceRecord service, IReadOnlyDictionary<string, string> addresses)
    {
        if (service.Deleting || models.For(service) is not { } model)
        {
            return [];
        }

        var instances = Store.ListInstances(service.Name);
        var roles = model.Definition.Roles.Select(role => new DnsRole(role.Name,
        [
            .. instances
                .Where(i => i.Role == role.Name && i.State == InstanceState.Ready && !i.Draining && addresses.ContainsKey(i.Node))
                .OrderBy(i => i.Index)
                .Select(i => new DnsInstance(i.Index, addresses[i.Node], Endpoints(role, i))),
        ])).ToList();
        return [new DnsService(service.DnsName, service.Vip is null ? [] : [service.Vip], roles)];
    }

    protected override DnsRecordSet Assemble(IEnumerable<DnsService> parts) => Views.Dns(parts, 0);

    public override long VersionOf(DnsRecordSet view) => view.Serial - 1;

    protected override DnsRecordSet Stamp(DnsRecordSet view, long version) => view with { Serial = version + 1 };

    // A loop, not LINQ: made for every instance of a service at each of its changes.
    private static List<DnsEndpoint> Endpoints(RoleDefinition role, InstanceRecord instance)
    {
        var endpoints = new List<DnsEndpoint>(role.Endpoints.Count);
        for (var i = 0; i < role.Endpoints.Count; i++)
        {
            var e = role.Endpoints[i];
            if (instance.Ports.TryGetValue(e.Name, out var port))
            {
                endpoints.Add(new DnsEndpoint(e.Name, e.Protocol == EndpointProtocol.Udp ? "udp" : "tcp", port));
            }
        }

        return endpoints;
    }
}
