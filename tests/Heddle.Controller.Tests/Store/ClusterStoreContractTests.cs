using Heddle.Contracts.Api;
using Heddle.Controller.HostRollouts;
using Heddle.Controller.Store;
using Heddle.Controller.Store.Kv;
using Heddle.Testing;
using Microsoft.Extensions.Time.Testing;
using Xunit;

namespace Heddle.Controller.Tests.Store;

/// <summary>
/// What the controller relies on of its cluster store, alike on SQLite and on the key-value store (in memory, and on a
/// real etcd): VIPs and slots unique, writes from a stale read refused, reports only for the generation placed,
/// events in order, tokens used up once, and everything there again when the store is opened afresh.
/// </summary>
public abstract class ClusterStoreContractTests : IAsyncLifetime
{
    protected FakeTimeProvider Time { get; } = new(new DateTimeOffset(2026, 12, 2, 8, 0, 0, TimeSpan.Zero));

    protected IClusterStore Store { get; private set; } = null!;

    protected ITrustStore Trust => (ITrustStore)Store;

    /// <summary>Opens the store; a second call opens the same data afresh (a controller restarted).</summary>
    protected abstract Task<IClusterStore> OpenAsync();

    public async Task InitializeAsync() => Store = await OpenAsync();

    public virtual Task DisposeAsync()
    {
        Store.Dispose();
        return Task.CompletedTask;
    }

    protected static DeploymentWrite Write(string service, long expectedVersion, long number = 1, string slot = Slots.Production, string? family = null, string? vip = null) =>
        new(service, "default", number, new string('a', 64), $"service: {service}", "test", expectedVersion) { Vip = vip, Slot = slot, Family = family };

    protected static InstanceRecord Instance(string service, int index, long generation, string node = "n1") => new()
    {
        Service = service, Role = "web", Index = index, UpgradeDomain = 0, Node = node, Cpus = [index], MemoryMiB = 64, Generation = generation, Revision = 1,
    };

    [Fact]
    public async Task Vips_AreUnique_KeptByTheirService_AndARemovedServiceGivesItsVipBack()
    {
        Assert.True(await Store.PutDeploymentAsync(Write("a", 0, vip: "127.77.0.1")));
        Assert.False(await Store.PutDeploymentAsync(Write("b", 0, vip: "127.77.0.1")));
        Assert.Null(Store.GetService("b"));
        Assert.True(await Store.PutDeploymentAsync(Write("b", 0, vip: "127.77.0.2")));
        Assert.True(await Store.PutDeploymentAsync(Write("a", Store.GetService("a")!.Version, number: 2, vip: "127.77.0.3")));
        Assert.Equal("127.77.0.1", Store.GetService("a")!.Vip);

        Assert.False(await Store.ChangeVipAsync("a", "127.77.0.1", "127.77.0.2"));
        await Store.RemoveServiceAsync("b");
        Assert.True(await Store.PutDeploymentAsync(Write("c", 0, vip: "127.77.0.2")));
        Assert.True(await Store.ChangeVipAsync("a", "127.77.0.1", "127.77.0.9"));
        Assert.True(await Store.PutDeploymentAsync(Write("d", 0, vip: "127.77.0.1")));
        Assert.Equal(["127.77.0.1=d", "127.77.0.2=c", "127.77.0.9=a"], Store.ListVips().Select(v => $"{v.Key}={v.Value}").Order());
    }

    [Fact]
    public async Task Quotas_SetReplacedAndForgotten_PerTenant()
    {
        var quotas = (IQuotaStore)Store;
        await quotas.PutQuotaAsync(new QuotaRecord("alice", new QuotaLimits(Cores: 8, Vips: 0), Time.GetUtcNow()));
        await quotas.PutQuotaAsync(new QuotaRecord("bob", QuotaLimits.Unlimited, Time.GetUtcNow()));
        await quotas.PutQuotaAsync(new QuotaRecord("alice", new QuotaLimits(Cores: 16, Instances: 4), Time.GetUtcNow()));

        Assert.Equal(new QuotaLimits(Cores: 16, Instances: 4), quotas.GetQuota("alice")!.Limits);
        Assert.Equal(["alice", "bob"], quotas.ListQuotas().Select(q => q.Tenant));
        Assert.True(await quotas.DeleteQuotaAsync("bob"));
        Assert.False(await quotas.DeleteQuotaAsync("bob"));
        Assert.Null(quotas.GetQuota("bob"));
        Assert.Null(quotas.GetQuota("carol"));
    }

