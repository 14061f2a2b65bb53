using System.CommandLine;
using System.Net;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using Heddle.Cli.Client;
using Heddle.Contracts.Api;
using Heddle.Contracts.Trust;

namespace Heddle.Cli.Commands;

/// <summary>
/// <c>heddle login https://HOST:PORT[,https://HOST2:PORT...] --token T (--ca-file F | --ca-hash sha256:HEX)</c>: points the
/// CLI at a cluster from any machine. The cluster CA comes from a file, or from the controller itself checked against
/// a hash the operator copied from `heddle controller` or `heddle info` (as `kubeadm join` checks its discovery hash).
/// The token is then tried on the controller over a verified connection, and the client configuration is written only
/// when it works.
/// </summary>
internal static class LoginCommand
{
    public static Command Create(CliConsole console)
    {
        var urls = new Argument<string>("url") { Description = "The controller's API URL (https://HOST:PORT); the controllers of one cluster comma-separated" };
        var caFile = new Option<string?>("--ca-file") { Description = "The cluster CA certificate (PEM; the controller's <state>/ca.crt) to check controllers with" };
        var caHash = new Option<string?>("--ca-hash")
        {
            Description = "sha256:HEX, the SHA-256 of the cluster CA certificate's SubjectPublicKeyInfo (as 'heddle controller' prints it and 'heddle info' shows it): "
                + "the CA is fetched from the controller and must match it",
        };
        var command = new Command("login", "Point the CLI at a cluster: check the controller and the token, then write the client configuration") { urls, caFile, caHash };
        command.SetAction(async (parse, ct) =>
        {
            var apiUrls = ParseUrls(parse.GetValue(urls)!);
            var token = ClientConfig.TokenOverride ?? throw new UsageException($"give the API token with --token T (or ${ClientConfig.TokenVariable})");
            var file = parse.GetValue(caFile);
            var hash = parse.GetValue(caHash);
            if (file is not null && hash is not null)
            {
                throw new UsageException("give the cluster CA one way: --ca-file or --ca-hash, not both");
            }

            var https = apiUrls.Any(u => u.Scheme == Uri.UriSchemeHttps);
            if (https && file is null && hash is null)
            {
                throw new UsageException("an https:// controller is checked against the cluster CA: give --ca-file FILE (its ca.crt) or --ca-hash sha256:HEX (as 'heddle controller' prints it)");
            }

            string? caPem = null;
            if (file is not null)
            {
                caPem = ReadCa(CommonOptions.ReadSmallText(file, "CA certificate file"), $"--ca-file {file}");
            }
            else if (hash is not null)
            {
                var expected = CaHash.Parse(hash) ?? throw new UsageException($"--ca-hash '{hash}' is not sha256: and 64 hex digits (as 'heddle controller' prints it)");
                caPem = await DiscoverAsync(apiUrls, expected, ct);
            }

            using var ca = caPem is null ? null : ClusterTrust.Load(caPem);
            using var api = new HeddleApiClient(apiUrls, token, ca, ClientConfig.Timeouts, checkNames: true);
            ClusterInfo info;
            try
            {
                info = await api.InfoAsync(ct);
            }
            catch (HeddleApiException e) when (e.Status is HttpStatusCode.Unauthorized)
            {
                throw new CliException($"the controller at {api.CurrentUrl} refused the token ({e.Message}); nothing was written to {ClientConfig.FilePath}");
            }
            catch (HeddleApiException e)
            {
                throw new CliException($"{e.Message}; nothing was written to {ClientConfig.FilePath}");
            }

            ClientConfig.Save(apiUrls[0], token, caPem, apiUrls);
            var caText = ca is null ? "no CA (plain HTTP)" : $"cluster CA {CaHash.Of(ca)}";
            console.Out.WriteLine($"logged in to {api.CurrentUrl} ({caText}; {info.Controllers.Count} controller{(info.Controllers.Count == 1 ? string.Empty : "s")}); "
                + $"client configuration written to {ClientConfig.FilePath}");
            if (!https)
            {
                console.Error.WriteLine("WARNING: the API is plain HTTP: the token crosses the network in clear");
            }

            return ExitCodes.Ok;
        });
        return command;
    }

