using Heddle.Contracts.Api;
using Heddle.Controller.Reconciliation;
using Heddle.Controller.Store;
using Heddle.Controller.Upgrades;
using Heddle.Model.Configuration;
using Heddle.Model.Definition;
using Heddle.Model.Diagnostics;
using Heddle.Model.Validation;
using Microsoft.AspNetCore.Http;

namespace Heddle.Controller.Api;

/// <summary>
/// Accepting a change of a service: a deploy, a scale or a rollback each become a new numbered revision, committed
/// (with the upgrade walk it needs, if any) before the answer. Counts alone change nothing that runs; a new package
/// or new settings start an upgrade walk. One upgrade at a time: a change while one is in progress is refused. A change
/// that would take the tenant past its quota (<see cref="Quotas.TenantQuotas"/>) is refused before anything is taken.
/// </summary>
public sealed class Deployments(IClusterStore store, ServiceModels models, ControllerOptions options, LoadBalancing.VipConflicts conflicts, Quotas.TenantQuotas quotas, TimeProvider time)
{
    private const int Attempts = 5;

    /// <summary>
    /// One acceptance chooses at a time on this controller: each takes the first free VIP and uid, so two new
    /// services choosing at once chose the same, one commit won and the other read again — with eight deploys in flight
    /// (a CI system, the scale benchmark) some ran out of attempts and were refused "kept changing; try again". What a
    /// choice takes is held (<see cref="_onTheirWay"/>) until its commit has landed or failed, and the turn passes on
    /// before the commit: commits of several deployments are written together instead of each waiting for the one
    /// before. A tenant under a quota keeps the turn until its commit, as what it holds is read before it. Across
    /// controllers sharing a store the commit's conditions still decide, and the attempts remain for that.
    /// </summary>
    private readonly SemaphoreSlim _accepting = new(1, 1);

    /// <summary>The VIPs and uids chosen by acceptances whose commits are on their way, and the services they change (under its own lock).</summary>
    private readonly Chosen _onTheirWay = new();

    internal async Task<IResult> DeployAsync(DeploymentRequest request, Trust.Caller caller)
    {
        // Who owns what is deployed comes from the token. Only an admin may deploy for a tenant it names.
        if (!caller.IsAdmin && request.Tenant is { Length: > 0 } asked && asked != caller.Tenant)
        {
            return Problems.Forbidden($"a token of {caller} deploys only for tenant {caller.Tenant}, not for '{Printable.Of(asked)}'; leave the tenant out; nothing was changed");
        }

        if (request.Tenant is { Length: > 0 } named && Trust.Caller.TenantNameError(named) is { } error)
        {
            return Problems.Invalid(ProblemTypes.InvalidRequest, "Bad tenant name", $"{error}; nothing was changed");
        }

        // A package the tenant did not upload itself is answered as one nobody uploaded: whether another tenant holds those bytes is not told.
        var package = store.GetPackage(request.PackageSha256);
        if (package is null || (!caller.IsAdmin && !store.IsPackageOwner(request.PackageSha256, caller.Tenant!)))
        {
            return Problems.Invalid(ProblemTypes.PackageMissing, "Package not uploaded", $"no package {request.PackageSha256}; upload it first with PUT /v1/packages/{{sha256}}");
        }

        var diagnostics = new DiagnosticBag();
        var definition = ServiceDefinitionParser.Parse(package.ServiceYaml, diagnostics)!;
        var file = string.IsNullOrWhiteSpace(request.ConfigurationFileName) ? ModelConfigurationParser.FileNameFor(definition.Name) : Path.GetFileName(request.ConfigurationFileName);
        var configuration = ModelConfigurationParser.Parse(request.Configuration ?? string.Empty, diagnostics, file);
        if (configuration is not null)
        {
            ModelValidator.CheckConfiguration(definition, configuration, file, diagnostics);
        }

        if (diagnostics.HasErrors)
        {
            return Problems.Invalid(ProblemTypes.InvalidModel, "Invalid model configuration", $"the configuration has {diagnostics.Items.Count} error(s); nothing was changed",
                diagnostics.Sorted().Select(d => d.ToString()));
        }

        // An admin deploying without naming a tenant keeps the service's; a name another tenant holds is refused in Accept.
        var owner = caller.Tenant ?? (string.IsNullOrEmpty(request.Tenant) ? null : request.Tenant);
        var tenant = owner ?? store.ListServices().FirstOrDefault(s => s.Family == definition.Name)?.Tenant ?? ApiEndpoints.DefaultTenant;

        var missing = definition.Roles.Where(r => r.Image is not null && ImageNames.Resolve(store, tenant, r.Image) is null).ToList();
        if (missing.Count > 0)
        {
            return Problems.Invalid(ProblemTypes.ImageMissing, "Image missing", $"the cluster has no image for {missing.Count} container role(s); nothing was changed",
                missing.Select(r => $"role {r.Name} runs in image '{r.Image}', which the cluster does not have: add it with 'heddle image build {r.Image}' (a Debian root file system) or 'heddle image import {r.Image} FILE.tar'"));
        }

        var slot = string.IsNullOrEmpty(request.Slot) ? Slots.Production : request.Slot;
        if (!Slots.IsKnown(slot))
        {
            return Problems.Invalid(ProblemTypes.InvalidModel, "Unknown slot", $"'{slot}' is not a slot; deploy to '{Slots.Production}' (the default) or '{Slots.Staging}'; nothing was changed");
        }

        return await AcceptAsync(definition.Name, slot, tenant, request.PackageSha256, request.Configuration!, prefix: null, action: "deploy");
    }