    [Fact]
    public async Task Machines_NameAndMacUnique_FoundByEither_AndRemovalFreesBoth()
    {
        var machines = (IMachineStore)Store;
        MachineRecord Machine(string name, string mac) => new(name, mac, "rack-1", new Dictionary<string, string>(), Time.GetUtcNow());

        Assert.Equal(MachineAddOutcome.Added, await machines.AddMachineAsync(Machine("m1", "52:54:00:00:00:01")));
        Assert.Equal(MachineAddOutcome.NameTaken, await machines.AddMachineAsync(Machine("m1", "52:54:00:00:00:02")));
        Assert.Equal(MachineAddOutcome.MacTaken, await machines.AddMachineAsync(Machine("m2", "52:54:00:00:00:01")));
        Assert.Null(machines.GetMachineByMac("52:54:00:00:00:02"));
        Assert.Null(machines.GetMachine("m2"));
        Assert.Equal("m1", machines.GetMachineByMac("52:54:00:00:00:01")!.Name);
        Assert.True(await machines.SetMachineBootedAsync("m1", Time.GetUtcNow()));
        Assert.Equal(Time.GetUtcNow(), machines.GetMachine("m1")!.LastBoot);

        Assert.Equal("52:54:00:00:00:01", (await machines.RemoveMachineAsync("m1"))!.Mac);
        Assert.Null(await machines.RemoveMachineAsync("m1"));
        Assert.False(await machines.SetMachineBootedAsync("m1", Time.GetUtcNow()));
        Assert.Equal(MachineAddOutcome.Added, await machines.AddMachineAsync(Machine("m2", "52:54:00:00:00:01")));
        Assert.Equal(["m2"], machines.ListMachines().Select(m => m.Name));
    }

    [Fact]
    public async Task HostRollout_OneAtATime_UpdatedOnlyFromTheVersionStored_AndANewOneOnceItEnded()
    {
        var rollouts = (IHostRolloutStore)Store;
        HostRollout Rollout(string image) => new()
        {
            Image = image, MaxParallel = 1, Order = [new HostRolloutTarget("n1", "m1", "rack-1")],
            PreviousImages = new Dictionary<string, string> { ["m1"] = "img-1" }, Started = Time.GetUtcNow(),
        };

        Assert.Null(rollouts.GetHostRollout());
        Assert.Equal(HostRolloutStartOutcome.Started, await rollouts.StartHostRolloutAsync(Rollout("img-2")));
        Assert.Equal(HostRolloutStartOutcome.AlreadyRunning, await rollouts.StartHostRolloutAsync(Rollout("img-3")));
        var stored = rollouts.GetHostRollout()!;
        Assert.Equal(("img-2", 1L, "img-1"), (stored.Image, stored.Version, stored.PreviousImages["m1"]));

        var paused = stored with { Phase = HostRolloutPhase.Paused };
        Assert.True(await rollouts.UpdateHostRolloutAsync(paused));
        Assert.False(await rollouts.UpdateHostRolloutAsync(stored with { Phase = HostRolloutPhase.Failed }));
        Assert.Equal((HostRolloutPhase.Paused, 2L), (rollouts.GetHostRollout()!.Phase, rollouts.GetHostRollout()!.Version));

        var step = new HostNodeStep { Node = "n1", Machine = "m1", Domain = "rack-1", Stage = HostNodeStage.Rebooting, StageStarted = Time.GetUtcNow(), Instances = ["hello/web/0"] };
        Assert.True(await rollouts.UpdateHostRolloutAsync(rollouts.GetHostRollout()! with { Phase = HostRolloutPhase.Done, InProgress = [step], Done = ["n0"] }));
        var done = rollouts.GetHostRollout()!;
        Assert.Equal((HostNodeStage.Rebooting, "hello/web/0", "n0"), (done.InProgress[0].Stage, done.InProgress[0].Instances[0], done.Done[0]));
        Assert.Equal(HostRolloutStartOutcome.Started, await rollouts.StartHostRolloutAsync(Rollout("img-3")));
        Assert.Equal(("img-3", 1L), (rollouts.GetHostRollout()!.Image, rollouts.GetHostRollout()!.Version));
    }

    [Fact]
    public async Task HostRolloutStep_SetsItsMachinesImagesInTheSameCommit_AndNoneWhenTheTermEndedOrAMachineOrImageIsGone()
    {
        var (rollouts, machines) = ((IHostRolloutStore)Store, (IMachineStore)Store);
        HostImageRecord Image(string name) => new(name, new string('a', 64), 1, new string('b', 64), 1, null, Time.GetUtcNow());
        await machines.AddHostImageAsync(Image("img-1"));
        await machines.AddHostImageAsync(Image("img-2"));
        foreach (var name in new[] { "m1", "m2" })
        {
            await machines.AddMachineAsync(new MachineRecord(name, $"52:54:00:00:00:0{name[1]}", "rack-1", new Dictionary<string, string>(), Time.GetUtcNow(), HostImage: "img-1"));
        }

        Assert.Equal(HostRolloutStartOutcome.Started, await rollouts.StartHostRolloutAsync(new HostRollout
        {
            Image = "img-2", MaxParallel = 2, Order = [new HostRolloutTarget("n1", "m1", "rack-1"), new HostRolloutTarget("n2", "m2", "rack-1")],
            PreviousImages = new Dictionary<string, string> { ["m1"] = "img-1", ["m2"] = "img-1" }, Started = Time.GetUtcNow(),
        }));
        var stored = rollouts.GetHostRollout()!;
        var next = stored with { Done = ["n1", "n2"] };
        var (termHeld, termEnded) = (("terms/controller", 0L), ("terms/controller", 42L)); // the key's revision is the condition: 0 while it is absent

        Assert.False(await rollouts.UpdateHostRolloutAsync(next, fence: termEnded, imageSets: [("m1", "img-2"), ("m2", "img-2")]));
        Assert.False(await rollouts.UpdateHostRolloutAsync(next, fence: termHeld, imageSets: [("m1", "img-2"), ("m9", "img-2")]));
        Assert.False(await rollouts.UpdateHostRolloutAsync(next, fence: termHeld, imageSets: [("m1", "img-9")]));
        Assert.Equal((1L, "img-1", "img-1"), (rollouts.GetHostRollout()!.Version, machines.GetMachine("m1")!.HostImage, machines.GetMachine("m2")!.HostImage));

        Assert.True(await rollouts.UpdateHostRolloutAsync(next, fence: termHeld, imageSets: [("m1", "img-2"), ("m2", "img-2")]));
        Assert.Equal((2L, "img-2", "img-2"), (rollouts.GetHostRollout()!.Version, machines.GetMachine("m1")!.HostImage, machines.GetMachine("m2")!.HostImage));
        Assert.Equal(HostImageDeleteOutcome.InUse, await machines.DeleteHostImageAsync("img-2"));
    }

