using Heddle.Controller.Agents;
using Heddle.Controller.Blobs;
using Heddle.Controller.Reconciliation;
using Heddle.Controller.Store;
using Heddle.Controller.Trust;
using Microsoft.Extensions.DependencyInjection;

namespace Heddle.Controller.Hosting;

/// <summary>Every service the controller is made of, registered once: the store and its views, trust, the reconcilers, the API's helpers, the data planes' feeds.</summary>
internal static class ControllerServices
{
    public static IServiceCollection AddController(this IServiceCollection services, ControllerOptions options, TimeProvider time, CertificateAuthority ca, OpenedStore store,
        System.Security.Cryptography.X509Certificates.X509Certificate2 serverCertificate)
    {
        services.AddSingleton(options);
        services.AddSingleton(time);
        services.AddSingleton(ca);
        services.AddSingleton(_ => store);
        services.AddSingleton(sp => sp.GetRequiredService<OpenedStore>().Cluster);
        services.AddSingleton(sp => sp.GetRequiredService<OpenedStore>().Trust);
        services.AddSingleton(sp => sp.GetRequiredService<OpenedStore>().Quotas);
        services.AddSingleton(sp => sp.GetRequiredService<OpenedStore>().Machines);
        services.AddSingleton(sp => sp.GetRequiredService<OpenedStore>().HostRollouts);
        services.AddSingleton<Quotas.TenantQuotas>();
        services.AddSingleton<Leadership.LeaderTerm>();
        services.AddSingleton<ReconcileLoop>();
        services.AddSingleton<Tokens>();
        services.AddSingleton<Machines.MachineRegistry>();
        services.AddSingleton<Machines.BootDecider>();
        services.AddSingleton<NodeCertificates>();
        services.AddSingleton<NodeReachability>();
        services.AddSingleton(new BlobStore(Path.Combine(options.StateDirectory, "blobs")));
        services.AddSingleton<BlobPeers>();
        services.AddHttpClient(BlobPeers.ClientName, c => c.Timeout = TimeSpan.FromMinutes(30))
            .ConfigurePrimaryHttpMessageHandler(() =>
            {
                var handler = Heddle.Contracts.Trust.ClusterTrust.Handler(ca.Certificate, () => serverCertificate);
                handler.ConnectTimeout = TimeSpan.FromSeconds(2);
                return handler;
            });
        services.AddSingleton(new ControllerInfo(options.StateDirectory));
        services.AddSingleton<EventLog>();
        services.AddSingleton<Dns.DnsRecordSource>();
        services.AddSingleton<LoadBalancing.LoadBalancerConfigSource>();
        services.AddSingleton(new LoadBalancing.VipPool(options.VipPool ?? "127.77.0.0/24"));
        services.AddSingleton(options.BalancerTiming);
        services.AddSingleton<LoadBalancing.VipConflicts>();
        services.AddSingleton<LoadBalancing.BalancerRegistry>();
        services.AddSingleton<ServiceModels>();
        services.AddSingleton<GoalStates>();
        services.AddSingleton<AgentSessions>();
        services.AddSingleton<KeepaliveClock>();
        services.AddSingleton<HeartbeatDatagrams>();
        services.AddSingleton<WorkQueue>();
        services.AddSingleton<Publishing.IPublicationBarrier, Publishing.PublicationBarrier>();
        services.AddSingleton<DeploymentReconciler>();
        services.AddSingleton<NodeWork>();
        services.AddSingleton(sp => new Publishing.ChangeDispatcher(sp.GetRequiredService<IClusterStore>(), sp.GetRequiredService<WorkQueue>(),
            sp.GetRequiredService<AgentSessions>(), sp.GetRequiredService<EventLog>(), sp.GetRequiredService<NodeWork>(), sp.GetRequiredService<Dns.DnsRecordSource>(),
            sp.GetRequiredService<LoadBalancing.LoadBalancerConfigSource>()));
        services.AddSingleton<Api.Deployments>();
        services.AddSingleton<Api.Images>();
        services.AddSingleton<Api.HostImages>();
        services.AddSingleton<Api.Swaps>();
        services.AddSingleton<Api.InstanceListing>();
        services.AddSingleton<Api.UpgradeControl>();
        services.AddSingleton<Api.NodeRemoval>();
        services.AddSingleton<NodeHealthMonitor>();
        services.AddSingleton<StallWatch>();
        services.AddSingleton<HostRollouts.HostRolloutRunner>();
        services.AddSingleton<HostRollouts.HostRolloutControl>();
        services.AddMetrics();
        services.AddSingleton<Metrics.ControllerMetrics>();
        services.AddSingleton(sp => new Heddle.Contracts.Metrics.PrometheusExport(sp.GetRequiredService<System.Diagnostics.Metrics.IMeterFactory>()));
        services.AddSingleton<Leadership.LeaderDuties>();
        services.AddSingleton<Dashboard.PageData>();
        services.AddHttpClient(Api.Logs.ClientName, c => c.Timeout = Timeout.InfiniteTimeSpan)
            .ConfigurePrimaryHttpMessageHandler(() => Heddle.Contracts.Trust.ClusterTrust.Handler(ca.Certificate, () => serverCertificate, Heddle.Contracts.Trust.ClusterTrust.NodeUnit));
        services.AddGrpc(grpc => grpc.MaxReceiveMessageSize = 16 << 20);
        services.AddProblemDetails();
        services.ConfigureHttpJsonOptions(json => json.SerializerOptions.Converters.Add(new System.Text.Json.Serialization.JsonStringEnumConverter()));

        return services;
    }
}
