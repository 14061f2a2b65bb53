using System.Security.Cryptography;
using Heddle.Agent.Packages;
using Heddle.Contracts.Api;
using Heddle.Controller;
using Heddle.Testing;

namespace Heddle.Agent.Tests.Packages;

public sealed class PackageCacheTests
{
    /// <summary>Records the Range header of each request.</summary>
    private sealed class RangeRecorder : DelegatingHandler
    {
        public List<string?> Ranges { get; } = [];

        protected override Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken)
        {
            Ranges.Add(request.Headers.Range?.ToString());
            return base.SendAsync(request, cancellationToken);
        }
    }

    private static async Task<string> UploadSampleAsync(ControllerHost controller)
    {
        using var api = controller.Client();
        return (await api.UploadPackageAsync(SamplePackage.File)).Sha256;
    }

    /// <summary>An HTTP client of the controller's API with the admin token (the package content route; agents use their own port, tested elsewhere).</summary>
    private static HttpClient AgentClient(ControllerHost controller, HttpMessageHandler? handler = null)
    {
        var http = controller.Http(handler);
        http.DefaultRequestHeaders.Authorization = new("Bearer", controller.ApiToken);
        return http;
    }

    [Fact]
    public async Task Get_InterruptedDownload_ResumesWithARangeRequestAndVerifiesTheWhole()
    {
        using var state = new TempDirectory("heddle-cache-");
        await using var controller = await ControllerHost.StartAsync(new ControllerOptions { StateDirectory = state.Combine("controller") });
        var sha256 = await UploadSampleAsync(controller);
        var bytes = await File.ReadAllBytesAsync(SamplePackage.File);
        Directory.CreateDirectory(state.Combine("cache", "downloads"));
        await File.WriteAllBytesAsync(state.Combine("cache", "downloads", sha256 + ".partial"), bytes[..(bytes.Length / 2)]);
        var recorder = new RangeRecorder { InnerHandler = Heddle.Contracts.Trust.ClusterTrust.Handler(controller.CaCertificate) };
        using var http = AgentClient(controller, recorder);
        var cache = new PackageCache(state.Combine("cache"), http);

        var package = await cache.GetAsync(sha256, $"/v1/packages/{sha256}/content", CancellationToken.None);

        Assert.Equal([$"bytes={bytes.Length / 2}-"], recorder.Ranges);
        Assert.True(File.Exists(Path.Combine(package.RoleDirectory("web"), "HelloWeb.dll")));
        Assert.Equal("hello", package.Definition.Name);
        Assert.False(File.Exists(state.Combine("cache", "downloads", sha256 + ".partial")));
    }

    [Fact]
    public async Task Get_CorruptPartialDownload_IsDiscardedAndFetchedAgain()
    {
        using var state = new TempDirectory("heddle-cache-");
        await using var controller = await ControllerHost.StartAsync(new ControllerOptions { StateDirectory = state.Combine("controller") });
        var sha256 = await UploadSampleAsync(controller);
        Directory.CreateDirectory(state.Combine("cache", "downloads"));
        await File.WriteAllBytesAsync(state.Combine("cache", "downloads", sha256 + ".partial"), RandomNumberGenerator.GetBytes(1000));
        using var http = AgentClient(controller);
        var cache = new PackageCache(state.Combine("cache"), http);

        var package = await cache.GetAsync(sha256, $"/v1/packages/{sha256}/content", CancellationToken.None);

        Assert.True(File.Exists(Path.Combine(package.RoleDirectory("worker"), "HelloWorker.dll")));
    }

    [Fact]
    public async Task Evict_RemovesPackagesNoGoalNeeds()
    {
        using var state = new TempDirectory("heddle-cache-");
        await using var controller = await ControllerHost.StartAsync(new ControllerOptions { StateDirectory = state.Combine("controller") });
        var sha256 = await UploadSampleAsync(controller);
        using var http = AgentClient(controller);
        var cache = new PackageCache(state.Combine("cache"), http);
        var package = await cache.GetAsync(sha256, $"/v1/packages/{sha256}/content", CancellationToken.None);

        cache.Evict(new HashSet<string> { sha256 });
        Assert.True(Directory.Exists(package.Directory));
        cache.Evict(new HashSet<string>());

        Assert.False(Directory.Exists(package.Directory));
    }
}