    [Fact]
    public async Task MachineHostImage_SetOnlyToAnImageThatExists_AndAnImageAMachineIsSetToIsNotDeleted()
    {
        var machines = (IMachineStore)Store;
        HostImageRecord Image(string name) => new(name, new string('a', 64), 1, new string('b', 64), 1, null, Time.GetUtcNow());
        await machines.AddHostImageAsync(Image("img-1"));
        await machines.AddHostImageAsync(Image("img-2"));
        await machines.AddMachineAsync(new MachineRecord("m1", "52:54:00:00:00:01", "rack-1", new Dictionary<string, string>(), Time.GetUtcNow(), HostImage: "img-1"));

        Assert.Equal(MachineImageOutcome.HostImageMissing, await machines.SetMachineHostImageAsync("m1", "img-9"));
        Assert.Equal(MachineImageOutcome.MachineMissing, await machines.SetMachineHostImageAsync("m9", "img-2"));
        Assert.Equal("img-1", machines.GetMachine("m1")!.HostImage);
        Assert.Equal(MachineImageOutcome.Set, await machines.SetMachineHostImageAsync("m1", "img-2"));

        Assert.Equal(("img-2", "img-2"), (machines.GetMachine("m1")!.HostImage, machines.GetMachineByMac("52:54:00:00:00:01")!.HostImage));
        Assert.Equal(HostImageDeleteOutcome.InUse, await machines.DeleteHostImageAsync("img-2"));
        Assert.Equal(HostImageDeleteOutcome.Deleted, await machines.DeleteHostImageAsync("img-1"));
    }

    [Fact]
    public async Task TenantVersion_ADeploymentCheckedAgainstAnOlderOne_IsRefused()
    {
        var before = Store.TenantVersion("default");
        Assert.True(await Store.PutDeploymentAsync(Write("a", 0) with { TenantVersion = before }));
        var after = Store.TenantVersion("default");
        Assert.NotEqual(before, after);

        Assert.False(await Store.PutDeploymentAsync(Write("b", 0, vip: "127.77.0.1") with { TenantVersion = before }));
        Assert.Null(Store.GetService("b"));
        Assert.Empty(Store.ListVips());
        Assert.True(await Store.PutDeploymentAsync(Write("b", 0) with { TenantVersion = after }));
        var checkedLast = Store.TenantVersion("default");
        Assert.True(await Store.PutDeploymentAsync(Write("c", 0)));
        Assert.Equal(checkedLast, Store.TenantVersion("default"));
        Assert.Equal(0, Store.TenantVersion("nobody"));
    }

    [Fact]
    public async Task Slots_OneDeploymentPerSlot_AndASwapExchangesSlotsAndVips_OnlyFromAFreshRead()
    {
        Assert.True(await Store.PutDeploymentAsync(Write("web", 0, vip: "127.77.0.1")));
        Assert.True(await Store.PutDeploymentAsync(Write("web-staging", 0, slot: Slots.Staging, family: "web", vip: "127.77.0.2")));
        Assert.False(await Store.PutDeploymentAsync(Write("web-other", 0, slot: Slots.Staging, family: "web", vip: "127.77.0.3")));
        var (production, staging) = (Store.GetService("web")!, Store.GetService("web-staging")!);

        Assert.False(await Store.SwapSlotsAsync("web", production.Version - 1, "web-staging", staging.Version));
        Assert.True(await Store.SwapSlotsAsync("web", production.Version, "web-staging", staging.Version));

        Assert.Equal((Slots.Staging, "127.77.0.2"), (Store.GetService("web")!.Slot, Store.GetService("web")!.Vip));
        Assert.Equal((Slots.Production, "127.77.0.1"), (Store.GetService("web-staging")!.Slot, Store.GetService("web-staging")!.Vip));
        Assert.False(await Store.PutDeploymentAsync(Write("web-third", 0, slot: Slots.Production, family: "web")));
    }

