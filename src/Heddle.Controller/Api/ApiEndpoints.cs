using System.Text.Json;
using Heddle.Contracts.Api;
using Heddle.Controller.Blobs;
using Heddle.Controller.Hosting;
using Heddle.Controller.Reconciliation;
using Heddle.Controller.Store;
using Heddle.Controller.Trust;
using Heddle.Model.Configuration;
using Heddle.Model.Definition;
using Heddle.Model.Diagnostics;
using Heddle.Model.Packages;
using Heddle.Model.Validation;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;

namespace Heddle.Controller.Api;

/// <summary>The user API under /v1. Every change is committed to the store before it is answered.</summary>
internal static class ApiEndpoints
{
    public const string DefaultTenant = "default";

    /// <summary>The cluster CA certificate (PEM), served without a token: it is public, and a client checks it against a hash it was given.</summary>
    public const string CaPath = "/v1/ca";

    public static void Map(IEndpointRouteBuilder app)
    {
        var v1 = app.MapGroup("/v1");
        app.MapGet(CaPath, (CertificateAuthority ca) => Results.Text(ca.CertificatePem, "application/x-pem-file"));
        v1.MapGet("/info", async (ControllerInfo info, Leadership.LeaderTerm term, BlobPeers peers, OpenedStore store, CertificateAuthority ca, LoadBalancing.BalancerRegistry balancers, Caller caller, CancellationToken cancellationToken) =>
        {
            string? leader;
            try
            {
                leader = term.Election is { } election ? await election.LeaderAsync(cancellationToken) ?? "none elected now" : null;
            }
            catch (Exception e) when (e is Grpc.Core.RpcException or Store.Kv.KvUnavailableException)
            {
                leader = $"unknown: {e.Message}";
            }

            var controllers = peers.All().Select(p => p.ApiUrl.ToString()).Order(StringComparer.Ordinal).ToList();
            return Results.Ok(info.Describe() with
            {
                Store = store.Description, Leader = leader, Controllers = controllers.Count > 0 ? controllers : [info.ApiUrl?.ToString() ?? string.Empty],
                CaHash = Heddle.Contracts.Trust.CaHash.Format(ca.PublicKeyHash),
                Balancers = caller.IsAdmin ? balancers.List() : [], // their problems name every tenant's services
            });
        });
        v1.MapPut("/packages/{sha256}", PackageUploads.PutAsync);
        v1.MapGet("/packages/{sha256}/content", (string sha256, BlobStore blobs) =>
            blobs.Exists(sha256) ? Results.File(blobs.PathOf(sha256), "application/octet-stream", enableRangeProcessing: true) : Problems.NotFound($"no package {sha256}"));
        v1.MapPut("/images/{name}", (string name, string? sha256, HttpRequest request, Caller caller, Images images, CancellationToken ct) => images.PutAsync(name, sha256, request, caller, ct));
        v1.MapGet("/images", (Caller caller, Images images) => images.List(caller));
        v1.MapDelete("/images/{name}", (string name, string? tenant, Caller caller, Images images) => images.DeleteAsync(name, tenant, caller));
        v1.MapPost("/deployments", (DeploymentRequest request, Caller caller, Deployments deployments) => deployments.DeployAsync(request, caller));
        v1.MapPost("/services/{name}/scale", (string name, string? slot, ScaleRequest request, Caller caller, Deployments deployments, IClusterStore store) =>
            SlottedAsync(store, caller, name, slot, key => deployments.ScaleAsync(key, request)));
        v1.MapPost("/services/{name}/rollback", (string name, string? slot, RollbackRequest? request, Caller caller, Deployments deployments, UpgradeControl control, IClusterStore store) =>
            SlottedAsync(store, caller, name, slot, key => deployments.RollbackAsync(key, request ?? new RollbackRequest(), control)));
        v1.MapGet("/services/{name}/revisions", (string name, string? slot, Caller caller, IClusterStore store) => Slotted(store, caller, name, slot, key =>
            Results.Ok(store.ListRevisions(key).Select(r => new RevisionStatus(r.Number, r.Created, r.PackageSha256, r.Changes, r.Outcome.ToString(), r.Number == store.GetService(key)?.Revision)).ToList())));
        v1.MapGet("/services/{name}/upgrade", (string name, string? slot, Caller caller, UpgradeControl control, IClusterStore store) => Slotted(store, caller, name, slot, control.Status));
        v1.MapPost("/services/{name}/upgrade/{action}", async (string name, string action, string? slot, Caller caller, UpgradeControl control, IClusterStore store) =>
            Enum.TryParse<UpgradeAction>(action, ignoreCase: true, out var parsed) && action.All(char.IsLetter)
                ? await SlottedAsync(store, caller, name, slot, key => control.ActAsync(key, parsed))
                : Problems.NotFound($"no upgrade action '{action}'; use pause, resume or rollback"));
        v1.MapPost("/services/{name}/swap", async (string name, Caller caller, Swaps swaps, IClusterStore store, CancellationToken ct) =>
            Visible(store, caller).Any(s => s.Family == name) ? await swaps.SwapAsync(name, ct) : UnknownService(name, store, caller));
        v1.MapGet("/services", (Caller caller, IClusterStore store, ServiceModels models, DeploymentReconciler reconciler, LoadBalancing.VipConflicts conflicts) =>
            Results.Ok(Visible(store, caller).Select(s => Describe(s, store, models, reconciler, conflicts)).ToList()));
        v1.MapGet("/services/{name}", (string name, string? slot, Caller caller, IClusterStore store, ServiceModels models, DeploymentReconciler reconciler, LoadBalancing.VipConflicts conflicts) =>
            Slotted(store, caller, name, slot, key => Results.Ok(Describe(store.GetService(key)!, store, models, reconciler, conflicts))));
        v1.MapDelete("/services/{name}", Delete);
        v1.MapGet("/instances", (string? service, string? slot, Caller caller, IClusterStore store, InstanceListing listing) =>
            service is null
                ? caller.IsAdmin ? listing.Json(store, store.ListPlacedServices(), everyService: true) : listing.Json(store, [.. Visible(store, caller).Select(s => s.Name)])
                : Slotted(store, caller, service, slot, key => listing.Json(store, [key])));
        v1.MapGet("/nodes", (IClusterStore store, NodeHealthMonitor health) => Results.Ok(Nodes(store, health)));
        v1.MapDelete("/nodes/{name}", (string name, NodeRemoval removal) => removal.RemoveAsync(name));
        v1.MapGet("/events", Events.GetAsync);
        v1.MapGet("/dns/records", FollowDnsAsync);
        v1.MapPost("/lb/heartbeat", async (BalancerHeartbeat heartbeat, LoadBalancing.BalancerRegistry balancers, CancellationToken cancellationToken) =>
        {
            try
            {
                return Results.Ok(await balancers.HeartbeatAsync(heartbeat, cancellationToken));
            }
            catch (LoadBalancing.BalancerRefusedException e)
            {
                return Problems.Invalid(ProblemTypes.InvalidRequest, "Load balancer refused", e.Message);
            }
        });
        v1.MapGet("/lb/balancers", (LoadBalancing.BalancerRegistry balancers) => Results.Ok(balancers.List()));
        v1.MapDelete("/lb/balancers/{name}", async (string name, LoadBalancing.BalancerRegistry balancers, CancellationToken cancellationToken) =>
            await balancers.LeaveAsync(name, cancellationToken) ? Results.NoContent() : Problems.NotFound($"no load balancer {name}"));
        v1.MapGet("/lb/config", (HttpContext c, LoadBalancing.LoadBalancerConfigSource s, Microsoft.Extensions.Hosting.IHostApplicationLifetime l, bool? follow) => ProjectionStream.GetAsync(c, s, l, follow));
        v1.MapGet("/services/{service}/roles/{role}/instances/{index:int}/logs", Logs.ProxyAsync);
    }

