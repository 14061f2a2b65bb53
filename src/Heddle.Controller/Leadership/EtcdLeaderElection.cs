using System.Diagnostics;
using Etcdserverpb;
using Google.Protobuf;
using Grpc.Core;
using Heddle.Controller.Store.Kv;
using Microsoft.Extensions.Logging;
using V3Electionpb;

namespace Heddle.Controller.Leadership;

/// <summary>
/// Leader election on etcd: a lease of <see cref="LeaseTtl"/> renewed every <see cref="RenewEvery"/>, and etcd's
/// election service (the candidate whose key was created first under the election's name leads). The leader stops
/// acting when no renewal has been confirmed for <c>LeaseTtl - RenewEvery</c>, which is before its lease can have
/// expired on the server, so that two leaders never act at once; a follower is elected when the lease expires.
/// </summary>
/// <param name="storeRoot">The key-value store's root (/heddle/) when the election's name is under it: the term's key then fences the store's writes.</param>
public sealed partial class EtcdLeaderElection(EtcdMembers members, string name, string holder, ILogger logger, string? storeRoot = null) : ILeaderElection
{
    public TimeSpan LeaseTtl { get; init; } = TimeSpan.FromSeconds(3);

    public TimeSpan RenewEvery { get; init; } = TimeSpan.FromSeconds(1);

    public async Task RunAsync(Func<Leadership, CancellationToken, Task> lead, CancellationToken cancellationToken)
    {
        var backoff = TimeSpan.FromMilliseconds(100);
        while (!cancellationToken.IsCancellationRequested)
        {
            var member = members.Current;
            try
            {
                await TermAsync(member, lead, cancellationToken);
                backoff = TimeSpan.FromMilliseconds(100);
            }
            catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
            {
                return;
            }
            catch (Exception e) when (e is RpcException or KvUnavailableException or IOException or InvalidOperationException)
            {
                LogCampaignFailed(logger, holder, e.Message);
                members.Failed(member);
                await Task.Delay(backoff, cancellationToken).ContinueWith(_ => { }, TaskScheduler.Default);
                backoff = TimeSpan.FromTicks(Math.Min(TimeSpan.FromSeconds(2).Ticks, backoff.Ticks * 2));
            }
        }
    }

    /// <summary>One lease: campaign with it, lead while it is surely held, then give it up.</summary>
    private async Task TermAsync(Grpc.Net.Client.GrpcChannel member, Func<Leadership, CancellationToken, Task> lead, CancellationToken cancellationToken)
    {
        var leases = new Lease.LeaseClient(member);
        var grant = await leases.LeaseGrantAsync(new LeaseGrantRequest { TTL = (long)Math.Ceiling(LeaseTtl.TotalSeconds) }, cancellationToken: cancellationToken);
        using var held = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        var confirmed = Stopwatch.GetTimestamp();
        var keepalive = KeepAliveAsync(leases, grant.ID, t => Interlocked.Exchange(ref confirmed, t), held);
        try
        {
            var won = await new Election.ElectionClient(member).CampaignAsync(
                new CampaignRequest { Name = ByteString.CopyFromUtf8(name), Lease = grant.ID, Value = ByteString.CopyFromUtf8(holder) }, cancellationToken: held.Token);
            var key = won.Leader.Key.ToStringUtf8();
            var term = new Leadership(holder, won.Leader.Rev, storeRoot is not null && key.StartsWith(storeRoot, StringComparison.Ordinal) ? key[storeRoot.Length..] : null);
            LogElected(logger, holder, term.Term);
            using var leading = CancellationTokenSource.CreateLinkedTokenSource(held.Token);
            var guard = GuardAsync(() => Interlocked.Read(ref confirmed), leading);
            try
            {
                await lead(term, leading.Token);
            }
            finally
            {
                await leading.CancelAsync();
                await guard;
                LogSteppedDown(logger, holder, term.Term);
                await ResignAsync(member, won.Leader);
            }
        }
        finally
        {
            await held.CancelAsync();
            await keepalive;
            try
            {
                await leases.LeaseRevokeAsync(new LeaseRevokeRequest { ID = grant.ID }, deadline: DateTime.UtcNow.AddSeconds(1));
            }
            catch (RpcException)
            {
                // The lease expires by itself.
            }
        }
    }

