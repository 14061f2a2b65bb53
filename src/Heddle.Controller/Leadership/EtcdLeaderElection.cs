using System.Diagnostics;
using Etcdserverpb;
using Google.Protobuf;
using Grpc.Core;
using Grpc.Net.Client;
using Heddle.Controller.Store.Kv;
using Microsoft.Extensions.Logging;
using V3Electionpb;

namespace Heddle.Controller.Leadership;

/// <summary>
/// Leader election on etcd: a lease of <see cref="LeaseTtl"/> renewed every <see cref="RenewEvery"/>, and etcd's
/// election service (the candidate whose key was created first under the election's name leads). The leader stops
/// acting when no renewal has been confirmed for <c>LeaseTtl - StepDownMargin</c>, which is before its lease can have
/// expired on the server, so that two leaders never act at once; a follower is elected when the lease expires. A leader
/// whose renewal is confirmed again before then acts again in the same term (its key never went away).
/// </summary>
/// <remarks>
/// A member can vanish without a word. The lease is not tied to a member: renewals that go unanswered for
/// <see cref="RenewalTimeout"/> move to the next member and keep the same lease (and so the same term); a campaign whose
/// member fails ends the term, and the next campaign has a fresh lease; every other call has a deadline. Whatever fails, the election campaigns again with a backoff: it never stops trying.
/// </remarks>
/// <param name="storeRoot">The key-value store's root (/heddle/) when the election's name is under it: the term's key then fences the store's writes.</param>
public sealed partial class EtcdLeaderElection(EtcdMembers members, string name, string holder, ILogger logger, string? storeRoot = null) : ILeaderElection
{
    public TimeSpan LeaseTtl { get; init; } = TimeSpan.FromSeconds(3);

    public TimeSpan RenewEvery { get; init; } = TimeSpan.FromMilliseconds(400);

    /// <summary>How long a renewal may go unanswered before renewals move to the next member.</summary>
    public TimeSpan RenewalTimeout { get; init; } = TimeSpan.FromMilliseconds(600);

    /// <summary>How often an unanswered renewal is looked at.</summary>
    private static readonly TimeSpan CheckEvery = TimeSpan.FromMilliseconds(50);

    /// <summary>How long before the lease could expire the leader stops acting.</summary>
    public TimeSpan StepDownMargin { get; init; } = TimeSpan.FromSeconds(1);

    public async Task RunAsync(Func<Leadership, CancellationToken, Task> lead, CancellationToken cancellationToken)
    {
        members.ConnectAll();
        var backoff = TimeSpan.FromMilliseconds(100);
        while (!cancellationToken.IsCancellationRequested)
        {
            try
            {
                await TermAsync(lead, cancellationToken);
                backoff = TimeSpan.FromMilliseconds(100);
            }
            catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
            {
                return;
            }
            catch (Exception e) when (e is RpcException or KvUnavailableException or IOException or InvalidOperationException or HttpRequestException or OperationCanceledException)
            {
                LogCampaignFailed(logger, holder, e.Message, backoff.TotalSeconds);
                await Task.Delay(backoff, cancellationToken).ContinueWith(_ => { }, TaskScheduler.Default);
                backoff = TimeSpan.FromTicks(Math.Min(TimeSpan.FromSeconds(2).Ticks, backoff.Ticks * 2));
            }
        }
    }