    /// <summary>The DNS records; a `heddle dns` following them may say where it answers (?server=address:port&amp;zone=z) for `heddle info`.</summary>
    private static async Task<IResult> FollowDnsAsync(HttpContext context, Dns.DnsRecordSource source, Microsoft.Extensions.Hosting.IHostApplicationLifetime lifetime, ControllerInfo info,
        bool? follow, string? server, string? zone)
    {
        if (server is null)
        {
            return await ProjectionStream.GetAsync(context, source, lifetime, follow);
        }

        if (follow != true || !System.Net.IPEndPoint.TryParse(server, out var endpoint) || endpoint.Port == 0 || zone is null || !IsDnsName(zone))
        {
            return Problems.Invalid(ProblemTypes.InvalidRequest, "Bad DNS follower", "server= needs follow=true, an address:port with a port, and zone= a DNS name");
        }

        using var registered = info.AddDnsFollower(endpoint.ToString(), zone);
        return await ProjectionStream.GetAsync(context, source, lifetime, follow);
    }

    private static bool IsDnsName(string name) => name.Length is > 0 and <= 253
        && name.Split('.').All(l => l.Length is > 0 and <= 63 && l.All(c => char.IsAsciiLetterOrDigit(c) || c == '-'));

    /// <summary>The services a caller may see: all for an admin, its own for a tenant.</summary>
    internal static IEnumerable<ServiceRecord> Visible(IClusterStore store, Caller caller) => store.ListServices().Where(s => caller.Owns(s.Tenant));

    /// <summary>Runs <paramref name="act"/> on the deployment the name and slot mean, or answers why there is none (another tenant's service is none).</summary>
    private static IResult Slotted(IClusterStore store, Caller caller, string name, string? slot, Func<string, IResult> act)
    {
        var (service, problem) = ServiceSlots.Find(store, caller, name, slot);
        return service is null ? problem! : act(service.Name);
    }

    private static async Task<IResult> SlottedAsync(IClusterStore store, Caller caller, string name, string? slot, Func<string, Task<IResult>> act)
    {
        var (service, problem) = ServiceSlots.Find(store, caller, name, slot);
        return service is null ? problem! : await act(service.Name);
    }

