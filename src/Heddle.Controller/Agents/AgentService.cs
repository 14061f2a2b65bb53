using System.Diagnostics;
using Grpc.Core;
using Heddle.Contracts.Agents;
using Heddle.Contracts.Api;
using Heddle.Controller.Reconciliation;
using Heddle.Controller.Store;
using Heddle.Controller.Trust;
using Microsoft.Extensions.Logging;

namespace Heddle.Controller.Agents;

/// <summary>
/// The agents' gRPC endpoint. An agent enrols once (a join token and a signing request buy a node certificate), then
/// opens one Connect stream over mutual TLS, says what it runs (Hello, for the node its certificate names and no
/// other), and sends heartbeats (as datagrams when it can: <see cref="HeartbeatDatagrams"/>) and instance reports while
/// goal states come down.
/// </summary>
public sealed partial class AgentService(
    IClusterStore store, AgentSessions sessions, NodeHealthMonitor health, EventLog events, Tokens tokens, NodeCertificates certificates,
    CertificateAuthority ca, NodeReachability reachability, TimeProvider time, Metrics.ControllerMetrics metrics, IMachineStore machines,
    KeepaliveClock keepalives, HeartbeatDatagrams datagrams, HostRollouts.HostRolloutControl? hostRollouts = null, ILogger<AgentService>? logger = null)
    : Heddle.Contracts.Agents.AgentService.AgentServiceBase
{
    public override async Task<CertificateReply> Enroll(EnrollRequest request, ServerCallContext context)
    {
        // The token is checked before the controller connects anywhere for a caller (no probes for strangers), and used
        // up only after, so a node refused for its address can try again with the same token.
        if (tokens.UsableJoinToken(request.JoinToken) is not { } join)
        {
            throw await TokenRefusalAsync(request, context);
        }

        var machine = machines.GetMachine(request.NodeName);
        if (Machines.MachineEnrolment.Refusal(join, request.NodeName, machine is not null) is { } misnamed)
        {
            await events.AddAsync(EventKind.NodeRefused, Printable.Of(request.NodeName), $"an agent at {context.Peer} was refused enrolment: {misnamed}");
            throw new RpcException(new Status(StatusCode.PermissionDenied, misnamed));
        }

        if (!string.IsNullOrEmpty(request.Address)
            && await reachability.RefusalAsync(request.NodeName, request.Address, request.LogPort, context.GetHttpContext().Connection.LocalIpAddress, context.CancellationToken) is { } unreachable)
        {
            await events.AddAsync(EventKind.NodeRefused, Printable.Of(request.NodeName), $"an agent at {context.Peer} was refused enrolment: {unreachable}");
            throw new RpcException(new Status(StatusCode.FailedPrecondition, unreachable));
        }

        if (await tokens.UseJoinTokenAsync(request.JoinToken, context.CancellationToken) is null)
        {
            throw await TokenRefusalAsync(request, context);
        }

        // A disk-less machine (set to a host image) booting again lost its certificate with its memory: its own machine's
        // join string, which only its boot is given, enrols it again in place of the one it had.
        var again = Machines.MachineEnrolment.EnrolsAgain(join, machine);
        var (certificate, refusal) = await certificates.EnrolAsync(request.NodeName, request.SigningRequest, context.CancellationToken, replaceInForce: again);
        if (certificate is null)
        {
            await events.AddAsync(EventKind.NodeRefused, Printable.Of(request.NodeName), $"an agent at {context.Peer} was refused enrolment: {refusal}");
            throw new RpcException(new Status(StatusCode.PermissionDenied, refusal!));
        }

        await events.AddAsync(EventKind.NodeEnrolled, request.NodeName, $"node {request.NodeName} enrolled from {context.Peer}: certificate {certificate.SerialNumber[..12]}, valid until {certificate.NotAfter.ToUniversalTime():u}"
            + (again ? $" (disk-less machine {machine!.Name} booted host image {machine.HostImage} again; any earlier certificate of the node is revoked)" : string.Empty));
        return Reply(certificate);
    }

    private async Task<RpcException> TokenRefusalAsync(EnrollRequest request, ServerCallContext context)
    {
        await events.AddAsync(EventKind.NodeRefused, Printable.Of(request.NodeName), $"an agent at {context.Peer} tried to enrol as node {Printable.Of(request.NodeName)} with a join token that is unknown, expired, used up or revoked");
        return new RpcException(new Status(StatusCode.Unauthenticated, "the join token is unknown, expired, used up or revoked; make one with 'heddle token create --join'"));
    }

    public override async Task<CertificateReply> Renew(RenewRequest request, ServerCallContext context)
    {
        var node = Authenticate(context);
        var (certificate, refusal) = await certificates.RenewAsync(node, request.SigningRequest, context.CancellationToken);
        if (certificate is null)
        {
            throw new RpcException(new Status(StatusCode.InvalidArgument, refusal!));
        }

        return Reply(certificate);
    }

    private CertificateReply Reply(System.Security.Cryptography.X509Certificates.X509Certificate2 certificate)
    {
        using (certificate)
        {
            return new CertificateReply { Certificate = certificate.ExportCertificatePem(), CaCertificate = ca.CertificatePem };
        }
    }

    /// <summary>The node the caller's certificate proves, or an Unauthenticated error.</summary>
    private string Authenticate(ServerCallContext context) =>
        certificates.NodeOf(context.GetHttpContext().Connection.ClientCertificate)
        ?? throw new RpcException(new Status(StatusCode.Unauthenticated, "a node certificate in force is required: enrol with 'heddle agent --join <join string>' (a removed node must enrol again)"));


    public override async Task Connect(IAsyncStreamReader<AgentMessage> requestStream, IServerStreamWriter<ControllerMessage> responseStream, ServerCallContext context)
    {
        var node = Authenticate(context);
        if (!await requestStream.MoveNext(context.CancellationToken) || requestStream.Current.BodyCase != AgentMessage.BodyOneofCase.Hello)
        {
            throw new RpcException(new Status(StatusCode.InvalidArgument, "the first message on the stream must be Hello"));
        }

        var hello = requestStream.Current.Hello;
        if (hello.Node.Name != node)
        {
            await events.AddAsync(EventKind.NodeRefused, node, $"node {node} said hello as {Printable.Of(hello.Node.Name)}; refused");
            throw new RpcException(new Status(StatusCode.PermissionDenied, $"this certificate is node {node}'s; it cannot speak for node {Printable.Of(hello.Node.Name)}"));
        }

        // Enrolment checked the address the node had then; one that comes back at another is checked again (a node
        // met for the first time too: it may have enrolled with a controller that did not check). The agent logs the
        // refusal and tries again with its backoff.
        if (store.GetNode(node)?.Address != hello.Node.Address && Uri.TryCreate(hello.Node.LogUrl, UriKind.Absolute, out var logs)
            && await reachability.RefusalAsync(node, hello.Node.Address, logs.Port, context.GetHttpContext().Connection.LocalIpAddress, context.CancellationToken) is { } unreachable)
        {
            await events.AddAsync(EventKind.NodeRefused, node, $"node {node} said hello from {context.Peer} and was refused: {unreachable}");
            throw new RpcException(new Status(StatusCode.FailedPrecondition, unreachable));
        }

        // The node joins (a store write) and the instances the Hello names are recorded (one write each) once the stream
        // is writing, below: done first, a node on a slow or busy store kept the agent waiting past its 5 s silence limit,
        // and it hung up and said Hello again, for ever. At 1,000 nodes the joins, one at a time, were that busy store:
        // every agent hung up before its join was written, and said Hello again.
        var pendingHello = hello;
        var streamSession = 0L; // the store's session of this stream, once its Hello is taken: reports made on it are refused once another stream of the node has opened
        var unsent = new UnsentReports(MaxUnsentReports, hello.Instances);
        var session = sessions.Open(node);
        using var linked = CancellationTokenSource.CreateLinkedTokenSource(context.CancellationToken, session.Closed);
        // The stream lasts no longer than the certificate that opened it: the agent comes back with its renewed one.
        var expires = context.GetHttpContext().Connection.ClientCertificate!.NotAfter.ToUniversalTime() - time.GetUtcNow().UtcDateTime;
        if (expires < TimeSpan.FromDays(1))
        {
            linked.CancelAfter(expires > TimeSpan.Zero ? expires : TimeSpan.Zero); // longer waits are beyond a timer's range and a stream's life
        }
        metrics.StreamOpened();
        using var beats = hello.TakesDatagramHeartbeats && datagrams.EndPoint is not null ? datagrams.Register(node) : null;
        var offer = beats is null ? null : Offer(beats, datagrams.EndPoint!.Port, context.GetHttpContext().Connection.LocalIpAddress);
        // Whether the stream was replaced is asked at each message it brings, and at each keepalive turn: a stream whose
        // heartbeats come as datagrams may bring none for as long as it lives. The turn is taken on the clock's thread,
        // and wakes the writer only for a keepalive to send.
        var writer = WriteGoalsAsync(session, new GoalSender(hello.TakesPeerChanges, hello.TakesInstanceChanges), responseStream, metrics, offer, beats, linked.Token);
        using var turns = keepalives.Join(() =>
        {
            try
            {
                if (Replaced())
                {
                    _ = linked.CancelAsync(); // the stream's own callbacks run on the pool, not on the clock's thread
                }
                else if (beats?.NeedsKeepalive() != false)
                {
                    session.KeepaliveDue();
                }
            }
            catch (ObjectDisposedException)
            {
                // The stream ended while its turn was on its way: there is nothing left to wake.
            }
        });
        // The Hello names each of the node's cores (about 5 KB of messages): held by this method for the stream's life, it
        // was 50 MB of an idle controller at 10,000 nodes. The join still has it (pendingHello) until it is written.
        hello = null!;

        // What the node says is recorded by a task of its own while the stream goes on being read: the node joins (a
        // store write), then each report is written. Read in turns with the writes, the stream waited a store round trip
        // per report, and an instance's Downloading, Starting and Ready, sent together, took three of them; now those that
        // come while a write is on its way wait for the next, and only the newest of an instance's is written.
        var wake = System.Threading.Channels.Channel.CreateBounded<bool>(new System.Threading.Channels.BoundedChannelOptions(1)
        {
            FullMode = System.Threading.Channels.BoundedChannelFullMode.DropWrite,
        });
        var recorder = RecordUntilEndedAsync();
        try
        {
            while (await requestStream.MoveNext(linked.Token))
            {
                health.Seen(node);
                var message = requestStream.Current;
                if (message.BodyCase == AgentMessage.BodyOneofCase.Heartbeat)
                {
                    metrics.Heartbeat(datagram: false);
                    beats?.StreamHeartbeat(); // its agent does not hear the datagrams' answers: keepalives go on the stream
                }

                if (message.BodyCase == AgentMessage.BodyOneofCase.Report)
                {
                    unsent.Offer(message.Report); // the newest of each instance, within a bound
                    wake.Writer.TryWrite(true);
                }

                if (message.BodyCase == AgentMessage.BodyOneofCase.RebootRefused && hostRollouts is not null)
                {
                    var refused = message.RebootRefused;
                    await TryAsync(() => hostRollouts.RefusedAsync(node, refused.Reason.Length > 500 ? refused.Reason[..500] : refused.Reason, linked.Token));
                }

                if (Volatile.Read(ref pendingHello) is not null)
                {
                    wake.Writer.TryWrite(true); // the join is tried again with each message while the store cannot take it
                }
                else if (Replaced())
                {
                    await linked.CancelAsync();
                }
            }
        }
        catch (OperationCanceledException)
        {
        }
        finally
        {
            wake.Writer.TryComplete();
            try
            {
                await recorder;
            }
            finally
            {
                sessions.Close(session);
                await writer;
            }
        }

        async Task RecordUntilEndedAsync()
        {
            try
            {
                do
                {
                    wake.Reader.TryRead(out _);
                    // The stream outlives a store that cannot take writes (etcd without a quorum): the node stays
                    // connected (so it does not fence itself and its instances run on), and what it says is written
                    // once the store takes it again.
                    if (pendingHello is { } joining && await TryAsync(async () => streamSession = await JoinAsync(joining)))
                    {
                        Volatile.Write(ref pendingHello, null);
                    }

                    await RecordAsync();
                }
                while (await wake.Reader.WaitToReadAsync(linked.Token));
            }
            catch (OperationCanceledException)
            {
            }
            catch
            {
                await linked.CancelAsync(); // a write that failed otherwise ends the stream, as it did when written in turn
                throw;
            }
        }

        // Whether the node said Hello again since (here or to another controller), so what this stream says is refused:
        // a stream still open here is one its agent gave up on, or whose Hello was taken late. Ended, it is not heard
        // again; a live agent says Hello again and is heard on that stream.
        bool Replaced()
        {
            if (Volatile.Read(ref pendingHello) is not null || store.NodeSession(node) == Volatile.Read(ref streamSession))
            {
                return false;
            }

            if (logger is not null)
            {
                LogStreamReplaced(logger, node);
            }

            return true;
        }

        // What the node reported and the store has not taken yet (all of it, once the node has joined). A report that a
        // newer one of the same instance replaced while it was written stays for the next round.
        async Task RecordAsync()
        {
            foreach (var report in pendingHello is null ? unsent.Snapshot() : [])
            {
                if (!await TryAsync(() => ReportAsync(node, report, streamSession)))
                {
                    break;
                }

                unsent.Written(report);
            }

            if (Replaced())
            {
                await linked.CancelAsync();
            }
        }
    }

    /// <summary>
    /// The datagram heartbeats offered to a stream: its id and key, and where to send them: the address the agent's
    /// connection reached (so a controller listening on every address is sent to on the one the agent can reach).
    /// </summary>
    private static ControllerMessage? Offer(HeartbeatDatagrams.Registration beats, int port, System.Net.IPAddress? reached)
    {
        if (reached is null)
        {
            return null;
        }

        var address = reached.IsIPv4MappedToIPv6 ? reached.MapToIPv4() : reached;
        return new ControllerMessage
        {
            Datagrams = new HeartbeatDatagramOffer
            {
                Stream = beats.Id, Key = Google.Protobuf.ByteString.CopyFrom(beats.Key), Address = address.ToString(), Port = port,
            },
        };
    }

    /// <summary>How many instances' reports of a stream may wait to be written (a node runs far fewer instances).</summary>
    internal const int MaxUnsentReports = 4096;

    /// <summary>Runs a write; false when the store cannot take it now (it is tried again with the node's next message).</summary>
    private static async Task<bool> TryAsync(Func<Task> write)
    {
        try
        {
            await write();
            return true;
        }
        catch (Store.Kv.KvUnavailableException)
        {
            return false;
        }
    }

    /// <summary>The node joins, or comes back: a new session of it is opened (returned), and it is recorded Ready.</summary>
    private async Task<long> JoinAsync(Hello hello)
    {
        var info = hello.Node;
        var streamSession = await store.OpenNodeSessionAsync(info.Name);
        var previous = store.GetNode(info.Name);
        var (faultDomain, labels) = Machines.MachineEnrolment.Placement(machines.GetMachine(info.Name), info.FaultDomain, info.Labels);
        var record = new NodeRecord
        {
            Name = info.Name,
            Address = info.Address,
            FaultDomain = faultDomain,
            Labels = labels,
            MemoryMiB = info.MemoryMib,
            Cores = [.. info.Cores.Select(c => (IReadOnlyList<int>)[.. c.Cpus])],
            LogUrl = info.LogUrl,
            Isolation = string.IsNullOrEmpty(info.Isolation) ? null : info.Isolation,
            Drivers = info.Drivers.Count == 0 ? [Heddle.Model.Definition.DriverNames.Process] : [.. info.Drivers],
            HostImage = HostImages.HostImageRules.NameError(info.HostImage) is null ? info.HostImage : null, // what an agent says is shown as a name, or not at all
            Condition = previous?.Condition == NodeCondition.Draining ? NodeCondition.Draining : NodeCondition.Ready,
            LastSeen = time.GetUtcNow(),
        };
        // A node that comes back as it was, Ready, is not written again (read under the health monitor's lock, so it is
        // not being judged Down meanwhile): after a controller restart or a wave of reconnections a thousand nodes say
        // Hello at once, and their joins are written one at a time.
        // The change feed gives the reconcilers what a node that joined, came back or changed has for them to do.
        var told = previous is null ? new NewEvent(EventKind.NodeJoined, info.Name, $"node {info.Name} joined: {info.Address}, fault domain {faultDomain}, {info.Cores.Sum(c => c.Cpus.Count)} CPUs, {info.MemoryMib} MiB")
            : previous.Condition == NodeCondition.Down ? new NewEvent(EventKind.NodeUp, info.Name, $"node {info.Name} is back; it keeps only what it still owns")
            : null;
        await health.JoinAsync(info.Name, () => store.GetNode(info.Name) is { Condition: NodeCondition.Ready } now && now.SameAs(record) ? Task.CompletedTask : store.PutNodeAsync(record, told: told));

        // An instance of a service being deleted that the node no longer runs: its Stopped report may have gone to a
        // controller that is gone, and the deletion waits on it.
        var running = hello.Instances.Select(r => r.InstanceId).ToHashSet(StringComparer.Ordinal);
        foreach (var gone in store.ListInstancesOnNode(info.Name).Where(i => !running.Contains(i.Id) && store.GetService(i.Service) is { Deleting: true }))
        {
            await ReportAsync(info.Name, new InstanceReport { InstanceId = gone.Id, State = InstanceStates.Stopped, Generation = gone.Generation, Revision = gone.RunningRevision }, streamSession);
        }

        return streamSession;
    }

    /// <summary>Whether the store has what the report says already.</summary>
    private static bool Unchanged(InstanceRecord known, string node, InstanceReport report, InstanceState state) =>
        known.Node == node && known.Generation == report.Generation && known.State == state && known.Reason == (string.IsNullOrEmpty(report.Reason) ? null : report.Reason)
        && known.Restarts == report.Restarts && known.Pid == report.Pid && known.RunningRevision == report.Revision
        && known.DiskUsedMiB == report.DiskUsedMib && known.DiskSizeMiB == report.DiskSizeMib
        && (string.IsNullOrEmpty(report.Failure) || (known.LastFailure == report.Failure && known.LastStderr == (string.IsNullOrEmpty(report.LastStderr) ? null : report.LastStderr)))
        && known.Ports.Count == report.Ports.Count && report.Ports.All(p => known.Ports.TryGetValue(p.Key, out var port) && port == p.Value);

    private async Task ReportAsync(string node, InstanceReport report, long streamSession)
    {
        // A report that names no instance or no state the store knows is not the agent's protocol: it changes nothing.
        var parts = report.InstanceId.Split('/');
        if (parts.Length != 3 || !int.TryParse(parts[2], out var index) || InstanceStateWords.Parse(report.State) is not { } state)
        {
            return;
        }

        var before = store.GetInstance(parts[0], parts[1], index); // not the service's listing: made again after every report
        if (before is not null && Unchanged(before, node, report, state))
        {
            // Said again (a Hello after a reconnection names every instance): a write would change nothing but its time.
            return;
        }

        // The event of a change of state goes in the report's own commit: one store write per report.
        NewEvent? changed = null;
        if (before is null || before.State != state || before.Restarts != report.Restarts)
        {
            var why = string.IsNullOrEmpty(report.Reason) ? string.Empty : $": {report.Reason}";
            changed = new NewEvent(EventKind.InstanceState, report.InstanceId, $"{report.State} on node {node}{why}", store.GetService(parts[0]) is { } service ? EventOwner.Of(service) : null);
        }

        // What follows a report (a health gate opened, a deployment finished, the role's peers told) the change feed sets going.
        await store.UpdateInstanceStatusAsync(new InstanceReportRecord(node, parts[0], parts[1], index, report.Generation, state,
            string.IsNullOrEmpty(report.Reason) ? null : report.Reason)
        {
            Ports = report.Ports.ToDictionary(),
            Restarts = report.Restarts,
            Pid = report.Pid,
            Revision = report.Revision,
            Failure = string.IsNullOrEmpty(report.Failure) ? null : report.Failure,
            LastStderr = string.IsNullOrEmpty(report.LastStderr) ? null : report.LastStderr,
            DiskUsedMiB = report.DiskUsedMib,
            DiskSizeMiB = report.DiskSizeMib,
            Session = streamSession,
        }, changed);
    }

    /// <summary>
    /// Goal states as they come (whole, or what changed of their peers: <see cref="GoalSender"/>), and a keepalive when
    /// one is due (<see cref="KeepaliveClock"/>, each second, unless the answers to its heartbeat datagrams are its
    /// keepalives: <see cref="HeartbeatDatagrams"/>), which says the last heartbeat datagram heard; the agent fences
    /// itself without them. The datagrams' offer, when there is one, goes first, then a keepalive.
    /// </summary>
    private static async Task WriteGoalsAsync(AgentSession session, GoalSender sender, IServerStreamWriter<ControllerMessage> stream, Metrics.ControllerMetrics metrics,
        ControllerMessage? offer, HeartbeatDatagrams.Registration? beats, CancellationToken cancellationToken)
    {
        try
        {
            if (offer is not null)
            {
                await stream.WriteAsync(offer, cancellationToken);
            }

            session.KeepaliveDue(); // one at once: the agent hears this controller before its goal state is made and sent
            var sequence = 0L;
            while (true)
            {
                if (!session.Pending && !await session.WaitForChangeAsync(cancellationToken))
                {
                    return;
                }

                if (session.TakeKeepalive()) // both due: the keepalive first
                {
                    var keepaliveMessage = new ControllerMessage { Keepalive = new Keepalive { Sequence = ++sequence, Heard = beats?.Heard ?? 0 } };
                    var started = Stopwatch.GetTimestamp();
                    await stream.WriteAsync(keepaliveMessage, cancellationToken);
                    metrics.Sent("keepalive", keepaliveMessage.CalculateSize(), Stopwatch.GetElapsedTime(started));
                }

                if (session.TakeChanged() is { } next && sender.Next(next) is { } message)
                {
                    var started = Stopwatch.GetTimestamp();
                    await stream.WriteAsync(message, cancellationToken);
                    metrics.Sent(message.BodyCase == ControllerMessage.BodyOneofCase.Peers ? "peers" : "goal", message.CalculateSize(), Stopwatch.GetElapsedTime(started));
                }
            }
        }
        catch (Exception e) when (e is OperationCanceledException or InvalidOperationException or IOException)
        {
            // The stream ended; the agent reconnects and gets its whole goal state again.
        }
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "Node {Node} said hello on another stream since this one's: this stream is ended, and what it still says is not taken")]
    private static partial void LogStreamReplaced(ILogger logger, string node);
}
