using Heddle.Contracts.Api;
using Heddle.Controller.Publishing;
using Heddle.Controller.Store;
using Heddle.Model.Definition;

namespace Heddle.Controller.Dns;

/// <summary>What the cluster's DNS zone should say: every active service (with its VIP) and the Ready instances of each role.</summary>
public sealed class DnsRecordSource(IClusterStore store, ServiceModels models) : StoreProjection<DnsRecordSet>
{
    protected override DnsRecordSet Build()
    {
        var addresses = store.ListNodes().ToDictionary(n => n.Name, n => n.Address, StringComparer.Ordinal);
        var services = new List<DnsService>();
        foreach (var service in store.ListServices().Where(s => !s.Deleting))
        {
            if (models.For(service) is not { } model)
            {
                continue;
            }

            var instances = store.ListInstances(service.Name);
            var roles = model.Definition.Roles.Select(role => new DnsRole(role.Name,
            [
                .. instances
                    .Where(i => i.Role == role.Name && i.State == InstanceStates.Ready && !i.Draining && addresses.ContainsKey(i.Node))
                    .OrderBy(i => i.Index)
                    .Select(i => new DnsInstance(i.Index, addresses[i.Node], Endpoints(role, i))),
            ])).ToList();
            services.Add(new DnsService(service.DnsName, service.Vip is null ? [] : [service.Vip], roles));
        }

        return new DnsRecordSet { Serial = 1, Services = services };
    }

    public override long VersionOf(DnsRecordSet view) => view.Serial - 1;

    protected override DnsRecordSet Stamp(DnsRecordSet view, long version) => view with { Serial = version + 1 };

    protected override string Fingerprint(DnsRecordSet view) => System.Text.Json.JsonSerializer.Serialize(view.Services);

    private static List<DnsEndpoint> Endpoints(RoleDefinition role, InstanceRecord instance) =>
        [.. role.Endpoints
            .Where(e => instance.Ports.ContainsKey(e.Name))
            .Select(e => new DnsEndpoint(e.Name, e.Protocol == EndpointProtocol.Udp ? "udp" : "tcp", instance.Ports[e.Name]))];
}