    /// <summary>Deletes one slot (`?slot=staging`), or, without a slot, the service: every slot of it.</summary>
    private static async Task<IResult> Delete(string name, string? slot, Caller caller, IClusterStore store)
    {
        List<ServiceRecord> targets;
        if (slot is null && Visible(store, caller).Where(s => s.Family == name).ToList() is { Count: > 0 } all)
        {
            targets = all;
        }
        else
        {
            var (service, problem) = ServiceSlots.Find(store, caller, name, slot);
            if (service is null)
            {
                return problem!;
            }

            targets = [service];
        }

        foreach (var target in targets)
        {
            await store.MarkDeletingAsync(target.Name, told: new NewEvent(EventKind.ServiceDeleting, target.Name,
                $"deleting{(target.Slot == Slots.Production ? string.Empty : $" the {target.Slot} slot of {target.Family}")}: its instances are being stopped", EventOwner.Of(target)));
        }

        return Results.Accepted($"/v1/services/{name}");
    }

    /// <summary>No such service (for this caller): with hints from the names it may see; without a caller, none.</summary>
    internal static IResult UnknownService(string name, IClusterStore store, Caller? caller = null)
    {
        if (caller is null)
        {
            return Problems.NotFound($"no service '{name}'");
        }

        var names = Visible(store, caller).Select(s => s.Family).Distinct().ToList();
        var nearest = Suggestions.Nearest(name, names);
        var hint = nearest is not null ? $"; did you mean '{nearest}'?" : names.Count == 0 ? "; no service is deployed" : $"; deployed services: {string.Join(", ", names)}";
        return Problems.NotFound($"no service '{name}'{hint}");
    }

    internal static ServiceStatus Describe(ServiceRecord service, IClusterStore store, ServiceModels models, DeploymentReconciler? reconciler = null, LoadBalancing.VipConflicts? conflicts = null)
    {
        var instances = InstanceListing.List(store, service.Name);
        if (!service.Deleting && reconciler is not null)
        {
            // What the configuration asks for and no node could take is listed too, with the allocator's reason.
            foreach (var why in reconciler.Unplaced(service.Name))
            {
                var id = why.Split(": ", 2)[0];
                var parts = id.Split('/');
                if (parts.Length == 3 && int.TryParse(parts[2], out var index) && instances.All(i => i.Id != id))
                {
                    instances.Add(new InstanceStatus
                    {
                        Id = id, Service = service.Name, Role = parts[1], Index = index, UpgradeDomain = -1, State = InstanceStates.Unplaced, Reason = why.Split(": ", 2)[1],
                        Node = string.Empty, Cpus = [], MemoryMiB = 0, Ports = new Dictionary<string, int>(), Updated = service.Updated,
                    });
                }
            }
        }

        return new ServiceStatus
        {
            Name = service.Family,
            Slot = service.Slot,
            Deployment = service.Name,
            DnsName = service.DnsName,
            Tenant = service.Tenant,
            Revision = service.Revision,
            PackageSha256 = service.PackageSha256,
            Vip = service.Vip,
            VipProblem = conflicts?.ProblemFor(service),
            VipUnserved = conflicts?.Unserved(service) ?? false,
            State = service.Deleting ? "Deleting" : "Active",
            DesiredInstances = service.Deleting ? 0 : models.For(service)?.Configuration.Roles.Sum(r => r.Instances) ?? 0,
            ReadyInstances = instances.Count(i => i.State == InstanceStates.Ready),
            Instances = instances,
            Updated = service.Updated,
            Upgrade = service.Walk is { } walk ? UpgradeControl.StateOf(walk) : null,
            UpgradeReason = service.Walk?.Reason,
        };
    }

    private static List<NodeStatus> Nodes(IClusterStore store, NodeHealthMonitor health)
    {
        // Counted in one pass over the instances, not one per node: at 2,500 nodes and 25,000 instances a listing per
        // node walked 62 million records.
        var placed = new Dictionary<string, (int Instances, int Cpus)>(StringComparer.Ordinal);
        foreach (var instance in store.ListInstances())
        {
            var (count, cpus) = placed.GetValueOrDefault(instance.Node);
            placed[instance.Node] = (count + 1, cpus + instance.Cpus.Count);
        }

        return [.. store.ListNodes().Select(n => new NodeStatus
        {
            Name = n.Name,
            Address = n.Address,
            FaultDomain = n.FaultDomain,
            Labels = n.Labels,
            MemoryMiB = n.MemoryMiB,
            Cores = n.Cores,
            Condition = n.Condition.ToString(),
            LastSeen = n.Condition == NodeCondition.Ready ? health.LastSeen(n.Name) ?? n.LastSeen : n.LastSeen,
            Instances = placed.GetValueOrDefault(n.Name).Instances,
            AllocatedCpus = placed.GetValueOrDefault(n.Name).Cpus,
            Isolation = n.Isolation,
            Drivers = n.Drivers,
            HostImage = n.HostImage,
        })];
    }

    internal static readonly JsonSerializerOptions Json = new(JsonSerializerDefaults.Web);
}