    private static List<Uri> ParseUrls(string text)
    {
        var list = new List<Uri>();
        foreach (var part in text.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            if (!Uri.TryCreate(part, UriKind.Absolute, out var url) || (url.Scheme != Uri.UriSchemeHttps && url.Scheme != Uri.UriSchemeHttp) || url.PathAndQuery != "/")
            {
                throw new UsageException($"'{part}' is not a controller's API URL; give https://HOST:PORT (as 'heddle controller' prints it)");
            }

            list.Add(url);
        }

        return list.Count > 0 ? list : throw new UsageException("give the controller's API URL, https://HOST:PORT");
    }

    private static string ReadCa(string pem, string source)
    {
        try
        {
            using var ca = ClusterTrust.Load(pem);
            if (ca.Extensions.OfType<X509BasicConstraintsExtension>().FirstOrDefault() is not { CertificateAuthority: true })
            {
                throw new CliException($"{source} is a certificate but not a CA's ({ca.Subject}); give the cluster CA, ca.crt in the controller's state folder");
            }

            return ca.ExportCertificatePem();
        }
        catch (CryptographicException e)
        {
            throw new CliException($"{source} holds no PEM certificate ({e.Message})");
        }
    }

    /// <summary>
    /// Fetches the cluster CA from a controller over a connection that checks nothing yet (it carries no token, and
    /// nothing it answers is believed until checked), then checks it: its key must have the hash the operator gave, and
    /// the certificate the controller presented must be signed by it.
    /// </summary>
    private static async Task<string> DiscoverAsync(IReadOnlyList<Uri> apiUrls, string expectedHash, CancellationToken ct)
    {
        X509Certificate2? presented = null;
        using var failover = new ControllerFailover(apiUrls, ClientConfig.Timeouts);
        var inner = failover.CreateInnerHandler(ca: null, checkNames: false);
        inner.SslOptions.RemoteCertificateValidationCallback = (_, certificate, _, _) =>
        {
            presented = certificate is null ? null : X509CertificateLoader.LoadCertificate(certificate.GetRawCertData());
            return true;
        };
        failover.InnerHandler = inner;
        using var http = new HttpClient(failover, disposeHandler: false) { Timeout = System.Threading.Timeout.InfiniteTimeSpan, MaxResponseContentBufferSize = 64 * 1024 };
        string pem;
        Uri from;
        try
        {
            using var response = await http.GetAsync(new Uri(apiUrls[0], "v1/ca"), ct);
            from = failover.Current;
            if (!response.IsSuccessStatusCode)
            {
                throw new CliException($"the controller at {from} did not serve its CA certificate (HTTP {(int)response.StatusCode} for /v1/ca; is it an older Heddle? use --ca-file); nothing was written");
            }

            using var reading = CancellationTokenSource.CreateLinkedTokenSource(ct);
            reading.CancelAfter(ClientConfig.Timeout);
            pem = await response.Content.ReadAsStringAsync(reading.Token);
        }
        catch (HeddleApiException e)
        {
            throw new CliException($"{e.Message}; nothing was written to {ClientConfig.FilePath}");
        }
        catch (Exception e) when (e is HttpRequestException or OperationCanceledException && !ct.IsCancellationRequested)
        {
            throw new CliException($"cannot read the CA certificate from the controller at {failover.Current} ({e.Message}); nothing was written to {ClientConfig.FilePath}");
        }

        X509Certificate2 ca;
        try
        {
            ca = ClusterTrust.Load(pem);
        }
        catch (CryptographicException)
        {
            throw new CliException($"the controller at {from} answered /v1/ca with something that is not a certificate; nothing was written");
        }

        using (ca)
        {
            var actual = ClusterTrust.PublicKeyHash(ca);
            if (actual != expectedHash)
            {
                throw new CliException($"the cluster CA served by {from} has hash {CaHash.Format(actual)}, which differs from the {CaHash.Format(expectedHash)} given: "
                    + "this is another cluster, or someone between you and the controller answered (possible man in the middle); nothing was written");
            }

            if (presented is null || !ClusterTrust.Is(presented, ca, ClusterTrust.ServerAuth, ClusterTrust.ControllerUnit))
            {
                throw new CliException($"the controller at {from} presented a certificate its cluster CA ({CaHash.Format(actual)}) did not sign "
                    + "(possible man in the middle); nothing was written");
            }

            return ca.ExportCertificatePem();
        }
    }
}
