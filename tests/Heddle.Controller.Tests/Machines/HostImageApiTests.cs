using System.Net;
using System.Security.Cryptography;
using Heddle.Contracts.Api;
using Heddle.Testing;

namespace Heddle.Controller.Tests.Machines;

/// <summary>
/// /v1/hostimages on a real controller: parts are uploaded as blobs and checked for what they claim to be, then named;
/// a machine set to an image gets it in its boot decision and the boot token may fetch its parts (and no other blob);
/// an image a machine is set to cannot be deleted; bad input is refused with a sentence and changes nothing.
/// </summary>
public sealed class HostImageApiTests : IAsyncLifetime
{
    private const string Mac = "52:54:00:12:34:56";
    private readonly TempDirectory _state = new("heddle-hostimages-");
    private ControllerHost _controller = null!;
    private HeddleApiClient _api = null!;

    public async Task InitializeAsync()
    {
        _controller = await ControllerHost.StartAsync(new ControllerOptions { StateDirectory = _state.Combine("controller"), BootJoinInterval = TimeSpan.Zero });
        _api = _controller.Client();
    }

    public async Task DisposeAsync()
    {
        _api.Dispose();
        await _controller.DisposeAsync();
        _state.Dispose();
    }

    [Fact]
    public async Task Build_AMachineSetToIt_BootsItsParts_AndDeleteWaitsUntilNoMachineIsSetToIt()
    {
        var (kernel, initrd) = await UploadAsync(Kernel(1), Initrd(1));

        var added = await _api.AddHostImageAsync(new HostImageAddRequest("bookworm-1", kernel.Sha256, initrd.Sha256, "6.1.0-57-cloud-amd64"));
        var again = await _api.AddHostImageAsync(new HostImageAddRequest("bookworm-1", kernel.Sha256, initrd.Sha256, "6.1.0-57-cloud-amd64"));
        var machine = await _api.AddMachineAsync(new MachineAddRequest(Mac, "m1", "rack-1", HostImage: "bookworm-1"));
        using var boot = _controller.Client((await _api.CreateTokenAsync(new TokenCreateRequest(Boot: true))).Token);
        var decision = await boot.DecideBootAsync(Mac);

        Assert.Equal(("bookworm-1", false, true), (added.Image.Name, added.AlreadyPresent, again.AlreadyPresent));
        Assert.Equal("bookworm-1", machine.HostImage);
        Assert.Equal(new BootImage("bookworm-1", kernel.Sha256, initrd.Sha256), decision.Image);
        using var fetched = new MemoryStream();
        await boot.DownloadBootImagePartAsync(kernel.Sha256, fetched);
        Assert.Equal(Kernel(1), fetched.ToArray());
        var listed = Assert.Single(await _api.ListHostImagesAsync());
        Assert.Equal(["m1"], listed.Machines);
        Assert.Equal(kernel.Bytes + initrd.Bytes, listed.KernelBytes + listed.InitrdBytes);
        var inUse = await Assert.ThrowsAsync<HeddleApiException>(() => _api.DeleteHostImageAsync("bookworm-1"));
        Assert.Equal(HttpStatusCode.Conflict, inUse.Status);
        Assert.StartsWith("host image bookworm-1 is the one machine m1 is set to boot", inUse.Message);
        Assert.Single(await _api.ListHostImagesAsync());

        await _api.RemoveMachineAsync("m1");
        await _api.DeleteHostImageAsync("bookworm-1");

        Assert.Empty(await _api.ListHostImagesAsync());
        Assert.False(File.Exists(_state.Combine("controller", "blobs", kernel.Sha256)), "a part nothing names is deleted with its image");
        var gone = await Assert.ThrowsAsync<HeddleApiException>(() => boot.DownloadBootImagePartAsync(kernel.Sha256, Stream.Null));
        Assert.Equal(HttpStatusCode.NotFound, gone.Status);
    }

