using Heddle.Controller.Blobs;
using Heddle.Controller.Hosting;
using Heddle.Controller.Leadership;
using Heddle.Controller.LoadBalancing;
using Heddle.Controller.Reconciliation;
using Heddle.Controller.Store;

namespace Heddle.Controller.Dashboard;

/// <summary>What the pages read, in one place: the store (this controller's copy), and what lives in memory only (heartbeats, peers, balancers).</summary>
internal sealed class PageData(OpenedStore opened, ServiceModels models, DeploymentReconciler reconciler, VipConflicts conflicts, NodeHealthMonitor health,
    BalancerRegistry balancers, ControllerInfo info, LeaderTerm term, BlobPeers peers, TimeProvider time)
{
    public IClusterStore Store => opened.Cluster;

    public ITrustStore Trust => opened.Trust;

    public OpenedStore Opened => opened;

    public ServiceModels Models => models;

    public DeploymentReconciler Reconciler => reconciler;

    public VipConflicts Conflicts => conflicts;

    public NodeHealthMonitor Health => health;

    public BalancerRegistry Balancers => balancers;

    public ControllerInfo Info => info;

    public LeaderTerm Term => term;

    public BlobPeers Peers => peers;

    public DateTimeOffset Now => time.GetUtcNow();

    /// <summary>The version of the store copy a page was rendered from; the live stream says when it moves on.</summary>
    public long Version => LiveUpdates.VersionOf(opened.Cluster);
}
