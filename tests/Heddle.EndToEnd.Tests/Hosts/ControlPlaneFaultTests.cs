using System.Diagnostics;
using Heddle.Testing;
using Heddle.Testing.Hosts;
using Xunit.Abstractions;

namespace Heddle.EndToEnd.Tests.Hosts;

/// <summary>
/// Three controllers and three etcd members on hosts of their own, nodes and a client on others (<see cref="ControlPlaneBed"/>).
/// A host of the control plane goes away as real hosts do — silently, with its link cut, or on a bad link — and the
/// cluster goes on: a new leader within 5 s when the leader went, `heddle` answering from the client within 2 s through
/// the controllers that remain, no instance stopped or restarted, no node fenced or marked Down; and nothing restarts
/// when the host comes back.
/// </summary>
[Collection(BedCollection.Name)]
[Trait("Category", BedCollection.Category)]
public sealed class ControlPlaneFaultTests(ControlPlaneBed bed, ITestOutputHelper output) : IClassFixture<ControlPlaneBed>
{
    private static readonly TimeSpan NewLeaderWithin = TimeSpan.FromSeconds(5);
    private static readonly TimeSpan AnswerWithin = TimeSpan.FromSeconds(2);

    [Fact]
    public Task LeaderHostSilentlyDropped_AnotherLeadsWithin5s_CommandsAnswerWithin2s_NothingRestarts() =>
        LeaderHostGoesAsync(host => host.DropAsync());

    [Fact]
    public Task LeaderHostLinkCut_AnotherLeadsWithin5s_CommandsAnswerWithin2s_NothingRestarts() =>
        LeaderHostGoesAsync(host => host.CutAsync());

    [Fact]
    public async Task EtcdMemberSilentlyDropped_TheLeaderStays_CommandsAnswerWithin2s_NothingRestarts()
    {
        var (leader, instances, since) = await SteadyAsync();
        var e1 = bed.Bed["e1"]; // first in every controller's list of members: the one each of them talks to
        await e1.DropAsync();
        try
        {
            await AnswersWithinAsync();
            await ObserveAsync(TimeSpan.FromSeconds(12));
            var now = await bed.LeaderAsync();
            Assert.True(now == leader, $"the leader changed from {leader} to {now}\n{bed.Describe()}");
        }
        finally
        {
            await e1.HealAsync();
        }

        // The same controller leads, in the same term. Its renewals may have been held up past the point where it stops
        // acting (when e1 was etcd's own leader, renewals wait for etcd's election): it then acts again in that term, with
        // no new election (seen in CI before that: another controller took over, 2026-12-05).
        await NothingChangedAsync(instances, since, allowElections: true);
        await OnlyTheSameTermAsync(since, "an etcd member was dropped");
    }

    /// <summary>Every election since <paramref name="since"/> was the same controller acting again in its own term, none a new term.</summary>
    private async Task OnlyTheSameTermAsync(DateTimeOffset since, string fault)
    {
        var elections = (await bed.EventsAsync(since)).Where(e => e.Kind == "LeaderElected").ToList();
        Assert.True(elections.All(e => e.Message.Contains(" leads again (term ", StringComparison.Ordinal)),
            $"a new term after {fault}: {string.Join("; ", elections.Select(e => e.Message))}");
    }

    [Fact]
    public async Task LeaderHostOnABadLink_200msDelayAnd10PercentLoss_NoLeaderChange_NoNodeDown_NothingRestarts()
    {
        var (leader, instances, since) = await SteadyAsync();
        var host = bed.Bed[bed.ControllerHost(leader)];
        var client = bed.Bed["cl"];
        await host.DegradeAsync(TimeSpan.FromMilliseconds(200), 10);
        try
        {
            // The delay is real: a TCP handshake from the client to the leader's API takes a round trip through it
            // (retried: 10% of the host's packets are lost, and a lost SYN-ACK costs a second).
            var connect = await Poll.UntilAsync(async () => await client.RunAsync("/usr/bin/curl", "-sk", "-o", "/dev/null", "--max-time", "5", "-w", "%{time_connect}",
                    $"https://{host.Address}:{ControlPlaneBed.ApiPort}/v1/health"),
                r => r.ExitCode == 0 && double.Parse(r.Stdout, System.Globalization.CultureInfo.InvariantCulture) < 1, TimeSpan.FromSeconds(30), "a connection to the degraded host");
            var handshake = TimeSpan.FromSeconds(double.Parse(connect.Stdout, System.Globalization.CultureInfo.InvariantCulture));
            output.WriteLine($"200 ms delay and 10% loss on {host.Name}: a TCP handshake to it took {handshake.TotalMilliseconds:0} ms");
            Assert.True(handshake >= TimeSpan.FromMilliseconds(195), $"a TCP handshake to {host.Name} took {handshake.TotalMilliseconds:0} ms: the 200 ms delay is not applied");
            await ObserveAsync(TimeSpan.FromSeconds(20));
            var now = await bed.LeaderAsync();
            Assert.True(now == leader, $"the leader changed from {leader} to {now}\n{bed.Describe()}");
            output.WriteLine($"{host.WiredFrames} frames went through the delay");
        }
        finally
        {
            await host.HealAsync();
        }

        // Renewals through 200 ms and 10% loss are now and then unconfirmed past the point where the leader stops acting (a
        // lost segment waits for TCP's retransmission): it then acts again in the same term, with no new election, as when
        // an etcd member is dropped (seen in CI, 2026-12-08).
        await NothingChangedAsync(instances, since, allowElections: true);
        await OnlyTheSameTermAsync(since, "200 ms delay and 10% loss on the leader's host");
    }

