using System.Net;
using Heddle.Contracts.Api;
using Heddle.Controller.HostRollouts;
using Heddle.Controller.Store;
using Heddle.Testing;
using Microsoft.Extensions.DependencyInjection;

namespace Heddle.Controller.Tests.Machines;

/// <summary>
/// /v1/hostrollout on a real controller: admin only; bad input (an unknown image, no machine on a host image, a bad
/// --max-parallel, a second rollout while one runs) is refused with a sentence and changes nothing; a rollout is
/// started, paused, resumed and rolled back, and the leader walks it (the nodes here are records the test writes: no
/// agent reboots, so the forward walk waits at the reboot, and the rollback finds the node on its previous image).
/// </summary>
public sealed class HostRolloutApiTests : IAsyncLifetime
{
    private readonly TempDirectory _state = new("heddle-hostrollout-");
    private ControllerHost _controller = null!;
    private HeddleApiClient _api = null!;

    public async Task InitializeAsync()
    {
        _controller = await ControllerHost.StartAsync(new ControllerOptions
        {
            StateDirectory = _state.Combine("controller"), BootJoinInterval = TimeSpan.Zero, NodeTimeout = TimeSpan.FromMinutes(10),
            HostRollout = HostRolloutTiming.Default with { HealthStable = TimeSpan.Zero },
        });
        _api = _controller.Client();
    }

    public async Task DisposeAsync()
    {
        _api.Dispose();
        await _controller.DisposeAsync();
        _state.Dispose();
    }

    private async Task ImagesAsync()
    {
        for (byte seed = 1; seed <= 2; seed++)
        {
            var kernel = new byte[4096];
            kernel.AsSpan().Fill(seed);
            "HdrS"u8.CopyTo(kernel.AsSpan(0x202));
            byte[] initrd = [.. "070701"u8, .. Enumerable.Repeat(seed, 200)];
            var k = await _api.UploadHostImagePartAsync(Write($"kernel-{seed}", kernel), HostImagePart.Kernel);
            var i = await _api.UploadHostImagePartAsync(Write($"initrd-{seed}", initrd), HostImagePart.Initrd);
            await _api.AddHostImageAsync(new HostImageAddRequest($"bookworm-{seed}", k.Sha256, i.Sha256));
        }
    }

    /// <summary>A machine on bookworm-1 whose node has joined (its record as the agent's Hello writes it).</summary>
    private async Task NodeAsync(string name, string mac)
    {
        await _api.AddMachineAsync(new MachineAddRequest(mac, name, "rack-1", HostImage: "bookworm-1"));
        await _controller.Services.GetRequiredService<IClusterStore>().PutNodeAsync(new NodeRecord
        {
            Name = name, Address = "198.18.0.10", FaultDomain = "rack-1", Labels = new Dictionary<string, string>(), MemoryMiB = 1024, Cores = [[0]],
            Condition = NodeCondition.Ready, LastSeen = DateTimeOffset.UtcNow, HostImage = "bookworm-1",
        });
    }

    private string Write(string name, byte[] bytes)
    {
        var path = _state.Combine(name);
        File.WriteAllBytes(path, bytes);
        return path;
    }