    [Fact]
    public async Task Writes_FromAStaleRead_ChangeNothing()
    {
        Assert.True(await Store.PutDeploymentAsync(Write("hello", 0)));
        var read = Store.GetService("hello")!;
        Assert.True(await Store.PutDeploymentAsync(Write("hello", read.Version, number: 2)));

        Assert.False(await Store.PutDeploymentAsync(Write("hello", read.Version, number: 3)));
        Assert.False(await Store.CommitPlacementAsync(new PlacementCommit("hello", read.Version, [Instance("hello", 0, 1)], [])));
        Assert.False(await Store.PutDeploymentAsync(Write("hello", 0)));
        Assert.Empty(Store.ListInstances("hello"));
        Assert.Equal([2L, 1L], Store.ListRevisions("hello").Select(r => r.Number));
    }

    [Fact]
    public async Task Reports_AnInstanceOfAServiceBeingDeleted_OnceStopped_IsNotMadeRunningAgainByALateReport()
    {
        Assert.True(await Store.PutDeploymentAsync(Write("hello", 0)));
        var generation = await Store.NextGenerationAsync();
        Assert.True(await Store.CommitPlacementAsync(new PlacementCommit("hello", Store.GetService("hello")!.Version, [Instance("hello", 0, generation)], [])));
        Assert.True(await Store.UpdateInstanceStatusAsync(new InstanceReportRecord("n1", "hello", "web", 0, generation, InstanceState.Ready, null) { Revision = 1 }));
        Assert.True(await Store.MarkDeletingAsync("hello"));

        Assert.True(await Store.UpdateInstanceStatusAsync(new InstanceReportRecord("n1", "hello", "web", 0, generation, InstanceState.Stopped, null) { Revision = 1 }));
        Assert.False(await Store.UpdateInstanceStatusAsync(new InstanceReportRecord("n1", "hello", "web", 0, generation, InstanceState.Ready, null) { Revision = 1 }));

        Assert.Equal(InstanceState.Stopped, Store.ListInstances("hello").Single().State);
    }

    [Fact]
    public async Task Reports_MadeOnAStreamTheNodeHasReplaced_AreRefused_WhateverTheyArriveAfter()
    {
        Assert.True(await Store.PutDeploymentAsync(Write("hello", 0)));
        var generation = await Store.NextGenerationAsync();
        Assert.True(await Store.CommitPlacementAsync(new PlacementCommit("hello", Store.GetService("hello")!.Version, [Instance("hello", 0, generation)], [])));
        Assert.Equal(0, Store.NodeSession("n1"));
        var first = await Store.OpenNodeSessionAsync("n1");
        Assert.Equal(first, Store.NodeSession("n1"));
        InstanceReportRecord Report(InstanceState state, long session) => new("n1", "hello", "web", 0, generation, state, null) { Revision = 1, Session = session };
        Assert.True(await Store.UpdateInstanceStatusAsync(Report(InstanceState.Starting, first)));

        // The agent says Hello again (to this controller or another): the new stream says Ready; the old one's Starting, late, is refused.
        var second = await Store.OpenNodeSessionAsync("n1");
        Assert.True(second > first);
        Assert.Equal(second, Store.NodeSession("n1"));
        Assert.True(await Store.UpdateInstanceStatusAsync(Report(InstanceState.Ready, second)));
        Assert.False(await Store.UpdateInstanceStatusAsync(Report(InstanceState.Starting, first)));
        Assert.Equal(InstanceState.Ready, Store.ListInstances("hello").Single().State);

        // Another node's sessions are its own; a removed node's session goes with it.
        Assert.Equal(0, Store.NodeSession("n2"));
        await Store.PutNodeAsync(new NodeRecord
        {
            Name = "n1", Address = "127.0.0.1", FaultDomain = "fd1", Labels = new Dictionary<string, string>(), MemoryMiB = 1024, Cores = [[0]],
            Condition = NodeCondition.Ready, LastSeen = Time.GetUtcNow(),
        });
        Assert.True(await Assert.IsAssignableFrom<ITrustStore>(Store).RemoveNodeAsync("n1"));
        Assert.Equal(0, Store.NodeSession("n1"));
    }

