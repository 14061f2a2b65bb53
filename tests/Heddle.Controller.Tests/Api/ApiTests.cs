using System.Net;
using System.Text.Json;
using Heddle.Contracts.Api;
using Heddle.Testing;

namespace Heddle.Controller.Tests.Api;

/// <summary>The user API's answers to bad requests: one clear problem each, and nothing changed.</summary>
public sealed class ApiTests : IAsyncLifetime
{
    private readonly TempDirectory _state = new("heddle-api-");
    private ControllerHost _controller = null!;
    private HeddleApiClient _api = null!;

    private Heddle.Controller.Store.IClusterStore Store => Microsoft.Extensions.DependencyInjection.ServiceProviderServiceExtensions.GetRequiredService<Heddle.Controller.Store.IClusterStore>(_controller.Services);

    public async Task InitializeAsync()
    {
        _controller = await ControllerHost.StartAsync(new ControllerOptions { StateDirectory = _state.Combine("controller") });
        _api = _controller.Client();
    }

    public async Task DisposeAsync()
    {
        _api.Dispose();
        await _controller.DisposeAsync();
        _state.Dispose();
    }

    [Fact]
    public async Task AnyCall_WithoutAToken_Is401WithAProblemThatSaysWhatIsNeeded()
    {
        using var http = _controller.Http();

        using var response = await http.GetAsync("v1/services");

        Assert.Equal(HttpStatusCode.Unauthorized, response.StatusCode);
        Assert.Equal("application/problem+json", response.Content.Headers.ContentType?.MediaType);
        using var problem = JsonDocument.Parse(await response.Content.ReadAsStringAsync());
        Assert.Equal(ProblemTypes.Unauthorized, problem.RootElement.GetProperty("type").GetString());
        Assert.Contains("Authorization: Bearer", problem.RootElement.GetProperty("detail").GetString());
    }

    [Fact]
    public async Task AnyCall_WithAWrongToken_IsRefusedWithOneSentence()
    {
        using var wrong = _controller.Client("not-the-token-but-long-enough-to-be-looked-up-0000");

        var e = await Assert.ThrowsAsync<HeddleApiException>(() => wrong.ListNodesAsync());

        Assert.Equal(HttpStatusCode.Unauthorized, e.Status);
        Assert.StartsWith("the token was not accepted", e.Message);
    }

    [Fact]
    public async Task JoinToken_DoesNotOpenTheUserApi()
    {
        var join = Heddle.Contracts.Trust.JoinString.Parse(await _controller.CreateJoinStringAsync()).Token;
        using var agent = _controller.Client(join);

        var e = await Assert.ThrowsAsync<HeddleApiException>(() => agent.ListServicesAsync());

        Assert.Equal(HttpStatusCode.Unauthorized, e.Status);
    }

    [Fact]
    public async Task UnknownService_Is404WithASuggestion()
    {
        await DeploySampleAsync();

        var e = await Assert.ThrowsAsync<HeddleApiException>(() => _api.GetServiceAsync("helo"));

        Assert.Equal(HttpStatusCode.NotFound, e.Status);
        Assert.Equal("no service 'helo'; did you mean 'hello'?", e.Message);
    }

    [Fact]
    public async Task Deploy_InvalidConfiguration_Is400WithEveryErrorAndChangesNothing()
    {
        var upload = await _api.UploadPackageAsync(SamplePackage.File);

        var e = await Assert.ThrowsAsync<HeddleApiException>(() => _api.DeployAsync(new DeploymentRequest(upload.Sha256,
            "service: hello\nroles:\n  web: { instances: 0, settings: { Greeting: hi } }\n  worker: { instances: 1, settings: { IntervalSecond: \"5\" } }\n", "hello.config.yaml")));

        Assert.Equal(HttpStatusCode.BadRequest, e.Status);
        Assert.Equal(ProblemTypes.InvalidModel, e.Type);
        Assert.Contains("hello.config.yaml:3:21: HD2006: role 'web' instances 0 is outside 1..1000", e.Errors);
        Assert.Contains(e.Errors, x => x.Contains("HD2004") && x.Contains("did you mean 'IntervalSeconds'?"));
        Assert.Empty(await _api.ListServicesAsync());
    }

    [Fact]
    public async Task Deploy_PackageNeverUploaded_Is400()
    {
        var e = await Assert.ThrowsAsync<HeddleApiException>(() => _api.DeployAsync(new DeploymentRequest(new string('a', 64), "service: x\n")));

        Assert.Equal(ProblemTypes.PackageMissing, e.Type);
    }

    [Fact]
    public async Task Upload_ContentThatDoesNotMatchItsHash_IsRefusedAndNotKept()
    {
        using var http = _controller.Http();
        http.DefaultRequestHeaders.Authorization = new("Bearer", _controller.ApiToken);

        using var response = await http.PutAsync($"v1/packages/{new string('b', 64)}", new ByteArrayContent("not the package"u8.ToArray()));

        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        Assert.Contains(ProblemTypes.HashMismatch, await response.Content.ReadAsStringAsync());
        Assert.Empty(Directory.EnumerateFiles(_state.Combine("controller", "blobs")));
    }