    [Fact]
    public async Task BadInput_IsRefusedWithASentence_AndChangesNothing()
    {
        var kernelFile = Write("kernel", Kernel(2));
        var notAKernel = await Assert.ThrowsAsync<HeddleApiException>(() => _api.UploadHostImagePartAsync(Write("initrd-as-kernel", Initrd(2)), HostImagePart.Kernel));
        var notAnInitrd = await Assert.ThrowsAsync<HeddleApiException>(() => _api.UploadHostImagePartAsync(kernelFile, HostImagePart.Initrd));
        var kernel = await _api.UploadHostImagePartAsync(kernelFile, HostImagePart.Kernel);
        var missingInitrd = await Assert.ThrowsAsync<HeddleApiException>(() => _api.AddHostImageAsync(new HostImageAddRequest("bookworm-1", kernel.Sha256, new string('a', 64))));
        var badName = await Assert.ThrowsAsync<HeddleApiException>(() => _api.AddHostImageAsync(new HostImageAddRequest("Bookworm 1", kernel.Sha256, "nope")));
        var unknownImage = await Assert.ThrowsAsync<HeddleApiException>(() => _api.AddMachineAsync(new MachineAddRequest(Mac, "m1", "rack-1", HostImage: "bookworm-9")));
        var unknownDelete = await Assert.ThrowsAsync<HeddleApiException>(() => _api.DeleteHostImageAsync("bookworm-9"));

        Assert.Equal((HttpStatusCode.BadRequest, ProblemTypes.InvalidImage), (notAKernel.Status, notAKernel.Type));
        Assert.StartsWith("the kernel is not a Linux x86 kernel image", notAKernel.Message);
        Assert.StartsWith("the initramfs is not a newc cpio archive", notAnInitrd.Message);
        Assert.Contains($"initrd: no blob aaaaaaaaaaaa here; upload it first", missingInitrd.Message);
        Assert.EndsWith("nothing was changed", missingInitrd.Message);
        Assert.Contains("'Bookworm 1' is not a host image name", badName.Message);
        Assert.Contains("initrd: 'nope' is not a lower-case hex SHA-256", badName.Message);
        Assert.Equal(HttpStatusCode.BadRequest, unknownImage.Status);
        Assert.StartsWith("there is no host image 'bookworm-9' (there are none", unknownImage.Message);
        Assert.Equal(HttpStatusCode.NotFound, unknownDelete.Status);
        Assert.Empty(await _api.ListHostImagesAsync());
        Assert.Empty(await _api.ListMachinesAsync());
        Assert.False(File.Exists(_state.Combine("controller", "blobs", Sha256(Initrd(2)))), "a refused part is not kept");
    }

    [Fact]
    public async Task AName_IsNeverRepointed()
    {
        var (kernel, initrd) = await UploadAsync(Kernel(3), Initrd(3));
        var (_, other) = await UploadAsync(Kernel(3), Initrd(4));
        await _api.AddHostImageAsync(new HostImageAddRequest("bookworm-1", kernel.Sha256, initrd.Sha256));

        var taken = await Assert.ThrowsAsync<HeddleApiException>(() => _api.AddHostImageAsync(new HostImageAddRequest("bookworm-1", kernel.Sha256, other.Sha256)));

        Assert.Equal(HttpStatusCode.Conflict, taken.Status);
        Assert.StartsWith("host image bookworm-1 already holds other parts", taken.Message);
        Assert.Equal(initrd.Sha256, Assert.Single(await _api.ListHostImagesAsync()).InitrdSha256);
    }