    [Fact]
    public async Task Reports_CountOnlyForTheGenerationAndNodePlaced_ReadySinceHolds_AndAReplacementStartsAfresh()
    {
        Assert.True(await Store.PutDeploymentAsync(Write("hello", 0)));
        var generation = await Store.NextGenerationAsync();
        Assert.True(await Store.CommitPlacementAsync(new PlacementCommit("hello", Store.GetService("hello")!.Version, [Instance("hello", 0, generation)], [])));
        Assert.True(await Store.NextGenerationAsync() > generation);

        Assert.False(await Store.UpdateInstanceStatusAsync(new InstanceReportRecord("n1", "hello", "web", 0, generation - 1, InstanceState.Ready, null) { Revision = 1 }));
        Assert.False(await Store.UpdateInstanceStatusAsync(new InstanceReportRecord("n2", "hello", "web", 0, generation, InstanceState.Ready, null) { Revision = 1 }));
        Assert.True(await Store.UpdateInstanceStatusAsync(new InstanceReportRecord("n1", "hello", "web", 0, generation, InstanceState.Ready, null)
        {
            Revision = 1, Pid = 42, Ports = new Dictionary<string, int> { ["http"] = 20001 }, Failure = "exited with code 1", LastStderr = "boom",
        }));
        var since = Time.GetUtcNow();
        Time.Advance(TimeSpan.FromSeconds(5));
        Assert.True(await Store.UpdateInstanceStatusAsync(new InstanceReportRecord("n1", "hello", "web", 0, generation, InstanceState.Ready, null)
        {
            Revision = 1, Pid = 42, Restarts = 1, Ports = new Dictionary<string, int> { ["http"] = 20001 },
        }));

        var ready = Store.ListInstances("hello").Single();
        Assert.Equal((InstanceState.Ready, 42, 1, since, "exited with code 1", "boom", 20001), (ready.State, ready.Pid, ready.Restarts, ready.ReadySince, ready.LastFailure, ready.LastStderr, ready.Ports["http"]));
        Assert.Equal(Describe(ready), Describe(Store.ListInstancesOnNode("n1").Single()));

        Assert.True(await Store.CommitPlacementAsync(new PlacementCommit("hello", Store.GetService("hello")!.Version, [], []) { Marks = [new InstanceMark("web", 0, 2, Draining: true)] }));
        var marked = Store.ListInstances("hello").Single();
        Assert.Equal((2L, true, InstanceState.Ready, 42), (marked.Revision, marked.Draining, marked.State, marked.Pid));

        var moved = await Store.NextGenerationAsync();
        Assert.True(await Store.CommitPlacementAsync(new PlacementCommit("hello", Store.GetService("hello")!.Version, [Instance("hello", 0, moved, node: "n2")], [])));
        var fresh = Store.ListInstances("hello").Single();
        Assert.Equal(("n2", InstanceState.Pending, 0, 0, (DateTimeOffset?)null, (string?)null, false), (fresh.Node, fresh.State, fresh.Pid, fresh.Restarts, fresh.ReadySince, fresh.LastFailure, fresh.Draining));
        Assert.Empty(Store.ListInstancesOnNode("n1"));
    }

    [Fact]
    public async Task Reports_EachInstanceListedWithItsOwn_AcrossRoles_GapsAndARemovedOne_AndAnUnchangedOneIsTheSameRecord()
    {
        Assert.True(await Store.PutDeploymentAsync(Write("many", 0)));
        var generation = await Store.NextGenerationAsync();
        InstanceRecord Placed(string role, int index) => Instance("many", index, generation) with { Role = role };
        Assert.True(await Store.CommitPlacementAsync(new PlacementCommit("many", Store.GetService("many")!.Version,
            [.. Enumerable.Range(0, 12).Select(i => Placed("web", i)), .. Enumerable.Range(0, 3).Select(i => Placed("api", i)), Placed("apiary", 0)], [])));
        var reported = new[] { ("api", 1), ("apiary", 0), ("web", 0), ("web", 2), ("web", 4), ("web", 10), ("web", 11) };
        foreach (var (role, index) in reported)
        {
            Assert.True(await Store.UpdateInstanceStatusAsync(new InstanceReportRecord("n1", "many", role, index, generation, InstanceState.Ready, null)
            {
                Revision = 1, Pid = 1000 + (role.Length * 100) + index,
            }));
        }

        Assert.True(await Store.CommitPlacementAsync(new PlacementCommit("many", Store.GetService("many")!.Version, [], [("web", 4), ("web", 5)])));

        var listed = Store.ListInstances("many");
        Assert.Equal(14, listed.Count);
        foreach (var instance in listed)
        {
            var expected = reported.Contains((instance.Role, instance.Index)) ? (InstanceState.Ready, 1000 + (instance.Role.Length * 100) + instance.Index) : (InstanceState.Pending, 0);
            Assert.Equal((instance.Role, instance.Index, expected.Item1, expected.Item2), (instance.Role, instance.Index, instance.State, instance.Pid));
            Assert.Equal(Describe(instance), Describe(Store.GetInstance("many", instance.Role, instance.Index)!));
        }

        // Another instance's report lists the service again; an instance whose placement and report did not change is the
        // record listed before, not one made again.
        Assert.True(await Store.UpdateInstanceStatusAsync(new InstanceReportRecord("n1", "many", "web", 3, generation, InstanceState.Starting, null) { Revision = 1 }));
        var again = Store.ListInstances("many");
        Assert.Equal(InstanceState.Starting, again.Single(i => i is { Role: "web", Index: 3 }).State);
        Assert.Same(listed.Single(i => i is { Role: "web", Index: 10 }), again.Single(i => i is { Role: "web", Index: 10 }));
    }

    [Fact]
    public async Task Events_ComeBackInOrder_AfterAnId()
    {
        var first = await Store.AddEventAsync(EventKind.NodeJoined, "s", "one");
        var second = await Store.AddEventAsync(EventKind.NodeDown, "s", "two");
        var third = await Store.AddEventAsync(EventKind.NodeUp, "s", "three");

        Assert.True(first.Id < second.Id && second.Id < third.Id);
        Assert.Equal(["two", "three"], Store.ListEvents(first.Id, 10).Select(e => e.Message));
        Assert.Equal(["two"], Store.ListEvents(first.Id, 1).Select(e => e.Message));
        Assert.Equal(second, Store.ListEvents(first.Id, 1).Single());
    }

