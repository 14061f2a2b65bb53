using System.Text.Json;
using Heddle.Contracts.Api;
using Heddle.Controller.Api;
using Heddle.Controller.Store;
using Heddle.Testing;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.Json;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;
using Microsoft.Extensions.Time.Testing;
using Xunit;

namespace Heddle.Controller.Tests.Api;

/// <summary>
/// GET /v1/instances is written from JSON kept per service: what a client reads must be what serialising the listing
/// afresh gives, after every kind of change (a report, a placement, a node's new address, a service gone), never a
/// part kept from before it.
/// </summary>
public sealed class InstanceListingTests : IDisposable
{
    private readonly FakeTimeProvider _time = new(new DateTimeOffset(2026, 12, 7, 8, 0, 0, TimeSpan.Zero));
    private readonly IClusterStore _store;
    private readonly IOptions<JsonOptions> _json;
    private readonly InstanceListing _listing;

    public InstanceListingTests()
    {
        _store = KvStores.InMemory(_time);
        var services = new ServiceCollection();
        services.ConfigureHttpJsonOptions(json => json.SerializerOptions.Converters.Add(new System.Text.Json.Serialization.JsonStringEnumConverter()));
        _json = services.BuildServiceProvider().GetRequiredService<IOptions<JsonOptions>>();
        _listing = new InstanceListing(_json);
    }

    public void Dispose() => _store.Dispose();

    [Fact]
    public async Task EveryService_AfterReportsPlacementsANodeMovingAndADelete_IsWhatSerialisingAfreshGives()
    {
        await NodeAsync("n1", "198.18.0.1");
        await NodeAsync("n2", "198.18.0.2");
        var generations = new Dictionary<string, long>();
        foreach (var service in new[] { "b", "a", "c" })
        {
            Assert.True(await _store.PutDeploymentAsync(new DeploymentWrite(service, "default", 1, new string('a', 64), $"service: {service}", "test", 0)));
            var placed = new List<InstanceRecord>();
            for (var index = 0; index < 3; index++)
            {
                var generation = await _store.NextGenerationAsync();
                generations[$"{service}/{index}"] = generation;
                placed.Add(new InstanceRecord
                {
                    Service = service, Role = "web", Index = index, UpgradeDomain = index, Node = index == 0 ? "n1" : "n2", Cpus = [index], MemoryMiB = 64, Generation = generation, Revision = 1,
                });
            }

            Assert.True(await _store.CommitPlacementAsync(new PlacementCommit(service, _store.GetService(service)!.Version, placed, [])));
        }

        var first = await AllAsync();
        Assert.Equal(["a/web/0", "a/web/1", "a/web/2", "b/web/0", "b/web/1", "b/web/2", "c/web/0", "c/web/1", "c/web/2"], first.Select(i => i.Id));
        Assert.Equal(Afresh(), await AllJsonAsync());

        // A report: that service's part is made again, with the new state, pid and ports.
        Assert.True(await _store.UpdateInstanceStatusAsync(new InstanceReportRecord("n2", "b", "web", 1, generations["b/1"], InstanceState.Ready, null)
        {
            Revision = 1, Pid = 4242, Ports = new Dictionary<string, int> { ["http"] = 20001 },
        }));
        var reported = (await AllAsync()).Single(i => i.Id == "b/web/1");
        Assert.Equal(("Ready", 4242, 20001), (reported.State, reported.Pid, reported.Ports["http"]));
        Assert.Equal(Afresh(), await AllJsonAsync());

        // A node's address changes: every instance on it shows the new one, the others are unchanged.
        await NodeAsync("n1", "198.18.0.11");
        var moved = await AllAsync();
        Assert.All(moved.Where(i => i.Node == "n1"), i => Assert.Equal("198.18.0.11", i.NodeAddress));
        Assert.All(moved.Where(i => i.Node == "n2"), i => Assert.Equal("198.18.0.2", i.NodeAddress));
        Assert.Equal(Afresh(), await AllJsonAsync());

        // One service asked for alone, then a service's instances all gone: it is no longer listed.
        Assert.Equal(["c/web/0", "c/web/1", "c/web/2"], (await ReadAsync(_listing.Json(_store, ["c"]))).Select(i => i.Id));
        Assert.True(await _store.CommitPlacementAsync(new PlacementCommit("a", _store.GetService("a")!.Version, [], [("web", 0), ("web", 1), ("web", 2)])));
        Assert.Equal(["b", "c"], (await AllAsync()).Select(i => i.Service).Distinct());
        Assert.Equal(Afresh(), await AllJsonAsync());
        Assert.Equal("[]", await JsonOfAsync(_listing.Json(_store, ["a"])));
    }

    private async Task NodeAsync(string name, string address) => await _store.PutNodeAsync(new NodeRecord
    {
        Name = name, Address = address, FaultDomain = "fd1", Labels = new Dictionary<string, string>(), MemoryMiB = 1024, Cores = [[0], [1], [2]],
        Condition = NodeCondition.Ready, LastSeen = _time.GetUtcNow(),
    });

    /// <summary>What GET /v1/instances answered before the parts were kept: the whole listing serialised at once.</summary>
    private string Afresh() => JsonSerializer.Serialize(_store.ListPlacedServices().SelectMany(s => InstanceListing.List(_store, s)).ToList(), _json.Value.SerializerOptions);

    private Task<string> AllJsonAsync() => JsonOfAsync(_listing.Json(_store, _store.ListPlacedServices(), everyService: true));

    private async Task<List<InstanceStatus>> AllAsync() => await ReadAsync(_listing.Json(_store, _store.ListPlacedServices(), everyService: true));

    private async Task<List<InstanceStatus>> ReadAsync(IResult result) =>
        JsonSerializer.Deserialize<List<InstanceStatus>>(await JsonOfAsync(result), _json.Value.SerializerOptions)!;

    private static async Task<string> JsonOfAsync(IResult result)
    {
        var context = new DefaultHttpContext();
        using var body = new MemoryStream();
        context.Response.Body = body;
        await result.ExecuteAsync(context);
        Assert.Equal("application/json; charset=utf-8", context.Response.ContentType);
        Assert.Equal(body.Length, context.Response.ContentLength);
        return System.Text.Encoding.UTF8.GetString(body.ToArray());
    }
}