    internal async Task<IResult> ScaleAsync(string name, ScaleRequest request)
    {
        var service = store.GetService(name);
        if (service is null || service.Deleting)
        {
            return ApiEndpoints.UnknownService(name, store);
        }

        var model = models.For(service);
        if (string.IsNullOrEmpty(request.Role))
        {
            return Problems.Invalid(ProblemTypes.InvalidModel, "No role", "the request names no role; send {\"role\": \"web\", \"instances\": 5}");
        }

        if (model?.Definition.FindRole(request.Role) is null)
        {
            var roles = model?.Definition.Roles.Select(r => r.Name).ToList() ?? [];
            var nearest = Suggestions.Nearest(request.Role, roles);
            return Problems.NotFound($"service {name} has no role '{request.Role}'{(nearest is null ? $"; its roles are {string.Join(", ", roles)}" : $"; did you mean '{nearest}'?")}");
        }

        if (request.Instances is < ModelConfiguration.MinInstances or > ModelConfiguration.MaxInstances)
        {
            return Problems.Invalid(ProblemTypes.InvalidModel, "Invalid instance count",
                $"{request.Instances} instances is outside {ModelConfiguration.MinInstances}..{ModelConfiguration.MaxInstances}; nothing was changed");
        }

        var edited = ModelConfigurationEditor.SetInstances(service.Configuration, request.Role, request.Instances, out var error);
        if (edited is null)
        {
            return Problems.Problem(StatusCodes.Status409Conflict, ProblemTypes.Conflict, "Cannot scale", $"{error}; deploy a configuration with the count instead");
        }

        return await AcceptAsync(service.Family, service.Slot, service.Tenant, service.PackageSha256, edited, prefix: null, action: "scale");
    }

    internal async Task<IResult> RollbackAsync(string name, RollbackRequest request, UpgradeControl control)
    {
        var service = store.GetService(name);
        if (service is null || service.Deleting)
        {
            return ApiEndpoints.UnknownService(name, store);
        }

        if (service.Walk is { IsFinished: false } walk)
        {
            return request.To is null || request.To == walk.Previous
                ? await control.ActAsync(name, UpgradeAction.Rollback)
                : Problems.Problem(StatusCodes.Status409Conflict, ProblemTypes.UpgradeInProgress, "Upgrade in progress",
                    $"{InProgressSentence(service)}; an upgrade in progress can only be rolled back to revision {walk.Previous}");
        }

        var kept = store.ListRevisions(name);
        var target = request.To is { } to ? kept.FirstOrDefault(r => r.Number == to) : kept.FirstOrDefault(r => r.Number < service.Revision);
        if (target is null)
        {
            var numbers = string.Join(", ", kept.Select(r => r.Number).Order());
            return request.To is null
                ? Problems.Problem(StatusCodes.Status409Conflict, ProblemTypes.Conflict, "Nothing to roll back to", $"service {name} has no revision before {service.Revision} (kept: {numbers})")
                : Problems.NotFound($"service {name} has no revision {request.To} (kept: {numbers}; see 'heddle history {name}')");
        }

        return await AcceptAsync(service.Family, service.Slot, service.Tenant, target.PackageSha256, target.Configuration, prefix: $"rollback to revision {target.Number}", action: "rollback");
    }

