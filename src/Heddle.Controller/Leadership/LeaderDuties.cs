using Heddle.Controller.LoadBalancing;
using Heddle.Controller.Reconciliation;
using Heddle.Controller.Store;

namespace Heddle.Controller.Leadership;

/// <summary>
/// Campaigns for leadership for as long as the controller runs; while it leads, it runs the reconcilers (upgrade walks
/// included), judges node health, notices balancers gone and walks host rollouts, and stops all of them as soon as its term may have ended.
/// Every controller serves the API and the agents whether it leads or not.
/// </summary>
public sealed class LeaderDuties(LeaderTerm term, ReconcileLoop loop, NodeHealthMonitor health, BalancerRegistry balancers, OpenedStore store, EventLog events,
    HostRollouts.HostRolloutRunner hostRollouts)
{
    public async Task RunAsync(ILeaderElection election, CancellationToken stop)
    {
        term.Election = election;
        try
        {
            await election.RunAsync(async (leadership, leading) =>
            {
                term.Current = leadership;
                if (store.Shared)
                {
                    try
                    {
                        await events.AddAsync(EventKind.LeaderElected, leadership.Holder, leadership.Again
                            ? $"controller {leadership.Holder} leads again (term {leadership.Term}): it had stopped while its lease renewals went unconfirmed, and the lease held"
                            : $"controller {leadership.Holder} leads (term {leadership.Term}); it runs the reconcilers, node health and upgrade walks");
                    }
                    catch (Store.Kv.KvUnavailableException)
                    {
                        // The store is away: the term cannot write anything either, and ends soon.
                    }
                }

                try
                {
                    await Task.WhenAll(Until(loop.RunAsync, leading), Until(health.RunAsync, leading), Until(balancers.RunAsync, leading),
                        Until(hostRollouts.RunAsync, leading));
                }
                finally
                {
                    term.Current = null;
                }
            }, stop);
        }
        catch (OperationCanceledException) when (stop.IsCancellationRequested)
        {
        }
    }

    private static async Task Until(Func<CancellationToken, Task> run, CancellationToken token)
    {
        try
        {
            await run(token);
        }
        catch (OperationCanceledException) when (token.IsCancellationRequested)
        {
        }
    }
}
