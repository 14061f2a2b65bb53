using Heddle.Contracts.Api;
using Heddle.Controller.Agents;
using Heddle.Controller.Dns;
using Heddle.Controller.LoadBalancing;
using Heddle.Controller.Publishing;
using Heddle.Controller.Reconciliation;
using Heddle.Controller.Store;
using Heddle.Controller.Store.Kv;
using Heddle.Testing;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Time.Testing;

namespace Heddle.Controller.Tests.Publishing;

/// <summary>
/// The DNS and load-balancer views are rebuilt per service from the store's change feed: an instance becoming Ready
/// shows in both without the other services being built again, a node's new address reaches every service on it, a
/// deleted service leaves both, and a report that changes nothing of the views publishes nothing.
/// </summary>
public sealed class PerServiceProjectionTests : IDisposable
{
    private readonly FakeTimeProvider _time = new(new DateTimeOffset(2026, 12, 5, 8, 0, 0, TimeSpan.Zero));
    private readonly KvClusterStore _store;
    private readonly ServiceModels _models;
    private readonly DeploymentReconciler _reconciler;
    private readonly DnsRecordSource _dns;
    private readonly LoadBalancerConfigSource _balancers;

    public PerServiceProjectionTests()
    {
        _store = KvStores.InMemory(_time);
        _models = new ServiceModels(_store);
        _reconciler = new DeploymentReconciler(_store, _models, new EventLog(_store),
            new ControllerOptions { StateDirectory = "/nonexistent" }, new AlwaysPublished(), _time, NullLogger<DeploymentReconciler>.Instance);
        _dns = new DnsRecordSource(_store, _models);
        _balancers = new LoadBalancerConfigSource(_store, _models);
    }

    public void Dispose() => _store.Dispose();

    private Task NodeAsync(string name, string address) => _store.PutNodeAsync(new NodeRecord
    {
        Name = name, Address = address, FaultDomain = "fd1", Labels = new Dictionary<string, string>(), MemoryMiB = 8192,
        Cores = [[0], [1], [2], [3], [4], [5], [6], [7]], Condition = NodeCondition.Ready, LastSeen = _time.GetUtcNow(), Drivers = ["process"],
    });

