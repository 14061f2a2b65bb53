using System.CommandLine;
using Heddle.Cli.Client;
using Heddle.Contracts.Files;
using Heddle.Controller;

namespace Heddle.Cli.Commands;

/// <summary><c>heddle controller</c>: the fabric controller (REST API, agent gRPC, store, reconcilers), until SIGTERM.</summary>
internal static class ControllerCommand
{
    public const string EndpointsFile = "controller.json";

    public static Command Create(CliConsole console)
    {
        var state = new Option<string>("--state") { Description = "State directory: store, package blobs, tokens", Required = true };
        var listen = new Option<string>("--listen") { Description = "Address to listen on (default 127.0.0.1)", DefaultValueFactory = _ => "127.0.0.1" };
        var apiPort = new Option<int>("--api-port") { Description = "REST API port; 0 lets the OS choose (default 0)" };
        var agentPort = new Option<int>("--agent-port") { Description = "Agent port (gRPC and downloads over mutual TLS); 0 lets the OS choose (default 0)" };
        var insecure = new Option<bool>("--insecure-http") { Description = "Serve the REST API over plain HTTP, for a controller behind a proxy that terminates TLS (tokens then cross the wire in clear)" };
        var certLifetime = Durations.Option("--node-cert-lifetime", "How long a node certificate is valid; agents renew at two thirds of it", TimeSpan.FromDays(90));
        var timeout = Durations.Option("--node-timeout", "A node silent this long is Down and its instances move", TimeSpan.FromSeconds(10));
        var reachTimeout = Durations.Option("--node-reach-timeout", "How long to wait for a TCP connect to a node's address when it enrols or its address changes; a node that does not answer is refused (keep it below the agent's 10 s enrolment deadline)", TimeSpan.FromSeconds(3));
        var dns = DnsOptionsBinder.Create();
        var lb = new LbOptionsBinder();
        var store = new Option<string?>("--store")
        {
            Description = "The cluster store: sqlite:PATH (default: cluster.db in the state directory) or etcd://host:port[,host:port...], which several controllers can share",
        };
        var etcdCa = new Option<string?>("--etcd-ca") { Description = "With an etcd store: the CA the etcd members' certificates chain to (PEM); with --etcd-cert and --etcd-key, etcd is reached over TLS" };
        var etcdCert = new Option<string?>("--etcd-cert") { Description = "With an etcd store: this controller's etcd client certificate (PEM; 'heddle ca issue-etcd-client' makes one)" };
        var etcdKey = new Option<string?>("--etcd-key") { Description = "With an etcd store: the key of --etcd-cert (PEM, mode 0600)" };
        var history = new Option<int>("--history") { Description = "Revisions kept per service for history and rollback (default 10)", DefaultValueFactory = _ => 10 };
        var defaultQuota = new Option<string>("--default-quota")
        {
            Description = $"The quota of every tenant without one set: NAME=N[,NAME=N...] with NAME one of {string.Join(", ", Heddle.Contracts.Api.QuotaLimits.Names)} "
                + $"(N a number or none; a name not given keeps its default), or none for no limit (default {Heddle.Contracts.Api.QuotaLimits.NewTenantDefault}; the admin's own tenant has none)",
            DefaultValueFactory = _ => Heddle.Contracts.Api.QuotaLimits.NewTenantDefault.ToString(),
        };
        var uidRange = new Option<string>("--uid-range")
        {
            Description = "The uids services' instances run as: each service gets one of its own for the whole cluster (default 200000-265535; agents need the same range)",
            DefaultValueFactory = _ => Heddle.Contracts.UidRange.Default.ToString(),
        };
        var tlsNames = new Option<string[]>("--tls-name")
        {
            Description = "Another name clients reach the controller by (IP address or DNS name; repeatable): its certificate names each, beside its listen address "
                + "(every address of the host for 0.0.0.0 or ::), 127.0.0.1, ::1, localhost and the host's name",
            AllowMultipleArgumentsPerToken = false,
        };
        var vipPool = new Option<string>("--vip-pool") { Description = "Where service VIPs come from (IPv4 CIDR, default 127.77.0.0/24)", DefaultValueFactory = _ => "127.77.0.0/24" };
        var command = new Command("controller", "Run the fabric controller (and, unless --no-dns, the cluster's DNS server)") { state, listen, apiPort, agentPort, timeout, reachTimeout, insecure, certLifetime };
        dns.AddTo(command);
        lb.AddTo(command);
        command.Options.Add(vipPool);
        command.Options.Add(uidRange);
        command.Options.Add(history);
        command.Options.Add(defaultQuota);
        command.Options.Add(store);
        command.Options.Add(tlsNames);
        command.Options.Add(etcdCa);
        command.Options.Add(etcdCert);
        command.Options.Add(etcdKey);
        command.SetAction(async (parse, cancellationToken) =>
        {
            if (!Heddle.Contracts.Api.QuotaLimits.TryRead(parse.GetValue(defaultQuota)!, Heddle.Contracts.Api.QuotaLimits.NewTenantDefault, out var quota, out var quotaProblem))
            {
                throw new UsageException($"--default-quota: {quotaProblem}");
            }

            var options = new ControllerOptions
            {
                StateDirectory = Path.GetFullPath(parse.GetValue(state)!),
                Store = parse.GetValue(store),
                ListenAddress = parse.GetValue(listen)!,
                ApiPort = parse.GetValue(apiPort),
                AgentPort = parse.GetValue(agentPort),
                NodeTimeout = parse.GetValue(timeout),
                NodeReachTimeout = parse.GetValue(reachTimeout),
                VipPool = parse.GetValue(vipPool),
                UidRange = Heddle.Contracts.UidRange.Parse(parse.GetValue(uidRange)!, out var uidProblem) ?? throw new UsageException($"--uid-range {uidProblem}"),
                HistoryLimit = parse.GetValue(history),
                InsecureHttp = parse.GetValue(insecure),
                NodeCertificateLifetime = parse.GetValue(certLifetime),
                DefaultQuota = quota,
                TlsNames = parse.GetValue(tlsNames) ?? [],
                EtcdTls = EtcdTls(parse.GetValue(etcdCa), parse.GetValue(etcdCert), parse.GetValue(etcdKey), parse.GetValue(store)),
            };
            if (options.NodeReachTimeout <= TimeSpan.Zero || options.NodeReachTimeout >= TimeSpan.FromSeconds(10))
            {
                throw new UsageException($"--node-reach-timeout {Durations.Format(options.NodeReachTimeout)}: give more than 0 s and less than the agent's 10 s enrolment deadline");
            }

            if (options.TlsNames.Select(Heddle.Controller.Trust.CertificateAuthority.TlsNameError).FirstOrDefault(e => e is not null) is { } nameProblem)
            {
                throw new UsageException($"--tls-name {nameProblem}");
            }

            if (options.NodeCertificateLifetime < TimeSpan.FromSeconds(3))
            {
                throw new UsageException($"--node-cert-lifetime {Durations.Format(options.NodeCertificateLifetime)}: give nodes at least 3 s");
            }
            if (Heddle.Controller.Store.ClusterStores.Check(options.Store) is { } storeProblem)
            {
                throw new UsageException(storeProblem);
            }

            if (options.HistoryLimit < 1)
            {
                throw new UsageException($"--history {options.HistoryLimit}: keep at least 1 revision");
            }

            try
            {
                _ = new Heddle.Controller.LoadBalancing.VipPool(options.VipPool!);
            }
            catch (ArgumentException e)
            {
                throw new UsageException(e.Message);
            }

            if (Heddle.Controller.Store.ClusterStores.ClearTextWarning(options) is { } clear)
            {
                console.Error.WriteLine(clear);
            }

            await using var host = await ControllerHost.StartAsync(options, cancellationToken: cancellationToken);
            await using var dnsServer = dns.StartHosted(parse, options.ListenAddress, host);
            await using var balancer = lb.StartHosted(parse, host, console);
            StateFiles.Write(Path.Combine(options.StateDirectory, EndpointsFile),
                new ControllerEndpoints(host.ApiUrl, host.AgentUrl, dnsServer is null ? null : $"{dnsServer.Endpoint}", Environment.ProcessId));
            console.Out.WriteLine($"controller {Environment.ProcessId}: API {host.ApiUrl}, agents {host.AgentUrl}, state {options.StateDirectory}");
            if (dnsServer is not null)
            {
                console.Out.WriteLine($"DNS for zone {dnsServer.Zone} on {dnsServer.Endpoint} (udp and tcp)");
            }

            if (balancer is not null)
            {
                console.Out.WriteLine($"load balancer: service VIPs from {options.VipPool}");
            }

            console.Out.WriteLine($"{host.AdminTokenLocation}; cluster CA certificate in {Path.Combine(options.StateDirectory, "ca.crt")}, hash {host.CaHash}; "
                + "agents join with a string from 'heddle token create --join'");
            // On every address the URL's host is for the operator to fill in: one of the host's addresses or a --tls-name.
            var loginUrl = System.Net.IPAddress.Parse(options.ListenAddress) is var a && (a.Equals(System.Net.IPAddress.Any) || a.Equals(System.Net.IPAddress.IPv6Any))
                ? new UriBuilder(host.ApiUrl) { Host = "HOST" }.Uri : host.ApiUrl;
            console.Out.WriteLine($"users: heddle login {loginUrl} --token TOKEN --ca-hash {host.CaHash}");
            if (options.InsecureHttp)
            {
                console.Error.WriteLine($"WARNING: --insecure-http: the REST API at {host.ApiUrl} is plain HTTP. Tokens and everything else cross the network in clear; "
                    + "use it only behind a proxy on this host that terminates TLS. The agent port stays TLS.");
            }
            await WaitForStop(cancellationToken);
            return ExitCodes.Ok;
        });
        return command;
    }

    /// <summary>--etcd-ca, --etcd-cert and --etcd-key: all three (with an etcd store) or none.</summary>
    private static Heddle.Controller.Store.Kv.EtcdTlsFiles? EtcdTls(string? ca, string? certificate, string? key, string? store)
    {
        if (ca is null && certificate is null && key is null)
        {
            return null;
        }

        if (ca is null || certificate is null || key is null || store?.StartsWith("etcd://", StringComparison.Ordinal) != true)
        {
            throw new UsageException("--etcd-ca, --etcd-cert and --etcd-key go together, with --store etcd://...");
        }

        var files = new Heddle.Controller.Store.Kv.EtcdTlsFiles(Path.GetFullPath(ca), Path.GetFullPath(certificate), Path.GetFullPath(key));
        return files.Problem() is { } problem ? throw new UsageException(problem) : files;
    }

    /// <summary>Until Ctrl-C or SIGTERM (System.CommandLine cancels the token for both).</summary>
    internal static async Task WaitForStop(CancellationToken cancellationToken)
    {
        try
        {
            await Task.Delay(Timeout.Infinite, cancellationToken);
        }
        catch (OperationCanceledException)
        {
        }
    }
}
