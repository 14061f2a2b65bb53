using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using Grpc.Core;
using Grpc.Net.Client;
using Heddle.Contracts.Agents;
using Heddle.Contracts.Trust;
using Microsoft.Extensions.Logging;

namespace Heddle.Agent.Connection;

/// <summary>
/// This node's proof of who it is: a key it made itself and the certificate the controller signed for it, kept in the
/// state folder (node.key mode 0600, node.crt, ca.crt). Got once by enrolling with a join string — after checking
/// that the controller's CA is the one the string pins, before anything is sent — and renewed at two thirds of its
/// life over mutual TLS.
/// </summary>
public sealed partial class NodeIdentity
{
    private readonly string _directory;
    private readonly TimeProvider _time;
    private volatile X509Certificate2 _certificate;

    private NodeIdentity(string directory, X509Certificate2 ca, X509Certificate2 certificate, TimeProvider time)
    {
        _directory = directory;
        _time = time;
        Ca = ca;
        _certificate = certificate;
    }

    /// <summary>The cluster CA: the only root this agent trusts.</summary>
    public X509Certificate2 Ca { get; }

    /// <summary>The node certificate in force, with its key.</summary>
    public X509Certificate2 Certificate => _certificate;

    /// <summary>
    /// The certificate on disk when it is still valid, else a new one got with the join string. The controller checks
    /// before it enrols the node that it can connect to <paramref name="logPort"/> at the node's address. Validity,
    /// renewal and retry waits run on <paramref name="time"/>, the agent's clock.
    /// </summary>
    public static async Task<NodeIdentity> LoadOrEnrolAsync(AgentOptions options, int logPort, TimeProvider time, ILogger logger, CancellationToken cancellationToken)
    {
        var directory = options.StateDirectory;
        IdentityFiles.Recover(directory); // a renewal a crash interrupted is finished (or dropped) first
        var (certificatePath, keyPath, caPath) = Paths(directory);
        if (File.Exists(certificatePath) && File.Exists(keyPath) && File.Exists(caPath))
        {
            var ca = ClusterTrust.Load(File.ReadAllText(caPath));
            var certificate = ClusterTrust.WithUsableKey(X509Certificate2.CreateFromPemFile(certificatePath, keyPath));
            // A join string given again (as `heddle up` does on every restart) is not used while the certificate is good.
            if (ClusterTrust.NameOf(certificate) == options.NodeName && certificate.NotAfter.ToUniversalTime() > time.GetUtcNow().UtcDateTime)
            {
                return new NodeIdentity(directory, ca, certificate, time);
            }

            if (ClusterTrust.NameOf(certificate) != options.NodeName && options.Join is null)
            {
                throw new InvalidOperationException($"the certificate in {certificatePath} is node {ClusterTrust.NameOf(certificate)}'s, not {options.NodeName}'s; "
                    + "use that name, or enrol this name with --join and a new join string");
            }
        }

        if (options.Join is null)
        {
            throw new InvalidOperationException($"this node has no valid certificate in {directory} yet: give a join string (--join, --join-file or $HEDDLE_JOIN) made with 'heddle token create --join'");
        }

        var (token, pinned) = JoinString.Parse(options.Join);
        // One key for every attempt: a request that timed out may still have been answered, and the controller gives
        // the node's certificate again only to the holder of the key it certified (a new key would find the name taken).
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var delay = TimeSpan.FromMilliseconds(200);
        for (var attempt = 1; ; attempt++)
        {
            // Each controller in turn, until one answers.
            var controller = options.Controllers[(attempt - 1) % options.Controllers.Count];
            try
            {
                return await EnrolAsync(options, logPort, controller, directory, token, pinned, key, time, cancellationToken);
            }
            catch (Exception e) when (Unreachable(e) && attempt < 30 && !cancellationToken.IsCancellationRequested)
            {
                LogEnrolRetry(logger, controller, e.Message, delay.TotalSeconds);
                await Task.Delay(delay, time, cancellationToken);
                delay = TimeSpan.FromTicks(Math.Min(TimeSpan.FromSeconds(3).Ticks, delay.Ticks * 2));
            }
        }
    }

    private static bool Unreachable(Exception e) => e is HttpRequestException or IOException or TaskCanceledException { InnerException: TimeoutException }
        || e is RpcException { StatusCode: StatusCode.Unavailable or StatusCode.Internal or StatusCode.DeadlineExceeded };