    /// <summary>Cancels leadership once the last confirmed renewal is older than LeaseTtl - RenewEvery.</summary>
    private async Task GuardAsync(Func<long> confirmed, CancellationTokenSource leading)
    {
        var limit = LeaseTtl - RenewEvery;
        try
        {
            while (!leading.IsCancellationRequested)
            {
                if (Stopwatch.GetElapsedTime(confirmed()) > limit)
                {
                    LogLeaseUnsure(logger, holder, limit.TotalSeconds);
                    await leading.CancelAsync();
                    return;
                }

                await Task.Delay(TimeSpan.FromMilliseconds(50), leading.Token);
            }
        }
        catch (OperationCanceledException)
        {
        }
    }

    /// <summary>Renews the lease every RenewEvery; records when each confirmed renewal was sent (the server's countdown starts after that).</summary>
    private async Task KeepAliveAsync(Lease.LeaseClient leases, long id, Action<long> confirmedAt, CancellationTokenSource held)
    {
        try
        {
            using var call = leases.LeaseKeepAlive(cancellationToken: held.Token);
            while (!held.IsCancellationRequested)
            {
                var sent = Stopwatch.GetTimestamp();
                await call.RequestStream.WriteAsync(new LeaseKeepAliveRequest { ID = id }, held.Token);
                if (!await call.ResponseStream.MoveNext(held.Token) || call.ResponseStream.Current.TTL <= 0)
                {
                    break; // the lease is gone
                }

                confirmedAt(sent);
                await Task.Delay(RenewEvery, held.Token);
            }
        }
        catch (Exception e) when (e is RpcException or OperationCanceledException or IOException or InvalidOperationException)
        {
        }

        // Without renewals the lease is lost: the guard steps down; a campaign still waiting is ended.
        await held.CancelAsync();
    }

    private static async Task ResignAsync(Grpc.Net.Client.GrpcChannel member, LeaderKey key)
    {
        try
        {
            await new Election.ElectionClient(member).ResignAsync(new ResignRequest { Leader = key }, deadline: DateTime.UtcNow.AddSeconds(1));
        }
        catch (RpcException)
        {
            // Revoking or losing the lease ends the term as well.
        }
    }

    public async Task<string?> LeaderAsync(CancellationToken cancellationToken = default)
    {
        try
        {
            var response = await members.CallAsync(m => new Election.ElectionClient(m).LeaderAsync(new LeaderRequest { Name = ByteString.CopyFromUtf8(name) }, cancellationToken: cancellationToken).ResponseAsync, cancellationToken);
            return response.Kv?.Value.ToStringUtf8();
        }
        catch (RpcException e) when (e.StatusCode == StatusCode.NotFound || e.Status.Detail.Contains("no leader", StringComparison.Ordinal))
        {
            return null;
        }
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "{Holder} leads (term {Term})")]
    private static partial void LogElected(ILogger logger, string holder, long term);

    [LoggerMessage(Level = LogLevel.Information, Message = "{Holder} stopped leading (term {Term})")]
    private static partial void LogSteppedDown(ILogger logger, string holder, long term);

    [LoggerMessage(Level = LogLevel.Warning, Message = "{Holder}: no lease renewal confirmed for {Seconds} s; stepping down before the lease can expire")]
    private static partial void LogLeaseUnsure(ILogger logger, string holder, double seconds);

    [LoggerMessage(Level = LogLevel.Warning, Message = "{Holder}: campaign failed ({Reason}); trying again")]
    private static partial void LogCampaignFailed(ILogger logger, string holder, string reason);
}