    [Fact]
    public async Task HostImages_AreAdminOnly_AndABootTokenFetchesNoOtherBlob()
    {
        using var tenant = _controller.Client((await _api.CreateTokenAsync(new TokenCreateRequest(Tenant: "alice"))).Token);
        using var boot = _controller.Client((await _api.CreateTokenAsync(new TokenCreateRequest(Boot: true))).Token);
        var kernel = await _api.UploadHostImagePartAsync(Write("kernel", Kernel(5)), HostImagePart.Kernel);

        Assert.Equal(HttpStatusCode.Forbidden, (await Assert.ThrowsAsync<HeddleApiException>(() => tenant.ListHostImagesAsync())).Status);
        Assert.Equal(HttpStatusCode.Forbidden, (await Assert.ThrowsAsync<HeddleApiException>(() => tenant.UploadHostImagePartAsync(Write("k2", Kernel(6)), HostImagePart.Kernel))).Status);
        Assert.Equal(HttpStatusCode.Unauthorized, (await Assert.ThrowsAsync<HeddleApiException>(() => boot.ListHostImagesAsync())).Status);
        // Uploaded but in no image: not a host image part yet, so not the boot service's to fetch.
        Assert.Equal(HttpStatusCode.NotFound, (await Assert.ThrowsAsync<HeddleApiException>(() => boot.DownloadBootImagePartAsync(kernel.Sha256, Stream.Null))).Status);
    }

    [Fact]
    public async Task ADisklessMachineBootingAgain_GetsItsImageAndAJoinString_ThatEnrolsItsNodeAgain_RevokingTheCertificateItLost()
    {
        var (kernel, initrd) = await UploadAsync(Kernel(1), Initrd(1));
        await _api.AddHostImageAsync(new HostImageAddRequest("bookworm-1", kernel.Sha256, initrd.Sha256));
        await _api.AddMachineAsync(new MachineAddRequest(Mac, "m1", "rack-1", HostImage: "bookworm-1"));
        await _api.AddMachineAsync(new MachineAddRequest("52:54:00:12:34:57", "m2", "rack-2"));
        using var channel = Grpc.Net.Client.GrpcChannel.ForAddress(_controller.AgentUrl,
            new Grpc.Net.Client.GrpcChannelOptions { HttpHandler = Heddle.Contracts.Trust.ClusterTrust.Handler(_controller.CaCertificate) });
        var agents = new Heddle.Contracts.Agents.AgentService.AgentServiceClient(channel);
        async Task<string> EnrolAsync(string mac, string node) =>
            (await agents.EnrollAsync(MachineApiTests.Request(Heddle.Contracts.Trust.JoinString.Parse((await _api.DecideBootAsync(mac)).JoinString!).Token, node))).Certificate;
        using var first = System.Security.Cryptography.X509Certificates.X509Certificate2.CreateFromPem(await EnrolAsync(Mac, "m1"));
        await EnrolAsync("52:54:00:12:34:57", "m2");

        // Powered off and on: its memory, certificate and agent are gone; its card asks again.
        var again = await _api.DecideBootAsync(Mac);
        var installed = await _api.DecideBootAsync("52:54:00:12:34:57");
        using var second = System.Security.Cryptography.X509Certificates.X509Certificate2.CreateFromPem(
            (await agents.EnrollAsync(MachineApiTests.Request(Heddle.Contracts.Trust.JoinString.Parse(again.JoinString!).Token, "m1"))).Certificate);

        Assert.Equal((BootAction.Install, "bookworm-1"), (again.Action, again.Image?.Name));
        Assert.Contains("booted again", again.Message);
        Assert.Equal((BootAction.BootLocal, null), (installed.Action, installed.JoinString)); // a machine with a system of its own is never re-imaged by a boot
        var trust = Microsoft.Extensions.DependencyInjection.ServiceProviderServiceExtensions.GetRequiredService<Heddle.Controller.Trust.NodeCertificates>(_controller.Services);
        Assert.Null(trust.NodeOf(first)); // the certificate the machine lost proves nothing any more
        Assert.Equal("m1", trust.NodeOf(second));
        var enrolled = (await _api.ListEventsAsync()).Where(e => e.Kind == "NodeEnrolled" && e.Subject == "m1").ToList();
        Assert.Equal(2, enrolled.Count);
        Assert.Contains(enrolled, e => e.Message.Contains("booted host image bookworm-1 again", StringComparison.Ordinal));

        // A shared join string still cannot take the name, and the machine's own, once used, not again.
        var shared = Heddle.Contracts.Trust.JoinString.Parse(await _controller.CreateJoinStringAsync()).Token;
        var taken = await Assert.ThrowsAsync<Grpc.Core.RpcException>(async () => await agents.EnrollAsync(MachineApiTests.Request(shared, "m1")));
        Assert.Contains("is a registered machine's", taken.Status.Detail);
        var used = await Assert.ThrowsAsync<Grpc.Core.RpcException>(async () =>
            await agents.EnrollAsync(MachineApiTests.Request(Heddle.Contracts.Trust.JoinString.Parse(again.JoinString!).Token, "m1")));
        Assert.Equal(Grpc.Core.StatusCode.Unauthenticated, used.StatusCode);
    }