    private static async Task<NodeIdentity> EnrolAsync(AgentOptions options, int logPort, Uri controller, string directory, string token, string pinned, ECDsa key, TimeProvider time,
        CancellationToken cancellationToken)
    {
        // The CA certificate is public; it is read without checking the connection, and trusted only if its key is the one the join string pins.
        X509Certificate2 ca;
        using (var open = new HttpClient(new SocketsHttpHandler { UseProxy = false, SslOptions = { RemoteCertificateValidationCallback = (_, _, _, _) => true } })
        {
            DefaultRequestVersion = System.Net.HttpVersion.Version20, DefaultVersionPolicy = HttpVersionPolicy.RequestVersionExact, Timeout = TimeSpan.FromSeconds(5),
        })
        {
            ca = ClusterTrust.Load(await open.GetStringAsync(new Uri(controller, "agent/v1/ca"), cancellationToken));
        }

        var hash = ClusterTrust.PublicKeyHash(ca);
        if (hash != pinned)
        {
            throw new InvalidOperationException($"the controller at {controller} has a CA whose key hash is {hash[..16]}…, not the {pinned[..16]}… the join string names: "
                + "a different cluster, or something in between; nothing was sent to it");
        }

        var request = new CertificateRequest($"CN={options.NodeName}", key, HashAlgorithmName.SHA256).CreateSigningRequestPem();
        // DisposeHttpClient: the handler, and with it the connection, goes with the channel (gRPC keeps a handler it was
        // given open by default, and the controller would hold each enrolled node's idle connection for minutes).
        using var channel = GrpcChannel.ForAddress(controller, new GrpcChannelOptions { HttpHandler = ClusterTrust.Handler(ca), DisposeHttpClient = true });
        // The deadline stays on the system clock: gRPC compares it with its own wall clock, not the agent's.
        var reply = await new AgentService.AgentServiceClient(channel).EnrollAsync(
            new EnrollRequest { JoinToken = token, NodeName = options.NodeName, SigningRequest = request, Address = options.Address, LogPort = logPort }, deadline: DateTime.UtcNow.AddSeconds(10), cancellationToken: cancellationToken);
        var identity = new NodeIdentity(directory, ca, Accept(reply, key, ca, options.NodeName), time);
        identity.Save(key, reply);
        return identity;
    }

    /// <summary>When to renew: two thirds into the certificate's life.</summary>
    public DateTimeOffset RenewAt
    {
        get
        {
            var from = new DateTimeOffset(Certificate.NotBefore.ToUniversalTime());
            var to = new DateTimeOffset(Certificate.NotAfter.ToUniversalTime());
            return from + ((to - from) * 2 / 3);
        }
    }

    /// <summary>Renews the certificate (a new key too) over the mutual-TLS channel, whenever it is due, until stopped.</summary>
    public async Task RenewAsync(Func<AgentService.AgentServiceClient> client, ILogger logger, CancellationToken cancellationToken)
    {
        while (!cancellationToken.IsCancellationRequested)
        {
            var wait = RenewAt - _time.GetUtcNow();
            try
            {
                await Task.Delay(wait < TimeSpan.Zero ? TimeSpan.Zero : wait > TimeSpan.FromHours(1) ? TimeSpan.FromHours(1) : wait, _time, cancellationToken);
                if (_time.GetUtcNow() < RenewAt)
                {
                    continue;
                }

                using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
                var request = new CertificateRequest($"CN={ClusterTrust.NameOf(Certificate)}", key, HashAlgorithmName.SHA256).CreateSigningRequestPem();
                var reply = await client().RenewAsync(new RenewRequest { SigningRequest = request }, cancellationToken: cancellationToken);
                var renewed = Accept(reply, key, Ca, ClusterTrust.NameOf(Certificate)!);
                Save(key, reply);
                _certificate = renewed;
                LogRenewed(logger, renewed.SerialNumber, renewed.NotAfter.ToUniversalTime());
            }
            catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
            {
                return;
            }
            catch (Exception e) when (e is RpcException or HttpRequestException or IOException or CryptographicException)
            {
                LogRenewFailed(logger, e.Message);
                try
                {
                    await Task.Delay(TimeSpan.FromSeconds(5), _time, cancellationToken);
                }
                catch (OperationCanceledException)
                {
                    return;
                }
            }
        }
    }

    private static X509Certificate2 Accept(CertificateReply reply, ECDsa key, X509Certificate2 ca, string node)
    {
        using var signed = ClusterTrust.Load(reply.Certificate);
        if (!ClusterTrust.ChainsTo(signed, ca, ClusterTrust.ClientAuth) || ClusterTrust.NameOf(signed) != node || ClusterTrust.UnitOf(signed) != ClusterTrust.NodeUnit)
        {
            throw new InvalidOperationException("the controller answered with a certificate that is not a node certificate for this node from its CA");
        }

        return ClusterTrust.WithUsableKey(signed.CopyWithPrivateKey(key));
    }

    private void Save(ECDsa key, CertificateReply reply) =>
        IdentityFiles.Save(_directory, key.ExportPkcs8PrivateKeyPem(), reply.Certificate, Ca.ExportCertificatePem());

    private static (string Certificate, string Key, string Ca) Paths(string directory) => IdentityFiles.Paths(directory);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Cannot reach the controller at {Url} to enrol ({Reason}); retrying in {Seconds} s")]
    private static partial void LogEnrolRetry(ILogger logger, Uri url, string reason, double seconds);

    [LoggerMessage(Level = LogLevel.Information, Message = "Node certificate renewed: {Serial}, valid until {NotAfter:u}")]
    private static partial void LogRenewed(ILogger logger, string serial, DateTime notAfter);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Renewing the node certificate failed ({Reason}); retrying in 5 s")]
    private static partial void LogRenewFailed(ILogger logger, string reason);
}
