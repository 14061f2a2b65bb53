using System.Net;
using System.Net.Security;
using System.Net.Sockets;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using Heddle.Contracts.Trust;
using Heddle.Controller.Hosting;
using Xunit;

namespace Heddle.Controller.Tests.Hosting;

public sealed class TlsBufferReleaseTests
{
    private const long ReleaseBuffers = 0x10; // SSL_MODE_RELEASE_BUFFERS

    [Fact]
    public void ThisRuntime_LetsTheControllerReachOpenSsl()
    {
        // If a runtime upgrade renames SslStream's handle, every idle agent connection grows by OpenSSL's two record
        // buffers again: this is where that shows, not in a benchmark months later.
        Assert.True(TlsBufferRelease.Supported, "SslStream's OpenSSL handle is not reachable on this runtime");
    }

    [Fact]
    public async Task AnAuthenticatedConnection_GetsTheMode_AndStillCarriesDataBothWays()
    {
        using var certificate = SelfSigned();
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        using var client = new TcpClient();
        var accepting = listener.AcceptTcpClientAsync();
        await client.ConnectAsync(IPAddress.Loopback, ((IPEndPoint)listener.LocalEndpoint).Port);
        using var accepted = await accepting;
        await using var server = new SslStream(accepted.GetStream());
        await using var tls = new SslStream(client.GetStream());
        await Task.WhenAll(
            server.AuthenticateAsServerAsync(new SslServerAuthenticationOptions { ServerCertificate = certificate }),
            tls.AuthenticateAsClientAsync(new SslClientAuthenticationOptions { TargetHost = "localhost", RemoteCertificateValidationCallback = (_, _, _, _) => true }));

        // .NET leaves the mode unset: without this the test could not tell whether anything was set.
        Assert.Equal(0, TlsBufferRelease.Mode(server, 0)!.Value & ReleaseBuffers);

        Assert.True(TlsBufferRelease.TryApply(server));
        Assert.Equal(ReleaseBuffers, TlsBufferRelease.Mode(server, 0)!.Value & ReleaseBuffers);

        // Several records each way, with the buffers freed and taken again between them.
        var sent = RandomNumberGenerator.GetBytes(200_000);
        for (var round = 0; round < 3; round++)
        {
            var echo = EchoAsync(server, sent.Length);
            await tls.WriteAsync(sent);
            var back = new byte[sent.Length];
            await tls.ReadExactlyAsync(back);
            await echo;
            Assert.Equal(sent, back);
        }
    }

    private static async Task EchoAsync(Stream stream, int length)
    {
        var buffer = new byte[length];
        await stream.ReadExactlyAsync(buffer);
        await stream.WriteAsync(buffer);
    }

    private static X509Certificate2 SelfSigned()
    {
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var request = new CertificateRequest("CN=localhost", key, HashAlgorithmName.SHA256);
        return ClusterTrust.WithUsableKey(request.CreateSelfSigned(DateTimeOffset.UtcNow.AddMinutes(-1), DateTimeOffset.UtcNow.AddDays(1)));
    }
}