    [Fact]
    public async Task AddEvent_WithAnOwner_KeepsItsTenantAndIncarnation_AndARecreatedServiceIsANewIncarnation()
    {
        Assert.True(await Store.PutDeploymentAsync(Write("leak", 0)));
        var bobs = Store.GetService("leak")!;
        await Store.AddEventAsync(EventKind.DeploymentAccepted, "leak", "bob's", new EventOwner("bob", bobs.Incarnation));
        await Store.AddEventAsync(EventKind.NodeJoined, "n1", "the cluster's");
        await Store.RemoveServiceAsync("leak");
        Assert.True(await Store.PutDeploymentAsync(Write("leak", 0)));
        var alices = Store.GetService("leak")!;
        await Store.AddEventAsync(EventKind.DeploymentAccepted, "leak", "alice's", new EventOwner("alice", alices.Incarnation));

        Assert.True(bobs.Incarnation > 0);
        Assert.NotEqual(bobs.Incarnation, alices.Incarnation);
        Assert.Equal(alices.Incarnation, Store.ListServices().Single().Incarnation);
        string Owners() => string.Join("; ", Store.ListEvents(0, 10).Select(e => $"{e.Message} {e.Tenant ?? "-"} {e.Incarnation?.ToString() ?? "-"}"));
        var expected = $"bob's bob {bobs.Incarnation}; the cluster's - -; alice's alice {alices.Incarnation}";
        Assert.Equal(expected, Owners());

        Store.Dispose();
        Store = await OpenAsync();

        Assert.Equal(expected, Owners());
        Assert.Equal(alices.Incarnation, Store.GetService("leak")!.Incarnation);
    }

    [Fact]
    public void ChangeOf_AWatchedEventWrite_KeepsItsOwner_AndAnOldEventHasNone()
    {
        var time = Time.GetUtcNow();
        var owned = KvClusterStore.EventWrite(time, "InstanceState", "leak/web/0", "Ready", new EventOwner("alice", 17));
        var old = KvWrite.Put("events/0000000000000000001-old", System.Text.Encoding.UTF8.GetBytes("""{"time":"2026-01-01T00:00:00+00:00","kind":"NodeJoined","subject":"n1","message":"from an earlier version"}"""));

        var seen = KvClusterStore.ChangeOf(new KvChange(new KvEvent(KvEventKind.Put, owned.Key, owned.Value, 40), null, null, ChangeSource.Elsewhere)).Event!;
        var earlier = KvClusterStore.ChangeOf(new KvChange(new KvEvent(KvEventKind.Put, old.Key, old.Value, 41), null, null, ChangeSource.Elsewhere)).Event!;

        Assert.Equal((40L, "alice", (long?)17), (seen.Id, seen.Tenant, seen.Incarnation));
        Assert.Equal(("NodeJoined", (string?)null, (long?)null), (earlier.Kind, earlier.Tenant, earlier.Incarnation));
    }

    [Fact]
    public async Task ANodesCertificates_AreListedWithoutOtherNodes_AndFollowRevocation()
    {
        var later = Time.GetUtcNow().AddDays(30);
        for (var i = 0; i < 50; i++)
        {
            await Trust.PutCertificateAsync(new CertificateRecord($"serial{i:00}", $"n{i % 5}", later, false));
        }

        Assert.Equal(["serial02", "serial07", "serial12", "serial17", "serial22", "serial27", "serial32", "serial37", "serial42", "serial47"],
            Trust.ListCertificatesOf("n2").Select(c => c.Serial).Order());
        Assert.Empty(Trust.ListCertificatesOf("n9"));

        Assert.Equal(10, await Trust.RevokeCertificatesAsync("n2"));
        await Trust.PutCertificateAsync(new CertificateRecord("serial99", "n2", later, false));

        var n2 = Trust.ListCertificatesOf("n2");
        Assert.Equal(11, n2.Count);
        Assert.Equal(["serial99"], n2.Where(c => !c.Revoked).Select(c => c.Serial));
        Assert.All(Trust.ListCertificatesOf("n3"), c => Assert.False(c.Revoked));
    }

    [Fact]
    public async Task ATokenOf100Uses_Asked250TimesAtOnce_Grants100_AndAnUncountedTokenIsNeverUsedUp()
    {
        var now = Time.GetUtcNow();
        Assert.True(await Trust.PutTokenAsync(new TokenRecord("cnt1", "counted", TokenKinds.Join, null, now, null, 100, false, null)));
        Assert.True(await Trust.PutTokenAsync(new TokenRecord("unc1", "uncounted", TokenKinds.Join, null, now, null, null, false, null)));

        var uses = await Task.WhenAll(Enumerable.Range(0, 250).Select(_ => Task.Run(() => Trust.UseTokenAsync("counted"))));
        var uncounted = await Task.WhenAll(Enumerable.Range(0, 250).Select(_ => Task.Run(() => Trust.UseTokenAsync("uncounted"))));

        Assert.Equal(100, uses.Count(u => u));
        Assert.Equal(0, Trust.GetTokenByHash("counted")!.UsesLeft);
        Assert.False(await Trust.UseTokenAsync("counted"));
        Assert.All(uncounted, Assert.True);
        Assert.Null(Trust.GetTokenByHash("uncounted")!.UsesLeft);
        Assert.False(await Trust.UseTokenAsync("nosuch"));
    }