    /// <summary>One lease: campaign with it, lead while it is surely held, then give it up.</summary>
    private async Task TermAsync(Func<Leadership, CancellationToken, Task> lead, CancellationToken cancellationToken)
    {
        var grant = await members.CallAsync(
            m => new Lease.LeaseClient(m).LeaseGrantAsync(new LeaseGrantRequest { TTL = (long)Math.Ceiling(LeaseTtl.TotalSeconds) }, headers: EtcdMembers.RequireLeader, deadline: EtcdMembers.Deadline(), cancellationToken: cancellationToken).ResponseAsync,
            cancellationToken);
        using var held = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        var renewals = new Renewals(Stopwatch.GetTimestamp());
        var renewing = RenewAsync(grant.ID, renewals, held);
        try
        {
            var won = await CampaignAsync(grant.ID, held.Token);
            var key = won.Key.ToStringUtf8();
            var term = new Leadership(holder, won.Rev, storeRoot is not null && key.StartsWith(storeRoot, StringComparison.Ordinal) ? key[storeRoot.Length..] : null);
            try
            {
                await LeadWhileHeldAsync(term, lead, renewals, held.Token);
            }
            finally
            {
                await ResignAsync(won);
            }
        }
        finally
        {
            await held.CancelAsync();
            await renewing;
            try
            {
                await new Lease.LeaseClient(members.Current).LeaseRevokeAsync(new LeaseRevokeRequest { ID = grant.ID }, deadline: DateTime.UtcNow.AddSeconds(1));
            }
            catch (RpcException)
            {
                // The lease expires by itself.
            }
        }
    }

    /// <summary>
    /// Leads in one term: runs <c>lead</c> while the lease is surely held. When no renewal has been confirmed for
    /// LeaseTtl - StepDownMargin the leader stops acting but keeps its key: renewals go on (through the next member when
    /// one is silent), and when one is confirmed the lease, and with it the key that makes this controller leader, is
    /// still there, so it acts again in the same term. A lost etcd member that was etcd's own leader holds renewals up
    /// for its election (one to two seconds) without ending anyone's lease: a new etcd leader extends every lease by a
    /// whole TTL. The term ends when the lease is gone (renewals say so), when <c>lead</c> ends by itself, or on stop.
    /// </summary>
    private async Task LeadWhileHeldAsync(Leadership term, Func<Leadership, CancellationToken, Task> lead, Renewals renewals, CancellationToken held)
    {
        var limit = LeaseTtl - StepDownMargin;
        for (var again = false; ; again = true)
        {
            if (again)
            {
                LogActingAgain(logger, holder, term.Term);
            }
            else
            {
                LogElected(logger, holder, term.Term);
            }

            bool unsure;
            using (var leading = CancellationTokenSource.CreateLinkedTokenSource(held))
            {
                var guard = GuardAsync(renewals, limit, leading);
                try
                {
                    await lead(term with { Again = again }, leading.Token);
                }
                finally
                {
                    await leading.CancelAsync();
                    unsure = await guard;
                }
            }

            if (!unsure || held.IsCancellationRequested)
            {
                LogSteppedDown(logger, holder, term.Term);
                return;
            }

            LogPaused(logger, holder, limit.TotalSeconds, term.Term);
            try
            {
                // Acting again only with a renewal confirmed since: half the limit leaves room before the guard would stop it again.
                while (Stopwatch.GetElapsedTime(renewals.Confirmed) > limit / 2)
                {
                    await Task.Delay(CheckEvery, held);
                }
            }
            catch (OperationCanceledException)
            {
                LogSteppedDown(logger, holder, term.Term);
                return;
            }
        }
    }

    /// <summary>
    /// Campaigns on the current member until elected. When that member fails (or the lease's renewals left it) the term
    /// ends and the next campaign starts with a fresh lease: etcd resigns a cancelled campaign's key on the server, perhaps
    /// late (when a partitioned member comes back), so a key once campaigned with is never campaigned with again.
    /// </summary>
    private async Task<LeaderKey> CampaignAsync(long lease, CancellationToken held)
    {
        var request = new CampaignRequest { Name = ByteString.CopyFromUtf8(name), Lease = lease, Value = ByteString.CopyFromUtf8(holder) };
        var member = members.Current;
        using var attempt = CancellationTokenSource.CreateLinkedTokenSource(held);
        Volatile.Write(ref _campaign, new CampaignAttempt(member, attempt));
        try
        {
            return (await new Election.ElectionClient(member).CampaignAsync(request, headers: EtcdMembers.RequireLeader, cancellationToken: attempt.Token)).Leader;
        }
        catch (Exception e) when (!held.IsCancellationRequested && e is RpcException or OperationCanceledException)
        {
            members.Failed(member);
            throw new InvalidOperationException($"the campaign on etcd member {members.NameOf(member)} failed ({(e is RpcException rpc ? $"{rpc.StatusCode}: {rpc.Status.Detail}" : "its lease renewals failed there")})", e);
        }
        finally
        {
            Volatile.Write(ref _campaign, null);
        }
    }

