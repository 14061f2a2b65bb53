using Heddle.Contracts.Api;
using Heddle.Controller.Reconciliation;
using Heddle.Controller.Store;
using Heddle.Model.Definition;

namespace Heddle.Controller.Dns;

/// <summary>
/// Publishes what the cluster's DNS zone should say: every active service with the Ready instances of each role.
/// Rebuilt from the store after each event (coalesced, so a burst costs one rebuild) and published only when it
/// changed, with a new serial. DNS servers in this process subscribe to <see cref="Changed"/>; remote ones follow
/// GET /v1/dns/records?follow=true.
/// </summary>
public sealed class DnsRecordSource
{
    private readonly IClusterStore _store;
    private readonly ServiceModels _models;
    private readonly Lock _lock = new();
    private int _pending;
    private DnsRecordSet _current = new() { Serial = 1, Services = [] };
    private string _fingerprint = string.Empty;

    public DnsRecordSource(IClusterStore store, ServiceModels models, EventLog events)
    {
        _store = store;
        _models = models;
        events.Added += _ => Schedule();
        Rebuild();
    }

    public event Action<DnsRecordSet>? Changed;

    public DnsRecordSet Current
    {
        get
        {
            lock (_lock)
            {
                return _current;
            }
        }
    }

    /// <summary>Asks for a rebuild; rebuilds already asked for and not started yet are merged into one.</summary>
    public void Schedule()
    {
        if (Interlocked.Exchange(ref _pending, 1) == 0)
        {
            _ = Task.Run(() =>
            {
                Interlocked.Exchange(ref _pending, 0);
                Rebuild();
            });
        }
    }

    public void Rebuild()
    {
        var addresses = _store.ListNodes().ToDictionary(n => n.Name, n => n.Address, StringComparer.Ordinal);
        var services = new List<DnsService>();
        foreach (var service in _store.ListServices().Where(s => !s.Deleting))
        {
            var model = _models.For(service);
            if (model is null)
            {
                continue;
            }

            var instances = _store.ListInstances(service.Name);
            var roles = model.Definition.Roles.Select(role => new DnsRole(role.Name,
            [
                .. instances
                    .Where(i => i.Role == role.Name && i.State == InstanceStates.Ready && addresses.ContainsKey(i.Node))
                    .OrderBy(i => i.Index)
                    .Select(i => new DnsInstance(i.Index, addresses[i.Node], Endpoints(role, i))),
            ])).ToList();
            services.Add(new DnsService(service.Name, [], roles));
        }

        var fingerprint = System.Text.Json.JsonSerializer.Serialize(services);
        DnsRecordSet published;
        lock (_lock)
        {
            if (fingerprint == _fingerprint)
            {
                return;
            }

            _fingerprint = fingerprint;
            _current = published = new DnsRecordSet { Serial = _current.Serial + 1, Services = services };
        }

        Changed?.Invoke(published);
    }

    private static List<DnsEndpoint> Endpoints(RoleDefinition role, InstanceRecord instance) =>
        [.. role.Endpoints
            .Where(e => instance.Ports.ContainsKey(e.Name))
            .Select(e => new DnsEndpoint(e.Name, e.Protocol == EndpointProtocol.Udp ? "udp" : "tcp", instance.Ports[e.Name]))];
}