    [Fact]
    public async Task Tokens_UsedUpOnce_RevokedByUniquePrefix_AndCertificatesRevokedPerNode()
    {
        var now = Time.GetUtcNow();
        Assert.True(await Trust.PutTokenAsync(new TokenRecord("abc1", "hash1", TokenKinds.Join, null, now, null, 1, false, null)));
        Assert.False(await Trust.PutTokenAsync(new TokenRecord("abc9", "hash1", TokenKinds.Join, null, now, null, 1, false, null)));
        Assert.True(await Trust.PutTokenAsync(new TokenRecord("abc2", "hash2", TokenKinds.Api, "contoso", now, null, null, false, null)));

        Assert.True(await Trust.UseTokenAsync("hash1"));
        Assert.False(await Trust.UseTokenAsync("hash1"));
        Assert.True(await Trust.UseTokenAsync("hash2"));
        Assert.Null(await Trust.RevokeTokenAsync("abc"));
        Assert.Equal("abc2", (await Trust.RevokeTokenAsync("abc2"))!.Id);
        Assert.True(Trust.GetTokenByHash("hash2")!.Revoked);
        Assert.Equal(["abc1", "abc2"], Trust.ListTokens().Select(t => t.Id));

        await Trust.PutCertificateAsync(new CertificateRecord("01", "n1", now.AddDays(90), false));
        await Trust.PutCertificateAsync(new CertificateRecord("02", "n1", now.AddDays(90), false));
        await Trust.PutCertificateAsync(new CertificateRecord("03", "n2", now.AddDays(90), false));
        Assert.Equal(2, await Trust.RevokeCertificatesAsync("n1"));
        Assert.Equal(0, await Trust.RevokeCertificatesAsync("n1"));
        Assert.Equal(["01", "02"], Trust.ListCertificates().Where(c => c.Revoked).Select(c => c.Serial).Order());
    }

    [Fact]
    public async Task EverythingAccepted_IsThereWhenTheStoreIsOpenedAfresh()
    {
        Assert.True(await Store.PutDeploymentAsync(Write("hello", 0, vip: "127.77.0.1")));
        var generation = await Store.NextGenerationAsync();
        Assert.True(await Store.CommitPlacementAsync(new PlacementCommit("hello", Store.GetService("hello")!.Version, [Instance("hello", 0, generation)], [])));
        Assert.True(await Store.UpdateInstanceStatusAsync(new InstanceReportRecord("n1", "hello", "web", 0, generation, InstanceState.Ready, null) { Revision = 1 }));
        await Store.PutNodeAsync(new NodeRecord
        {
            Name = "n1", Address = "127.0.0.1", FaultDomain = "fd1", Labels = new Dictionary<string, string> { ["disk"] = "ssd" }, MemoryMiB = 1024,
            Cores = [[0, 1], [2, 3]], Condition = NodeCondition.Ready, LastSeen = Time.GetUtcNow(),
        });
        await Store.SetNodeConditionAsync("n1", NodeCondition.Down, Time.GetUtcNow());
        var added = await Store.AddEventAsync(EventKind.DeploymentAccepted, "hello", "accepted");
        await Store.PutImageAsync(new ImageRecord("debian", new string('b', 64), 10, 2, Time.GetUtcNow(), "contoso"));
        await Store.PutPackageAsync(new PackageRecord(new string('a', 64), 10, "hello", "name: hello", Time.GetUtcNow()));
        var before = (Store.GetService("hello"), Store.ListInstances(), Store.ListNodes(), Store.ListImages(), Store.GetPackage(new string('a', 64)));

        Store.Dispose();
        Store = await OpenAsync();

        var after = (Store.GetService("hello"), Store.ListInstances(), Store.ListNodes(), Store.ListImages(), Store.GetPackage(new string('a', 64)));
        Assert.Equal(before.Item1, after.Item1);
        Assert.Equal(before.Item2.Select(Describe), after.Item2.Select(Describe));
        Assert.Equal(before.Item3.Select(n => $"{n.Name} {n.Condition} {string.Join(';', n.Cores.Select(c => string.Join(',', c)))} {n.Labels["disk"]}"),
            after.Item3.Select(n => $"{n.Name} {n.Condition} {string.Join(';', n.Cores.Select(c => string.Join(',', c)))} {n.Labels["disk"]}"));
        Assert.Equal(before.Item4, after.Item4);
        Assert.Equal(before.Item5, after.Item5);
        Assert.Equal(added, Store.ListEvents(added.Id - 1, 10).Single());
        Assert.True(await Store.NextGenerationAsync() > generation);
    }

    /// <summary>
    /// Another controller's feed tells of a swap's records only once both are in its copy: whichever it hears of first,
    /// the other is already swapped (its projections never build one slot from before the swap and one from after).
    /// </summary>
    protected async Task AnotherControllerSeesASwapWhole(IClusterStore other)
    {
        Assert.True(await Store.PutDeploymentAsync(Write("web", 0, vip: "127.77.0.1")));
        Assert.True(await Store.PutDeploymentAsync(Write("web-staging", 0, slot: Slots.Staging, family: "web", vip: "127.77.0.2")));
        await Poll.UntilAsync(() => other.GetService("web-staging") is not null, TimeSpan.FromSeconds(10), "the other controller to see both slots");
        var seen = new System.Collections.Concurrent.ConcurrentQueue<string>();
        other.Changed += change =>
        {
            if (change.Kind == RecordKind.Service && change.Name is "web" or "web-staging")
            {
                seen.Enqueue($"{change.Name}: web at {other.GetService("web")!.Vip}, web-staging at {other.GetService("web-staging")!.Vip}");
            }
        };
        var (production, staging) = (Store.GetService("web")!, Store.GetService("web-staging")!);

        Assert.True(await Store.SwapSlotsAsync("web", production.Version, "web-staging", staging.Version));

        await Poll.UntilAsync(() => seen.Count >= 2, TimeSpan.FromSeconds(10), "the other controller to hear of both records");
        Assert.All(seen, line => Assert.EndsWith("web at 127.77.0.2, web-staging at 127.77.0.1", line));
    }