    private async Task DeployAsync(string name, string vip, string? family = null, string slot = Slots.Production)
    {
        var service = family ?? name;
        var package = Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(System.Text.Encoding.UTF8.GetBytes(name)));
        var yaml = $"name: {service}\nroles:\n  web:\n    entryPoint: {{ command: web }}\n    size: {{ cores: 1, memoryMiB: 64 }}\n    endpoints:\n      http: {{ kind: input, protocol: tcp, port: 80 }}\n";
        await _store.PutPackageAsync(new PackageRecord(package, 1, service, yaml, _time.GetUtcNow()));
        Assert.True(await _store.PutDeploymentAsync(new DeploymentWrite(name, "default", 1, package, $"service: {service}\nroles:\n  web: {{ instances: 2 }}\n", "test", 0)
        {
            Vip = vip, Family = family, Slot = slot,
        }));
        await _reconciler.ReconcileAsync(name);
        Assert.Equal(2, _store.ListInstances(name).Count);
    }

    private Task ReportAsync(string service, int index, InstanceState state)
    {
        var instance = _store.ListInstances(service).Single(i => i.Index == index);
        return _store.UpdateInstanceStatusAsync(new InstanceReportRecord(instance.Node, service, "web", index, instance.Generation, state, null)
        {
            Ports = new Dictionary<string, int> { ["http"] = 8000 + index }, Revision = 1,
        });
    }

    private static Task UntilAsync(Func<bool> condition, string what) => Poll.UntilAsync(condition, TimeSpan.FromSeconds(10), what);

    private static int ReadyIn(Heddle.Contracts.Api.DnsRecordSet view, string service) =>
        view.Services.Where(s => s.Name.StartsWith(service + ".", StringComparison.Ordinal) || s.Name == service).SelectMany(s => s.Roles).Sum(r => r.Instances.Count);

    [Fact]
    public async Task AnInstanceBecomingReady_ShowsInBothViews_AndBuildsOnlyItsService()
    {
        await NodeAsync("n1", "127.0.9.1");
        await DeployAsync("shop", "127.80.0.1");
        await DeployAsync("blog", "127.80.0.2");
        Assert.Equal(0, ReadyIn(_dns.Current, "shop"));
        _dns.Rebuild(); // what the deploys marked is built
        _balancers.Rebuild();
        var before = (Dns: _dns.BuildsOf("blog"), Balancers: _balancers.BuildsOf("blog"), Shop: _dns.BuildsOf("shop"));

        await ReportAsync("shop", 0, InstanceState.Ready);

        await UntilAsync(() => ReadyIn(_dns.Current, "shop") == 1, "shop's instance 0 in the DNS view");
        await UntilAsync(() => _balancers.Current.Listeners.Single(l => l.Service == "shop").Backends.Count == 1, "shop's instance 0 behind its VIP");
        Assert.Empty(_balancers.Current.Listeners.Single(l => l.Service == "blog").Backends);
        Assert.True(_dns.BuildsOf("shop") > before.Shop);
        Assert.Equal(before.Dns, _dns.BuildsOf("blog"));
        Assert.Equal(before.Balancers, _balancers.BuildsOf("blog"));
    }

    [Fact]
    public async Task AReportThatChangesNoView_PublishesNothing()
    {
        await NodeAsync("n1", "127.0.9.1");
        await DeployAsync("shop", "127.80.0.1");
        await ReportAsync("shop", 0, InstanceState.Ready);
        await UntilAsync(() => ReadyIn(_dns.Current, "shop") == 1, "shop's instance 0 in the DNS view");
        _dns.Rebuild();
        var published = 0;
        _dns.Changed += _ => Interlocked.Increment(ref published);

        await ReportAsync("shop", 1, InstanceState.Starting); // not Ready: in no view
        _dns.Rebuild();
        Assert.True(published == 0, $"{published} views published after a report of Starting; now: {Json(_dns.Current)}");

        await ReportAsync("shop", 1, InstanceState.Ready);
        _dns.Rebuild();
        Assert.True(published >= 1);
        Assert.Equal(2, ReadyIn(_dns.Current, "shop"));
    }

    [Fact]
    public async Task ANodesNewAddress_ReachesEveryServiceOnIt()
    {
        await NodeAsync("n1", "127.0.9.1");
        await DeployAsync("shop", "127.80.0.1");
        await DeployAsync("blog", "127.80.0.2");
        await ReportAsync("shop", 0, InstanceState.Ready);
        await ReportAsync("blog", 0, InstanceState.Ready);
        await UntilAsync(() => _balancers.Current.Listeners.All(l => l.Backends.Count == 1), "one backend each");

        await NodeAsync("n1", "127.0.9.7");

        await UntilAsync(() => _balancers.Current.Listeners.All(l => l.Backends.Single().Address == "127.0.9.7"), "both services' backends at the node's new address");
        await UntilAsync(() => _dns.Current.Services.SelectMany(s => s.Roles).SelectMany(r => r.Instances).All(i => i.Address == "127.0.9.7"), "the DNS view at the new address");
    }

    [Fact]
    public async Task ARemovedNode_TakesItsInstancesOutOfBothViews_AndNoOtherNodes()
    {
        await NodeAsync("n1", "127.0.9.1");
        await DeployAsync("shop", "127.80.0.1");
        await ReportAsync("shop", 0, InstanceState.Ready);
        await UntilAsync(() => _balancers.Current.Listeners.Single().Backends.Count == 1, "shop's instance 0 behind its VIP");
        await NodeAsync("n2", "127.0.9.2");
        _dns.Rebuild();

        await _store.RemoveNodeAsync("n1");

        await UntilAsync(() => _balancers.Current.Listeners.Single().Backends.Count == 0, "no backend on the removed node");
        await UntilAsync(() => ReadyIn(_dns.Current, "shop") == 0, "no address of the removed node in the DNS view");
    }

    [Fact]
    public async Task ANodeWrittenAgainWithItsAddress_OrANewNode_BuildsNoService()
    {
        await NodeAsync("n1", "127.0.9.1");
        await DeployAsync("shop", "127.80.0.1");
        await ReportAsync("shop", 0, InstanceState.Ready);
        await UntilAsync(() => _balancers.Current.Listeners.Single().Backends.Count == 1, "shop's instance 0 behind its VIP");
        _dns.Rebuild();
        _balancers.Rebuild();
        var before = (Dns: _dns.BuildsOf("shop"), Balancers: _balancers.BuildsOf("shop"));

        _time.Advance(TimeSpan.FromSeconds(5));
        await NodeAsync("n1", "127.0.9.1"); // its agent said Hello again
        await NodeAsync("n2", "127.0.9.2"); // a node with nothing of shop's
        _dns.Rebuild();
        _balancers.Rebuild();

        Assert.Equal(before, (_dns.BuildsOf("shop"), _balancers.BuildsOf("shop")));
        Assert.Equal("127.0.9.1", _balancers.Current.Listeners.Single().Backends.Single().Address);
    }

    [Fact]
    public async Task ADeletedService_LeavesBothViews()
    {
        await NodeAsync("n1", "127.0.9.1");
        await DeployAsync("shop", "127.80.0.1");
        await DeployAsync("blog", "127.80.0.2");
        await UntilAsync(() => _balancers.Current.Listeners.Count == 2, "two services behind VIPs");

        Assert.True(await _store.MarkDeletingAsync("shop"));

        await UntilAsync(() => _balancers.Current.Listeners.Select(l => l.Service).SequenceEqual(["blog"]), "only blog behind a VIP");
        await UntilAsync(() => _dns.Current.Services.Count == 1, "only blog in DNS");
    }

    [Fact]
    public async Task ASwap_NeverPublishesOneVipTwice_NorASlotWithoutItsName()
    {
        await NodeAsync("n1", "127.0.9.1");
        await DeployAsync("hello", "127.80.0.1");
        await DeployAsync("hello@2", "127.80.0.2", family: "hello", slot: Slots.Staging);
        await ReportAsync("hello", 0, InstanceState.Ready);
        await ReportAsync("hello@2", 0, InstanceState.Ready);
        _dns.Rebuild();
        _balancers.Rebuild();
        var balancerViews = new System.Collections.Concurrent.ConcurrentQueue<LoadBalancerConfig>();
        var dnsViews = new System.Collections.Concurrent.ConcurrentQueue<DnsRecordSet>();
        _balancers.Changed += balancerViews.Enqueue;
        _dns.Changed += dnsViews.Enqueue;

        // The feed tells of the swap's two records one after the other: a rebuild between them (here made by a
        // subscriber called after the projections, as a scheduled one may run) sees the first marked and not the second.
        var between = 0;
        _store.Changed += change =>
        {
            if (change.Kind == RecordKind.Service && Interlocked.Exchange(ref between, 1) == 0)
            {
                _balancers.Rebuild();
                _dns.Rebuild();
            }
        };
        var (production, staging) = (_store.GetService("hello")!, _store.GetService("hello@2")!);
        Assert.True(await _store.SwapSlotsAsync("hello", production.Version, "hello@2", staging.Version));
        // The feed may tell of the swap after the commit returns (the store's watch can take it in before the commit does).
        await UntilAsync(() => Volatile.Read(ref between) == 1, "the feed told of the swap");
        _balancers.Rebuild();
        _dns.Rebuild();
        Assert.NotEmpty(balancerViews);
        foreach (var view in balancerViews)
        {
            Assert.Equal(["127.80.0.1:80", "127.80.0.2:80"], view.Listeners.Select(l => l.Key).Order());
        }

        foreach (var view in dnsViews)
        {
            Assert.Equal(["hello", "hello.staging"], view.Services.Select(s => s.Name).Order());
        }

        var last = balancerViews.Last().Listeners.ToDictionary(l => l.Vip, l => l.Service);
        Assert.Equal("hello@2", last["127.80.0.1"]);
        Assert.Equal("hello", last["127.80.0.2"]);
    }

    private static string Json<T>(T view) => System.Text.Json.JsonSerializer.Serialize(view, HeddleApiClient.Json);

    [Fact]
    public async Task ChangesSince_AFollowersVersion_CarriesOnlyTheServiceThatChanged_AndTheCopyMatchesTheView()
    {
        await NodeAsync("n1", "127.0.9.1");
        await DeployAsync("shop", "127.80.0.1");
        await DeployAsync("blog", "127.80.0.2");
        _balancers.Rebuild();
        var copy = Views.LoadBalancerCopy();
        var whole = _balancers.ChangesSince(copy.Origin, copy.Version, _balancers.Version);
        Assert.True(whole.IsWhole);
        var first = copy.Apply(whole);
        Assert.Equal(Json(_balancers.Current), Json(first));
        var blog = first.Listeners.Single(l => l.Service == "blog");

        await ReportAsync("shop", 0, InstanceState.Ready);
        _balancers.Rebuild();

        var change = _balancers.ChangesSince(copy.Origin, copy.Version, _balancers.Version);
        Assert.False(change.IsWhole);
        Assert.Equal(["shop"], change.Changed.Select(p => p.Service));
        Assert.Empty(change.Removed);
        var view = copy.Apply(change);
        Assert.Equal(Json(_balancers.Current), Json(view));
        Assert.Single(view.Listeners.Single(l => l.Service == "shop").Backends);
        Assert.Same(blog, view.Listeners.Single(l => l.Service == "blog")); // an unchanged part stays the object it was
    }

    [Fact]
    public async Task ChangesSince_AServiceGone_IsNamedRemoved_AndLeavesTheCopy()
    {
        await NodeAsync("n1", "127.0.9.1");
        await DeployAsync("shop", "127.80.0.1");
        await DeployAsync("blog", "127.80.0.2");
        _dns.Rebuild();
        var copy = Views.DnsCopy();
        copy.Apply(_dns.ChangesSince(copy.Origin, copy.Version, _dns.Version));

        Assert.True(await _store.MarkDeletingAsync("shop"));
        _dns.Rebuild();

        var change = _dns.ChangesSince(copy.Origin, copy.Version, _dns.Version);
        Assert.Equal(["shop"], change.Removed);
        Assert.Empty(change.Changed);
        var view = copy.Apply(change);
        Assert.Equal(Json(_dns.Current), Json(view));
        Assert.Equal(["blog"], view.Services.Select(s => s.Name));
    }

    [Fact]
    public async Task ChangesSince_AVersionOfAnotherControllerOrUnknownHere_IsTheWholeView()
    {
        await NodeAsync("n1", "127.0.9.1");
        await DeployAsync("shop", "127.80.0.1");
        _dns.Rebuild();
        var version = _dns.Version;
        Assert.True(version > 0);

        // Versions count one controller's views: after a failover the same number means something else.
        var elsewhere = new DnsRecordSource(_store, _models);
        Assert.True(_dns.ChangesSince(elsewhere.Origin, version, version).IsWhole);
        Assert.True(_dns.ChangesSince(_dns.Origin, version + 5, version).IsWhole);
        Assert.True(_dns.ChangesSince(_dns.Origin, 0, version).IsWhole);
        Assert.False(_dns.ChangesSince(_dns.Origin, version, version).IsWhole);
    }

    [Fact]
    public void ViewCopy_AChangeNotFromTheVersionItHolds_IsRefused_AndChangesNothing()
    {
        var copy = Views.DnsCopy();
        var shop = new DnsService("shop", ["127.80.0.1"], []);
        copy.Apply(new ViewChange<DnsService>("a", 0, 3, [new ViewPart<DnsService>("shop", [shop])], []));

        var skipped = new ViewChange<DnsService>("a", 4, 5, [], ["shop"]);
        var otherController = new ViewChange<DnsService>("b", 3, 4, [], ["shop"]);

        Assert.False(copy.Follows(skipped));
        Assert.False(copy.Follows(otherController));
        Assert.Throws<InvalidDataException>(() => copy.Apply(skipped));
        Assert.Equal((3L, "a"), (copy.Version, copy.Origin));
        Assert.Same(shop, copy.Apply(new ViewChange<DnsService>("a", 3, 4, [], [])).Services.Single());
    }
}