    private CampaignAttempt? _campaign;

    private sealed record CampaignAttempt(GrpcChannel Member, CancellationTokenSource Attempt);

    /// <summary>Ends a campaign waiting on a member that failed, so that another is made on the next at once (not when the member's connection is given up).</summary>
    private void Abandon(GrpcChannel member)
    {
        if (Volatile.Read(ref _campaign) is { } campaign && campaign.Member == member)
        {
            try
            {
                campaign.Attempt.Cancel();
            }
            catch (ObjectDisposedException)
            {
            }
        }
    }

    /// <summary>Send times of renewals, the oldest unanswered first, and the send time of the last one confirmed (the server's countdown starts after it).</summary>
    private sealed class Renewals(long start)
    {
        private readonly Queue<long> _pending = new();
        private long _confirmed = start;

        public long Confirmed => Interlocked.Read(ref _confirmed);

        public void Sent(long at)
        {
            lock (_pending)
            {
                _pending.Enqueue(at);
            }
        }

        public void Answered()
        {
            lock (_pending)
            {
                if (_pending.TryDequeue(out var at))
                {
                    Interlocked.Exchange(ref _confirmed, Math.Max(_confirmed, at));
                }
            }
        }

        /// <summary>How long the oldest renewal has waited for its answer (zero when none waits).</summary>
        public TimeSpan Waiting()
        {
            lock (_pending)
            {
                return _pending.TryPeek(out var at) ? Stopwatch.GetElapsedTime(at) : TimeSpan.Zero;
            }
        }

        public void Forget()
        {
            lock (_pending)
            {
                _pending.Clear();
            }
        }
    }

    /// <summary>Cancels leading once the last confirmed renewal is older than <paramref name="limit"/>; true when it did.</summary>
    private async Task<bool> GuardAsync(Renewals renewals, TimeSpan limit, CancellationTokenSource leading)
    {
        try
        {
            while (!leading.IsCancellationRequested)
            {
                if (Stopwatch.GetElapsedTime(renewals.Confirmed) > limit)
                {
                    await leading.CancelAsync();
                    return true;
                }

                await Task.Delay(CheckEvery, leading.Token);
            }
        }
        catch (OperationCanceledException)
        {
        }

        return false;
    }

    /// <summary>
    /// Renews the lease every RenewEvery, on one member while it answers and on the next when it does not; ends (and
    /// with it the campaign or the term) when a member says the lease is gone. There is no time limit: however long no
    /// member answered, the first that does says whether the lease lives (etcd's leader, not this clock, ends leases).
    /// </summary>
    private async Task RenewAsync(long id, Renewals renewals, CancellationTokenSource held)
    {
        var member = members.Current;
        var moves = 0;
        try
        {
            while (!held.IsCancellationRequested)
            {
                var answered = renewals.Confirmed;
                if (await RenewOnAsync(member, id, renewals, held.Token) is { } reason)
                {
                    var next = members.Next(member);
                    LogRenewalMoved(logger, holder, members.NameOf(member), reason, members.NameOf(next));
                    members.Failed(member);
                    Abandon(member); // a campaign waiting on that member is made again on the next
                    member = next;
                    renewals.Forget();
                    moves = renewals.Confirmed != answered ? 1 : moves + 1;
                    if (moves > 1)
                    {
                        await Task.Delay(TimeSpan.FromMilliseconds(100), held.Token); // every member failed in turn: not in a tight loop
                    }

                    continue;
                }

                break; // the lease is gone
            }
        }
        catch (Exception e) when (e is OperationCanceledException or RpcException or IOException or InvalidOperationException && held.IsCancellationRequested)
        {
        }

        // The lease is gone: the term ends; a campaign still waiting is ended.
        await held.CancelAsync();
    }