    internal static string InProgressSentence(ServiceRecord service)
    {
        var walk = service.Walk!;
        var where = walk.CurrentDomain is { } d ? $", upgrade domain {d} ({walk.Position + 1} of {walk.Order.Count})" : string.Empty;
        return $"service {service.Name} has an upgrade in progress: revision {walk.Previous} → {walk.Revision}, {walk.Outcome}{where}; "
            + $"wait for it to end, or use 'heddle upgrade pause|resume|rollback {service.Name}' (see 'heddle upgrade status {service.Name}')";
    }

    private async Task<IResult> AcceptAsync(string family, string slot, string tenant, string packageSha256, string configuration, string? prefix, string action)
    {
        Hosting.RequestTrace.Mark("read and checked the request");
        var next = models.For(packageSha256, configuration)!;
        var limited = quotas.IsLimited(tenant);
        for (var attempt = 0; attempt < Attempts; attempt++)
        {
            await _accepting.WaitAsync();
            Hosting.RequestTrace.Mark("waited its turn behind other changes");
            var turn = new Turn(_accepting);
            Chosen.Held? held = null;
            try
            {
                if (_onTheirWay.Committing(family) is { } before)
                {
                    // Another change of this service is committing: what to write depends on it (a new service's key, its revision).
                    turn.Dispose();
                    await before;
                    attempt--;
                    continue;
                }

                var (refused, write) = Choose(family, slot, tenant, packageSha256, configuration, prefix, action, next, limited);
                if (refused is not null)
                {
                    return refused;
                }

                held = _onTheirWay.Hold(family, write!);
                if (!limited)
                {
                    turn.Dispose(); // the next acceptance chooses while this one commits
                }

                var written = await store.PutDeploymentAsync(write!);
                Hosting.RequestTrace.Mark(written ? "committed" : "found it changed meanwhile");
                if (!written)
                {
                    continue; // changed meanwhile (the service, its slot, the VIP chosen or what the tenant holds): read again
                }

                return Results.Accepted($"/v1/services/{family}{(slot == Slots.Production ? string.Empty : $"?slot={slot}")}",
                    new DeploymentAccepted(family, write!.Number, packageSha256, write.Changes, write.Walk is not null, slot, write.Service));
            }
            finally
            {
                held?.Dispose();
                turn.Dispose();
            }
        }

        return Problems.Problem(StatusCodes.Status409Conflict, ProblemTypes.Conflict, "Changed meanwhile", $"service {family} kept changing while this change was being accepted; try again");
    }