    private static string Describe(InstanceRecord i) => $"{i.Id} {i.Node} {i.Generation} {i.State} {i.RunningRevision} {i.ReadySince:O} {string.Join(',', i.Cpus)}";
}

public sealed class SqliteClusterStoreContractTests : ClusterStoreContractTests
{
    private readonly TempDirectory _directory = new("heddle-store-");

    protected override async Task<IClusterStore> OpenAsync() => (await ClusterStores.OpenSqliteAsync(_directory.Combine("cluster.db"), Time)).Cluster;

    public override async Task DisposeAsync()
    {
        await base.DisposeAsync();
        _directory.Dispose();
    }
}

public sealed class InMemoryKvClusterStoreContractTests : ClusterStoreContractTests
{
    private readonly InMemoryKeyValueStore _kv = new();

    protected override Task<IClusterStore> OpenAsync() => Task.FromResult<IClusterStore>(KvStores.Over(_kv, Time));

    [Fact]
    public async Task AnotherController_SeesASwapWhole()
    {
        using var other = KvStores.Over(_kv, Time);
        await AnotherControllerSeesASwapWhole(other);
    }

    [Fact]
    public async Task TwoControllers_SeeEachOthersWrites_AndAWriteFromTheStaleOneIsRefusedThenSucceedsOnARetry()
    {
        using var other = KvStores.Over(_kv, Time);
        Assert.True(await Store.PutDeploymentAsync(Write("hello", 0)));
        await Poll.UntilAsync(() => other.GetService("hello") is not null, TimeSpan.FromSeconds(10), "the other controller to see the deployment");
        var stale = other.GetService("hello")!;
        Assert.True(await Store.PutDeploymentAsync(Write("hello", stale.Version, number: 2)));

        // The other controller's copy may not have the second write yet: its commit is refused, and it reads the key again.
        var refused = await other.PutDeploymentAsync(Write("hello", stale.Version, number: 3));
        Assert.False(refused);
        var fresh = other.GetService("hello")!;
        Assert.Equal(2, fresh.Revision);
        Assert.True(await other.PutDeploymentAsync(Write("hello", fresh.Version, number: 3)));
        await Poll.UntilAsync(() => Store.GetService("hello")!.Revision == 3, TimeSpan.FromSeconds(10), "the first controller to see revision 3");
        Assert.Equal([3L, 2L, 1L], Store.ListRevisions("hello").Select(r => r.Number));
    }
}

public sealed class EtcdClusterStoreContractTests : ClusterStoreContractTests
{
    private EtcdProcess? _etcd;

    protected override async Task<IClusterStore> OpenAsync()
    {
        _etcd ??= await EtcdProcess.StartAsync();
        return new KvClusterStore(await KvMirror.StartAsync(new EtcdKeyValueStore([_etcd.ClientUrl])), Time);
    }

    public override async Task DisposeAsync()
    {
        await base.DisposeAsync();
        if (_etcd is not null)
        {
            await _etcd.DisposeAsync();
        }
    }

    [Fact]
    public async Task AnotherController_SeesASwapWhole()
    {
        using var other = new KvClusterStore(await KvMirror.StartAsync(new EtcdKeyValueStore([_etcd!.ClientUrl])), Time);
        await AnotherControllerSeesASwapWhole(other);
    }

    [Fact]
    public async Task EtcdDown_ReadsKeepTheLastKnownState_WritesSaySo_AndWhenItIsBackSoAreWrites()
    {
        Assert.True(await Store.PutDeploymentAsync(Write("hello", 0, vip: "127.77.0.1")));
        _etcd!.Kill(0);

        Assert.Equal("127.77.0.1", Store.GetService("hello")!.Vip);
        var e = await Assert.ThrowsAsync<KvUnavailableException>(() => Store.PutDeploymentAsync(Write("hello", Store.GetService("hello")!.Version, number: 2)));
        Assert.Contains("store unavailable: 0 of 1 etcd members reachable", e.Message);

        await _etcd.RestartAsync(0);
        // The client reconnects with a backoff of its own: writes work again within seconds.
        await Poll.UntilAsync(async () =>
        {
            try
            {
                return await Store.PutDeploymentAsync(Write("hello", Store.GetService("hello")!.Version, number: 2));
            }
            catch (KvUnavailableException)
            {
                return false;
            }
        }, ok => ok, TimeSpan.FromSeconds(30), "a write accepted again");
        Assert.Equal(2, Store.GetService("hello")!.Revision);
    }
}