    [Fact]
    public async Task BadInput_IsRefusedWithASentence_AndChangesNothing()
    {
        using var tenant = _controller.Client((await _api.CreateTokenAsync(new TokenCreateRequest(Tenant: "alice"))).Token);
        var forbidden = await Assert.ThrowsAsync<HeddleApiException>(() => tenant.StartHostRolloutAsync(new HostRolloutRequest("bookworm-1")));
        var none = await Assert.ThrowsAsync<HeddleApiException>(() => _api.GetHostRolloutAsync());
        var noPause = await Assert.ThrowsAsync<HeddleApiException>(() => _api.HostRolloutActionAsync("pause"));
        var unknownImage = await Assert.ThrowsAsync<HeddleApiException>(() => _api.StartHostRolloutAsync(new HostRolloutRequest("bookworm-9")));
        await ImagesAsync();
        var noMachines = await Assert.ThrowsAsync<HeddleApiException>(() => _api.StartHostRolloutAsync(new HostRolloutRequest("bookworm-2")));
        await NodeAsync("m1", "52:54:00:00:00:01");
        var badParallel = await Assert.ThrowsAsync<HeddleApiException>(() => _api.StartHostRolloutAsync(new HostRolloutRequest("bookworm-2", MaxParallel: 0)));
        var badAction = await Assert.ThrowsAsync<HeddleApiException>(() => _api.HostRolloutActionAsync("explode"));

        Assert.Equal(HttpStatusCode.Forbidden, forbidden.Status);
        Assert.Equal((HttpStatusCode.NotFound, "there has been no host rollout: 'heddle hostimage rollout IMAGE' starts one"), (none.Status, none.Message));
        Assert.Equal(HttpStatusCode.Conflict, noPause.Status);
        Assert.Equal("no host rollout is in progress; nothing to pause", noPause.Message);
        Assert.Equal((HttpStatusCode.NotFound, "no host image 'bookworm-9'; there are none: 'heddle hostimage build NAME' makes one; nothing was changed"), (unknownImage.Status, unknownImage.Message));
        Assert.Equal(HttpStatusCode.Conflict, noMachines.Status);
        Assert.StartsWith("no machine boots a host image (0 machine(s) registered)", noMachines.Message);
        Assert.Equal((HttpStatusCode.BadRequest, "--max-parallel 0 is not one: give a number from 1 to 100; nothing was changed"), (badParallel.Status, badParallel.Message));
        Assert.Equal(HttpStatusCode.NotFound, badAction.Status);
        Assert.Equal(HttpStatusCode.NotFound, (await Assert.ThrowsAsync<HeddleApiException>(() => _api.GetHostRolloutAsync())).Status);
        Assert.Equal("bookworm-1", Assert.Single(await _api.ListMachinesAsync()).HostImage);
    }

    [Fact]
    public async Task Rollout_Started_RefusesASecond_PausesResumes_AndRollsBackToThePreviousImage()
    {
        await ImagesAsync();
        await NodeAsync("m1", "52:54:00:00:00:01");

        var started = await _api.StartHostRolloutAsync(new HostRolloutRequest("bookworm-2"));
        Assert.Equal(("bookworm-2", "Running", 1), (started.Image, started.Phase, started.MaxParallel));
        Assert.Equal(["m1"], started.Nodes.Select(n => n.Node));
        var second = await Assert.ThrowsAsync<HeddleApiException>(() => _api.StartHostRolloutAsync(new HostRolloutRequest("bookworm-1")));
        Assert.Equal(HttpStatusCode.Conflict, second.Status);
        Assert.StartsWith("a host rollout to bookworm-2 is Running (0 of 1 node(s) done): wait for it to end", second.Message);

        // The leader walks it: m1 is set to the new image and drained (it runs nothing), then told to reboot; no agent does here.
        await Poll.UntilAsync(() => _api.GetHostRolloutAsync(), s => s.Nodes[0].Stage == "Rebooting", TimeSpan.FromSeconds(30), "m1 told to reboot");
        Assert.Equal("bookworm-2", Assert.Single(await _api.ListMachinesAsync()).HostImage);

        Assert.Equal("Paused", (await _api.HostRolloutActionAsync("pause")).Phase);
        Assert.Equal(HttpStatusCode.Conflict, (await Assert.ThrowsAsync<HeddleApiException>(() => _api.HostRolloutActionAsync("pause"))).Status);
        Assert.Equal("Running", (await _api.HostRolloutActionAsync("resume")).Phase);
        Assert.Equal("RollingBack", (await _api.HostRolloutActionAsync("rollback")).Phase);

        var done = await Poll.UntilAsync(() => _api.GetHostRolloutAsync(), s => s.Phase == "Done", TimeSpan.FromSeconds(30), "the rollback done");
        Assert.True(done.RollingBack);
        Assert.Equal("bookworm-1", Assert.Single(await _api.ListMachinesAsync()).HostImage);
        var events = (await _api.ListEventsAsync()).Select(e => e.Kind).ToList();
        Assert.Contains(nameof(EventKind.HostRolloutStarted), events);
        Assert.Contains(nameof(EventKind.HostNodeRebooting), events);
        Assert.Contains(nameof(EventKind.HostRolloutPaused), events);
        Assert.Contains(nameof(EventKind.HostRolloutRolledBack), events);
        // Ended: a new one may start.
        Assert.Equal("Running", (await _api.StartHostRolloutAsync(new HostRolloutRequest("bookworm-2"))).Phase);
    }
}