    /// <summary>What to write for the deployment (its turn held), or why it is refused.</summary>
    private (IResult? Refused, DeploymentWrite? Write) Choose(string family, string slot, string tenant, string packageSha256, string configuration, string? prefix, string action,
        ServiceModel next, bool limited)
    {
        // Read before what the tenant holds: a deployment of the tenant accepted after this read fails the commit below.
        long? tenantVersion = limited ? store.TenantVersion(tenant) : null;
        var all = store.ListServices();
        var service = all.FirstOrDefault(s => s.Family == family && s.Slot == slot);
        var name = service?.Name ?? ServiceSlots.FreeKey(store, family);
        var sibling = all.FirstOrDefault(s => s.Family == family && s.Slot != slot);
        if ((service ?? sibling) is { } owned && owned.Tenant != tenant)
        {
            // First, so that nothing else about another tenant's service is told.
            return (Problems.Problem(StatusCodes.Status409Conflict, ProblemTypes.Conflict, "Service name taken",
                $"the service name {family} is taken by another tenant; rename the service in service.yaml (names are one namespace for DNS); nothing was changed"), null);
        }

        if (service is { Deleting: true })
        {
            return (Problems.Problem(StatusCodes.Status409Conflict, ProblemTypes.Conflict, "Service being deleted",
                $"service {name} is being deleted (its instances are stopping); deploy it again once 'heddle delete {name} --wait' has finished; nothing was changed"), null);
        }

        if (service is { UpgradeInProgress: true })
        {
            return (Problems.Problem(StatusCodes.Status409Conflict, ProblemTypes.UpgradeInProgress, "Upgrade in progress", $"{InProgressSentence(service)}; nothing was changed"), null);
        }

        var old = service is null ? null : models.For(service);
        var instances = service is null ? [] : store.ListInstances(name);
        var change = DeploymentChanges.Describe(service, old, packageSha256, next, instances);
        var previousCompleted = service is not null && old is not null && old.AllReadyAt(instances, service.Revision);
        if (change.Refusal is not null)
        {
            return (Problems.Problem(StatusCodes.Status409Conflict, ProblemTypes.Conflict, "Change not possible in place", $"{change.Refusal}; nothing was changed"), null);
        }

        var number = (service?.LastRevision ?? 0) + 1;
        var now = time.GetUtcNow();
        var walk = change.NeedsWalk
            ? new UpgradeWalk
            {
                Revision = number, Previous = service!.Revision, Policy = next.Configuration.Upgrade, Order = [.. Enumerable.Range(0, next.UpgradeDomains)],
                Started = now, PhaseStarted = now,
            }
            : null;
        var changes = prefix is null ? change.Changes : $"{prefix}: {change.Changes}";
        var needsVip = options.VipPool is not null && service?.Vip is null && next.Definition.Roles.Any(r => r.Endpoints.Any(e => e.Kind == EndpointKind.Input));
        if (quotas.Check(tenant, service, next, needsVip, action) is { } overQuota)
        {
            return (Problems.Problem(StatusCodes.Status403Forbidden, ProblemTypes.QuotaExceeded, "Quota exceeded", overQuota), null);
        }

        // Only chosen here: the commit below takes it with the deployment, or nothing is taken.
        var vip = needsVip ? conflicts.FreeVip(_onTheirWay.Vips()) : null;
        if (needsVip && vip is null)
        {
            return (Problems.Problem(StatusCodes.Status409Conflict, ProblemTypes.Conflict, "No VIP left", $"{conflicts.Exhausted}; delete a service or widen --vip-pool; nothing was changed"), null);
        }

        var uid = service is { Uid: > 0 } ? (int?)null : ServiceUids.Free(store, options.UidRange, _onTheirWay.Uids());
        if (service is not { Uid: > 0 } && uid is null)
        {
            return (Problems.Problem(StatusCodes.Status409Conflict, ProblemTypes.Conflict, "No uid left", $"{ServiceUids.Exhausted(options.UidRange)}; nothing was changed"), null);
        }

        // The events are the written service's: a new one's incarnation is the commit's own revision, known after it.
        var count = next.Configuration.Roles.Sum(r => r.Instances);
        List<NewEvent> told = [new(EventKind.DeploymentAccepted, name, $"revision {number}: package {packageSha256[..12]}, {count} instance(s) of {next.Definition.Roles.Count} role(s); {changes}")];
        if (walk is not null)
        {
            told.Add(new(EventKind.UpgradeStarted, name,
                $"upgrade to revision {number} started: {walk.Order.Count} upgrade domain(s), mode {walk.Policy.Mode.ToString().ToLowerInvariant()}, healthCheckStable {DurationText.Format(walk.Policy.HealthCheckStable)}"));
        }

        var write = new DeploymentWrite(name, tenant, number, packageSha256, configuration, changes, service?.Version ?? 0)
        {
            Vip = vip, Uid = uid, HistoryLimit = options.HistoryLimit, Walk = walk, PreviousCompleted = previousCompleted, Family = family, Slot = slot, TenantVersion = tenantVersion,
            Events = told,
        };
        Hosting.RequestTrace.Mark("chose what to write");
        return (null, write);
    }


    /// <summary>The deployments chosen and not yet committed (their VIPs, uids and services), each held until its commit has landed or failed.</summary>
    private sealed class Chosen
    {
        private readonly Lock _lock = new();
        private readonly List<Held> _held = [];

        public IReadOnlySet<string> Vips() => Of(h => h.Write.Vip, StringComparer.Ordinal);

        public IReadOnlySet<int> Uids() => Of(h => h.Write.Uid, EqualityComparer<int?>.Default).Select(u => u!.Value).ToHashSet();

        /// <summary>When a change of the service is committing, the task that ends with its commit; otherwise null.</summary>
        public Task? Committing(string family)
        {
            lock (_lock)
            {
                return _held.FirstOrDefault(h => h.Family == family)?.Ended;
            }
        }

        public Held Hold(string family, DeploymentWrite write)
        {
            var held = new Held(this, family, write);
            lock (_lock)
            {
                _held.Add(held);
            }

            return held;
        }

        private HashSet<T> Of<T>(Func<Held, T?> value, IEqualityComparer<T> comparer)
        {
            lock (_lock)
            {
                return _held.Select(value).Where(v => v is not null).Select(v => v!).ToHashSet(comparer);
            }
        }

        public sealed class Held(Chosen chosen, string family, DeploymentWrite write) : IDisposable
        {
            private readonly TaskCompletionSource _ended = new(TaskCreationOptions.RunContinuationsAsynchronously);

            public string Family => family;

            public DeploymentWrite Write => write;

            public Task Ended => _ended.Task;

            public void Dispose()
            {
                lock (chosen._lock)
                {
                    chosen._held.Remove(this);
                }

                _ended.TrySetResult();
            }
        }
    }
}