    private async Task LeaderHostGoesAsync(Func<TestHost, Task> fault)
    {
        var (leader, instances, since) = await SteadyAsync();
        var host = bed.Bed[bed.ControllerHost(leader)];
        output.WriteLine($"leader {leader} on {host}");
        var gone = DateTimeOffset.UtcNow;
        await fault(host);
        try
        {
            var others = bed.Controllers.Where(c => c.Key != host.Name).Select(c => c.Value).ToList();
            var elected = await Poll.UntilAsync(() => Task.FromResult(others.SelectMany(c => c.LinesWith(" leads (term ", gone)).ToList()), l => l.Count > 0,
                TimeSpan.FromSeconds(30), $"another controller to lead after {host.Name} went ({host.Fault})\n{bed.Describe()}");
            var after = elected.Min(l => l.Time) - gone;
            output.WriteLine($"{elected[0].Line} — {after.TotalSeconds:0.00} s after {host.Name} was {host.Fault}");
            Assert.True(after <= NewLeaderWithin, $"a new leader {after.TotalSeconds:0.00} s after the leader's host was {host.Fault} (at most {NewLeaderWithin.TotalSeconds} s)\n{bed.Describe()}");
            await AnswersWithinAsync();
            await ObserveAsync(TimeSpan.FromSeconds(12)); // longer than the node timeout and the agents' fence time (10 s)
        }
        finally
        {
            await host.HealAsync();
        }

        // The host is back: its controller follows again; nothing restarts.
        await Poll.UntilAsync(async () => (await bed.ClientAsync(TimeSpan.FromSeconds(10), "info", "-o", "json")).Stdout, s => s.Contains(host.Address.ToString(), StringComparison.Ordinal),
            TimeSpan.FromSeconds(30), $"{host.Name}'s controller to be listed again");
        await ObserveAsync(TimeSpan.FromSeconds(5));
        await NothingChangedAsync(instances, since, allowElections: true);
    }

    /// <summary>Every instance Ready and a leader: the state each scenario starts from (the one before healed everything).</summary>
    private async Task<(string Leader, IReadOnlyList<string> Instances, DateTimeOffset Since)> SteadyAsync()
    {
        var leader = await bed.SettledLeaderAsync();
        var instances = await Poll.UntilAsync(bed.InstancesAsync, i => i.Count == 4 && i.All(x => x.EndsWith(" Ready", StringComparison.Ordinal)), TimeSpan.FromSeconds(90), "every instance Ready");
        var (_, took) = await bed.TimedAsync("nodes");
        output.WriteLine($"steady: leader {leader}; heddle nodes in {took.TotalSeconds:0.00} s");
        return (leader, instances, DateTimeOffset.UtcNow);
    }

    /// <summary>`heddle` from the client answers each of these within 2 s (the whole command, as the user waits for it).</summary>
    private async Task AnswersWithinAsync()
    {
        foreach (var command in new[] { new[] { "status", "hello" }, ["nodes"], ["info"], ["events"] })
        {
            // What the bound is about is the cluster answering, not the CLI process starting: a run of `heddle --version`
            // just before says what starting costs now (on a loaded machine, a second or more) and is taken off.
            var (version, starting) = await bed.TimedAsync("--version");
            Assert.True(version.ExitCode == 0, $"heddle --version: {version}");
            var (result, took) = await bed.TimedAsync(command);
            var answered = took - starting;
            output.WriteLine($"heddle {string.Join(' ', command)}: exit {result.ExitCode} in {took.TotalSeconds:0.00} s ({starting.TotalSeconds:0.00} s of it the CLI starting, as heddle --version took)");
            Assert.True(result.ExitCode == 0, $"heddle {string.Join(' ', command)}: {result}");
            Assert.True(answered <= AnswerWithin, $"heddle {string.Join(' ', command)} took {took.TotalSeconds:0.00} s, {answered.TotalSeconds:0.00} s more than heddle --version (at most {AnswerWithin.TotalSeconds} s): {result}\n{bed.Describe()}");
        }
    }

    /// <summary>Watches the cluster for a while (commands keep being answered; no agent fences).</summary>
    private async Task ObserveAsync(TimeSpan window)
    {
        var clock = Stopwatch.StartNew();
        while (clock.Elapsed < window)
        {
            var run = await bed.ClientAsync(TimeSpan.FromSeconds(30), "nodes");
            Assert.True(run.ExitCode == 0, run.ToString());
            Assert.DoesNotContain(bed.Agents.Values, a => a.Output.Contains("Fenced", StringComparison.Ordinal));
        }
    }

    private async Task NothingChangedAsync(IReadOnlyList<string> instances, DateTimeOffset since, bool allowElections)
    {
        var events = await bed.EventsAsync(since);
        foreach (var e in events)
        {
            output.WriteLine($"{e.Time:HH:mm:ss.fff} {e.Kind} {e.Subject}: {e.Message}");
        }

        Assert.Equal(instances, await bed.InstancesAsync());

        Assert.DoesNotContain(events, e => e.Kind is "NodeDown" or "InstanceState" or "InstanceMoved" or "InstancePlaced" or "InstanceRemoved" or "InstanceDraining");
        if (!allowElections)
        {
            Assert.DoesNotContain(events, e => e.Kind == "LeaderElected");
        }

        Assert.DoesNotContain(bed.Agents.Values, a => a.Output.Contains("Fenced", StringComparison.Ordinal));
    }
}

[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class BedCollection
{
    public const string Name = "test bed";

    /// <summary>
    /// The trait of the bed's tests: scripts/test.sh runs them on their own after every other test, since what they
    /// assert (a leader within 5 s, a command within 2 s) is the cluster's behaviour, not the behaviour of a machine that
    /// also runs four other test assemblies.
    /// </summary>
    public const string Category = "TestBed";
}