    [Fact]
    public async Task SetImage_TheMachinesNextBootGetsTheNewImage_BadInputChangesNothing()
    {
        var (kernel, initrd) = await UploadAsync(Kernel(1), Initrd(1));
        var (kernel2, initrd2) = await UploadAsync(Kernel(2), Initrd(2));
        await _api.AddHostImageAsync(new HostImageAddRequest("bookworm-1", kernel.Sha256, initrd.Sha256));
        await _api.AddHostImageAsync(new HostImageAddRequest("bookworm-2", kernel2.Sha256, initrd2.Sha256));
        await _api.AddMachineAsync(new MachineAddRequest(Mac, "m1", "rack-1", HostImage: "bookworm-1"));

        var unknownImage = await Assert.ThrowsAsync<HeddleApiException>(() => _api.SetMachineHostImageAsync("m1", "bookworm-9"));
        var unknownMachine = await Assert.ThrowsAsync<HeddleApiException>(() => _api.SetMachineHostImageAsync("m9", "bookworm-2"));
        Assert.Equal((HttpStatusCode.BadRequest, HttpStatusCode.NotFound), (unknownImage.Status, unknownMachine.Status));
        Assert.Contains("there is no host image 'bookworm-9' (host images: bookworm-1, bookworm-2)", unknownImage.Message);
        Assert.Equal("bookworm-1", (await _api.DecideBootAsync(Mac)).Image?.Name);

        var set = await _api.SetMachineHostImageAsync("m1", "bookworm-2");

        Assert.Equal("bookworm-2", set.HostImage);
        Assert.Equal(new BootImage("bookworm-2", kernel2.Sha256, initrd2.Sha256), (await _api.DecideBootAsync(Mac)).Image);
        Assert.Contains(await _api.ListEventsAsync(), e => e.Kind == "MachineHostImageSet" && e.Message.Contains("bookworm-2 (was bookworm-1)", StringComparison.Ordinal));
        await _api.DeleteHostImageAsync("bookworm-1"); // no machine is set to it any more
        Assert.Equal(HttpStatusCode.Conflict, (await Assert.ThrowsAsync<HeddleApiException>(() => _api.DeleteHostImageAsync("bookworm-2"))).Status);
    }

    private async Task<(HostImageBlobUploaded Kernel, HostImageBlobUploaded Initrd)> UploadAsync(byte[] kernel, byte[] initrd) =>
        (await _api.UploadHostImagePartAsync(Write($"kernel-{Sha256(kernel)}", kernel), HostImagePart.Kernel),
            await _api.UploadHostImagePartAsync(Write($"initrd-{Sha256(initrd)}", initrd), HostImagePart.Initrd));

    /// <summary>Enough of an x86 bzImage to pass for one: the boot protocol's "HdrS" at 0x202.</summary>
    private static byte[] Kernel(byte seed)
    {
        var bytes = new byte[4096];
        bytes.AsSpan().Fill(seed);
        "HdrS"u8.CopyTo(bytes.AsSpan(0x202));
        return bytes;
    }

    private static byte[] Initrd(byte seed) => [.. "070701"u8, .. Enumerable.Repeat(seed, 200)];

    private string Write(string name, byte[] bytes)
    {
        File.WriteAllBytes(_state.Combine(name), bytes);
        return _state.Combine(name);
    }

    private static string Sha256(byte[] bytes) => Convert.ToHexStringLower(SHA256.HashData(bytes));
}
