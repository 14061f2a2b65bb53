using System.Net;
using System.Net.Http.Headers;
using Heddle.Testing;

namespace Heddle.Controller.Tests.Integration;

/// <summary>A huge JSON body is cut off at the door (configurations are small), the controller stays the same process and keeps answering.</summary>
[Collection(nameof(ClusterCollection))]
public sealed class RequestLimitTests
{
    [Fact]
    public async Task AHugeDeploymentBody_Is413_WithoutBufferingIt_AndTheApiKeepsAnswering()
    {
        await using var cluster = await TestCluster.StartAsync(nodes: 1);
        using var http = new HttpClient { BaseAddress = cluster.Controller.ApiUrl, Timeout = TimeSpan.FromSeconds(30) };
        http.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", cluster.Controller.ApiToken);

        // 64 MiB of JSON: a string that never ends before the limit.
        var body = new EndlessJson(64L << 20);
        var status = await body.PostAsync(http, "v1/deployments");

        Assert.Equal(HttpStatusCode.RequestEntityTooLarge, status);
        Assert.True(body.Sent < 32L << 20, $"the server read {body.Sent >> 20} MiB before refusing");
        Assert.Empty(await cluster.Api.ListServicesAsync());
    }
}