    [Fact]
    public async Task Upload_HostilePackage_IsRefusedWithItsCodes()
    {
        var hostile = _state.Combine("hostile.hpkg");
        using (var zip = new System.IO.Compression.ZipArchive(File.Create(hostile), System.IO.Compression.ZipArchiveMode.Create))
        {
            using var entry = zip.CreateEntry("../escape").Open();
            entry.Write("x"u8);
        }

        var e = await Assert.ThrowsAsync<HeddleApiException>(() => _api.UploadPackageAsync(hostile));

        Assert.Equal(ProblemTypes.InvalidPackage, e.Type);
        Assert.Contains(e.Errors, x => x.Contains("HD3002"));
        Assert.Empty(Directory.EnumerateFiles(_state.Combine("controller", "blobs")));
    }

    [Fact]
    public async Task Deploy_IsDurableBeforeItIsAnswered()
    {
        var accepted = await DeploySampleAsync();

        await _controller.DisposeAsync();
        _controller = await ControllerHost.StartAsync(new ControllerOptions { StateDirectory = _state.Combine("controller") });
        using var api = _controller.Client();

        var service = await api.GetServiceAsync("hello");
        Assert.Equal((accepted.Revision, accepted.PackageSha256), (service.Revision, service.PackageSha256));
        Assert.Equal(4, service.DesiredInstances);
    }

    [Fact]
    public void TheAdminTokenAndTheCaKey_AreForTheOwnerOnly_AndTheStoreKeepsNoTokenInClear()
    {
        Assert.DoesNotContain(_controller.ApiToken, System.Text.Encoding.Latin1.GetString(File.ReadAllBytes(_state.Combine("controller", "cluster.db"))));
        foreach (var name in new[] { "api-token", "ca.key" })
        {
            Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(_state.Combine("controller", name)));
        }

        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute, File.GetUnixFileMode(_state.Combine("controller")));
    }

    [Fact]
    public async Task Deploy_ThirtyTwoNewServicesAtOnce_AreEachAcceptedWithAVipOfTheirOwn()
    {
        using var work = new TempDirectory("heddle-concurrent-");
        var names = Enumerable.Range(0, 32).Select(i => $"svc{i:00}").ToList();
        var uploads = new Dictionary<string, string>();
        foreach (var name in names)
        {
            uploads[name] = (await _api.UploadPackageAsync(TestPackages.Build(work, name, $$"""
                name: {{name}}
                roles:
                  web:
                    entryPoint: { command: /bin/sh, args: ["-c", "exec sleep 600"] }
                    size: { cores: 1, memoryMiB: 64 }
                    endpoints:
                      http: { kind: input, protocol: tcp, port: 80 }
                """))).Sha256;
        }

        // As a CI system deploying several services at once: each picks the first free VIP and uid, which they share.
        var accepted = await Task.WhenAll(names.Select(name => _api.DeployAsync(new DeploymentRequest(uploads[name], $"service: {name}\nroles:\n  web: {{ instances: 1 }}\n"))));

        Assert.Equal(names, accepted.Select(a => a.Service).Order(StringComparer.Ordinal));
        var services = await _api.ListServicesAsync();
        Assert.Equal(32, services.Select(s => s.Vip).Where(v => v is not null).Distinct().Count());
        Assert.Equal(32, Store.ListServices().Select(s => s.Uid).Distinct().Count());
    }

    [Fact]
    public async Task Deploy_OneNewServiceEightTimesAtOnce_MakesOneServiceWithRevisionsOneToEight_NoneRefused()
    {
        using var work = new TempDirectory("heddle-concurrent-");
        var upload = await _api.UploadPackageAsync(TestPackages.Build(work, "same", """
            name: same
            roles:
              web:
                entryPoint: { command: /bin/sh, args: ["-c", "exec sleep 600"] }
                size: { cores: 1, memoryMiB: 64 }
                endpoints:
                  http: { kind: input, protocol: tcp, port: 80 }
            """));

        // Each waits for the change before it to commit: none makes a second service of the name, none is refused.
        var accepted = await Task.WhenAll(Enumerable.Range(1, 8).Select(n => _api.DeployAsync(new DeploymentRequest(upload.Sha256, $"service: same\nroles:\n  web: {{ instances: {n} }}\n"))));

        Assert.Equal([1L, 2, 3, 4, 5, 6, 7, 8], accepted.Select(a => a.Revision).Order());
        Assert.All(accepted, a => Assert.Equal("same", a.Deployment));
        Assert.Equal(["same"], Store.ListServices().Select(s => s.Name));
    }

    private async Task<DeploymentAccepted> DeploySampleAsync()
    {
        var upload = await _api.UploadPackageAsync(SamplePackage.File);
        return await _api.DeployAsync(new DeploymentRequest(upload.Sha256, File.ReadAllText(SamplePackage.ConfigurationPath)));
    }
}
