using System.Net;
using Heddle.Controller.Trust;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.AspNetCore.Server.Kestrel.Core.Features;
using Microsoft.AspNetCore.Server.Kestrel.Https;

namespace Heddle.Controller.Hosting;

/// <summary>
/// The controller's two ports: the REST API (HTTPS, HTTP/1.1, so curl and browsers work) and the agents' port (HTTP/2
/// over TLS: gRPC and blob downloads; a node's certificate, or a controller's, is required past enrolment). Kestrel
/// writes the port the OS chose back into each listener's endpoint once it has started.
/// </summary>
internal sealed class ControllerListeners
{
    public ListenOptions Api { get; private set; } = null!;

    public ListenOptions Agent { get; private set; } = null!;

    /// <summary>
    /// Silence on an HTTP/2 connection (an agent's stream) after which the controller pings it. Kestrel takes the
    /// silence and the ping's answer as its connections are read: a controller whose thread pool is behind (a GC
    /// pause, a deployment of 25,000 instances on 2 CPUs) reads them late, and with 2 s and 4 s closed live agents'
    /// streams by hundreds (2,500 hollow nodes, 2026-12-06: 1,089 and 2,416 streams closed in a run, neither run
    /// finished deploying; with 5 s and 10 s 147, and the run deployed all 25,000 instances). The node health monitor,
    /// not this, judges a node Down; this only ends the stream of a host that went silent. An agent whose heartbeats go
    /// as datagrams says nothing on its stream for long stretches, so its stream is pinged at each of these: 10 s (not 5)
    /// halves that cost at 10,000 nodes, and a stream of a host gone silent is still closed within 20 s.
    /// </summary>
    public static readonly TimeSpan AgentPingAfter = TimeSpan.FromSeconds(10);

    /// <summary>How long a ping may go unanswered before the connection is closed.</summary>
    public static readonly TimeSpan AgentPingTimeout = TimeSpan.FromSeconds(10);

    public static ControllerListeners Configure(IWebHostBuilder web, IPAddress address, ControllerOptions options, CertificateAuthority ca,
        System.Security.Cryptography.X509Certificates.X509Certificate2 serverCertificate)
    {
        var listeners = new ControllerListeners();
        // One policy for every handshake on the agent port, as the agents' handler has one for theirs.
        var clientChains = Heddle.Contracts.Trust.ClusterTrust.ChainPolicy(ca.Certificate, Heddle.Contracts.Trust.ClusterTrust.ClientAuth);
        web.ConfigureKestrel(kestrel =>
        {
            kestrel.Listen(address, options.ApiPort, listen =>
            {
                (listeners.Api = listen).Protocols = HttpProtocols.Http1;
                if (!options.InsecureHttp)
                {
                    listen.UseHttps(serverCertificate);
                }
            });
            kestrel.Listen(address, options.AgentPort, listen =>
            {
                (listeners.Agent = listen).Protocols = HttpProtocols.Http1AndHttp2; // gRPC gets HTTP/2 by ALPN; downloads may use either
                listen.UseHttps(new HttpsConnectionAdapterOptions
                {
                    ServerCertificate = serverCertificate,
                    // Enrolment comes without a certificate; everything else on this port is refused without a node's (or, for
                    // blob copies between controllers sharing a store, a controller's).
                    ClientCertificateMode = ClientCertificateMode.AllowCertificate,
                    // Each connection proves the node afresh (a resumed session would carry an old certificate); the
                    // handshake's own chain is built to the cluster CA, not the system's roots (ClusterTrust.ChainPolicy).
                    OnAuthenticate = (_, ssl) =>
                    {
                        ssl.AllowTlsResume = false;
                        ssl.CertificateChainPolicy = clientChains;
                    },
                    ClientCertificateValidation = (certificate, _, _) =>
                        Heddle.Contracts.Trust.ClusterTrust.Is(certificate, ca.Certificate, Heddle.Contracts.Trust.ClusterTrust.ClientAuth, Heddle.Contracts.Trust.ClusterTrust.NodeUnit)
                        || Heddle.Contracts.Trust.ClusterTrust.Is(certificate, ca.Certificate, Heddle.Contracts.Trust.ClusterTrust.ClientAuth, Heddle.Contracts.Trust.ClusterTrust.ControllerUnit),
                });
                // Past the handshake, before the connection's first read: an agent's stream is idle nearly all its life, and
                // OpenSSL keeps two record buffers per connection unless told to free them while empty.
                listen.Use(next => connection =>
                {
                    if (connection.Features.Get<ISslStreamFeature>()?.SslStream is { } tls)
                    {
                        TlsBufferRelease.TryApply(tls);
                    }

                    return next(connection);
                });
            });
            kestrel.Limits.MaxRequestBodySize = null;
            // An agent's stream that goes silent (its host hung, a partition nobody was told of) is closed after a ping
            // goes unanswered, rather than held until TCP gives up minutes later: the session ends and the node counts
            // as disconnected here. An agent that heart-beats on its stream is never pinged; one whose heartbeats go as
            // datagrams is, every AgentPingAfter.
            kestrel.Limits.Http2.KeepAlivePingDelay = AgentPingAfter;
            kestrel.Limits.Http2.KeepAlivePingTimeout = AgentPingTimeout;
        });

        return listeners;
    }
}