    /// <summary>Renews on one member until the lease is gone (null) or the member fails or stops answering (why).</summary>
    private async Task<string?> RenewOnAsync(GrpcChannel member, long id, Renewals renewals, CancellationToken held)
    {
        using var stream = CancellationTokenSource.CreateLinkedTokenSource(held);
        using var call = new Lease.LeaseClient(member).LeaseKeepAlive(headers: EtcdMembers.RequireLeader, cancellationToken: stream.Token);
        var gone = false;
        var reading = Task.Run(async () =>
        {
            while (await call.ResponseStream.MoveNext(stream.Token))
            {
                if (call.ResponseStream.Current.TTL <= 0)
                {
                    gone = true;
                    return;
                }

                renewals.Answered();
            }
        });
        try
        {
            var next = Stopwatch.GetTimestamp();
            while (!reading.IsCompleted)
            {
                if (renewals.Waiting() > RenewalTimeout)
                {
                    return $"no answer for {renewals.Waiting().TotalSeconds:0.0} s";
                }

                if (Stopwatch.GetTimestamp() >= next)
                {
                    next = Stopwatch.GetTimestamp() + (long)(RenewEvery.TotalSeconds * Stopwatch.Frequency);
                    renewals.Sent(Stopwatch.GetTimestamp());
                    var write = call.RequestStream.WriteAsync(new LeaseKeepAliveRequest { ID = id }, stream.Token);
                    await Task.WhenAny(write, reading, Task.Delay(RenewalTimeout, held));
                    if (!write.IsCompletedSuccessfully && !reading.IsCompleted)
                    {
                        return write.IsFaulted ? write.Exception!.InnerException!.Message : $"a renewal could not be sent within {RenewalTimeout.TotalSeconds:0.0} s";
                    }
                }

                await Task.WhenAny(reading, Task.Delay(CheckEvery, held));
            }

            await reading;
            return gone ? null : "the member ended the renewal stream";
        }
        catch (Exception e) when (e is RpcException or IOException or InvalidOperationException && !held.IsCancellationRequested)
        {
            return e is RpcException rpc ? $"{rpc.StatusCode}: {rpc.Status.Detail}" : e.Message;
        }
        finally
        {
            await stream.CancelAsync();
            try
            {
                await reading;
            }
            catch (Exception e) when (e is RpcException or IOException or InvalidOperationException or OperationCanceledException)
            {
            }
        }
    }

    private async Task ResignAsync(LeaderKey key)
    {
        try
        {
            await new Election.ElectionClient(members.Current).ResignAsync(new ResignRequest { Leader = key }, deadline: DateTime.UtcNow.AddSeconds(1));
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
            var response = await members.CallAsync(
                m => new Election.ElectionClient(m).LeaderAsync(new LeaderRequest { Name = ByteString.CopyFromUtf8(name) }, headers: EtcdMembers.RequireLeader, deadline: DateTime.UtcNow + EtcdMembers.QuickCallTimeout, cancellationToken: cancellationToken).ResponseAsync,
                cancellationToken, EtcdMembers.QuickCallTimeout);
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

    [LoggerMessage(Level = LogLevel.Warning, Message = "{Holder}: no lease renewal confirmed for {Seconds} s; not acting as leader (term {Term}) until one is, or until the lease is known gone")]
    private static partial void LogPaused(ILogger logger, string holder, double seconds, long term);

    [LoggerMessage(Level = LogLevel.Information, Message = "{Holder} leads again (term {Term}): a lease renewal was confirmed")]
    private static partial void LogActingAgain(ILogger logger, string holder, long term);

    [LoggerMessage(Level = LogLevel.Warning, Message = "{Holder}: campaign failed ({Reason}); campaigning again in {Seconds} s")]
    private static partial void LogCampaignFailed(ILogger logger, string holder, string reason, double seconds);

    [LoggerMessage(Level = LogLevel.Warning, Message = "{Holder}: lease renewals on etcd member {Member} failed ({Reason}); renewing through {Next}")]
    private static partial void LogRenewalMoved(ILogger logger, string holder, string member, string reason, string next);
}
