using System.Runtime.CompilerServices;
using Etcdserverpb;
using Google.Protobuf;
using Grpc.Core;

namespace Heddle.Controller.Store.Kv;

/// <summary>
/// The key-value store on an etcd cluster (3.4 or later; the generated clients of dotnet-etcd): reads, multi-key
/// compare-and-swap transactions on mod revisions, and watches from a revision. A member that does not answer is
/// left for the next; when none answers the call fails with "store unavailable: ..." and the caller decides.
/// Keys live under <see cref="Root"/> so that a cluster can share etcd with others.
/// </summary>
public sealed class EtcdKeyValueStore : IKeyValueStore
{
    private readonly EtcdMembers _members;

    public EtcdKeyValueStore(IReadOnlyList<Uri> members, string root = "/heddle/")
        : this(new EtcdConnection(members), root)
    {
    }

    public EtcdKeyValueStore(EtcdConnection connection, string root = "/heddle/")
    {
        Root = root;
        _members = new EtcdMembers(connection);
    }

    /// <summary>Parses etcd://h1:2379,h2:2379 (the form `--store` takes) into member URLs.</summary>
    public static IReadOnlyList<Uri> ParseMembers(string store)
    {
        const string Scheme = "etcd://";
        if (!store.StartsWith(Scheme, StringComparison.Ordinal) || store.Length == Scheme.Length)
        {
            throw new FormatException($"'{store}' is not an etcd store: write etcd://host:port[,host:port...]");
        }

        return [.. store[Scheme.Length..].Split(',', StringSplitOptions.RemoveEmptyEntries).Select(m =>
            Uri.TryCreate($"http://{m.Trim()}", UriKind.Absolute, out var url) && url.Port > 0 && url.AbsolutePath == "/"
                ? url
                : throw new FormatException($"'{m}' in '{store}' is not host:port"))];
    }

    public string Root { get; }

    /// <summary>The members and which of them is used now (leader election shares them).</summary>
    public EtcdMembers Members => _members;

    public async Task<KvEntry?> GetAsync(string key, CancellationToken cancellationToken = default)
    {
        var response = await _members.CallAsync(c => new KV.KVClient(c).RangeAsync(new RangeRequest { Key = Bytes(key) }, headers: EtcdMembers.RequireLeader, deadline: EtcdMembers.Deadline(), cancellationToken: cancellationToken).ResponseAsync, cancellationToken);
        return response.Kvs.Count == 0 ? null : Entry(response.Kvs[0]);
    }

    public async Task<KvRange> ListAsync(string prefix, CancellationToken cancellationToken = default)
    {
        var request = new RangeRequest { Key = Bytes(prefix), RangeEnd = PrefixEnd(Root + prefix), SortOrder = RangeRequest.Types.SortOrder.Ascend, SortTarget = RangeRequest.Types.SortTarget.Key };
        var response = await _members.CallAsync(c => new KV.KVClient(c).RangeAsync(request, headers: EtcdMembers.RequireLeader, deadline: EtcdMembers.Deadline(), cancellationToken: cancellationToken).ResponseAsync, cancellationToken);
        return new KvRange([.. response.Kvs.Select(Entry)], response.Header.Revision);
    }

    public async Task<KvCommit> CommitAsync(IReadOnlyList<KvCondition> conditions, IReadOnlyList<KvWrite> writes, CancellationToken cancellationToken = default)
    {
        KvRules.CheckWrites(writes);
        var request = new TxnRequest();
        request.Compare.AddRange(conditions.Select(c => new Compare
        {
            Key = Bytes(c.Key), Target = Compare.Types.CompareTarget.Mod, Result = Compare.Types.CompareResult.Equal, ModRevision = c.ModRevision,
        }));
        request.Success.AddRange(writes.Select(w => w.Value is null
            ? new RequestOp { RequestDeleteRange = new DeleteRangeRequest { Key = Bytes(w.Key) } }
            : new RequestOp { RequestPut = new PutRequest { Key = Bytes(w.Key), Value = ByteString.CopyFrom(w.Value) } }));
        // Retrying on another member is safe: puts and deletes are idempotent, and a commit with conditions that did apply the
        // first time fails them the second time, which the caller takes as any conflict (it reads again).
        var response = await _members.CallAsync(c => new KV.KVClient(c).TxnAsync(request, headers: EtcdMembers.RequireLeader, deadline: EtcdMembers.Deadline(), cancellationToken: cancellationToken).ResponseAsync, cancellationToken);
        return new KvCommit(response.Succeeded, response.Header.Revision);
    }

    public async IAsyncEnumerable<KvEvent> WatchAsync(string prefix, long fromRevision, [EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        var next = fromRevision;
        var failures = 0;
        while (true)
        {
            var channel = _members.Current;
            using var call = new Watch.WatchClient(channel).Watch(headers: EtcdMembers.RequireLeader, cancellationToken: cancellationToken);
            var events = new List<KvEvent>();
            var failed = false;
            try
            {
                await call.RequestStream.WriteAsync(new WatchRequest
                {
                    CreateRequest = new WatchCreateRequest { Key = Bytes(prefix), RangeEnd = PrefixEnd(Root + prefix), StartRevision = next > 0 ? next : 0 },
                }, cancellationToken);
            }
            catch (Exception e) when (LostMember(e, cancellationToken))
            {
                failed = true;
            }

            var stream = call.ResponseStream;
            while (!failed)
            {
                try
                {
                    if (!await stream.MoveNext(cancellationToken))
                    {
                        failed = true;
                        break;
                    }
                }
                catch (Exception e) when (LostMember(e, cancellationToken))
                {
                    failed = true;
                    break;
                }
                catch (RpcException e) when (e.StatusCode == StatusCode.Cancelled && cancellationToken.IsCancellationRequested)
                {
                    throw new OperationCanceledException(cancellationToken); // as every store's watch ends when cancelled
                }

                var response = stream.Current;
                if (response.CompactRevision != 0)
                {
                    throw new KvCompactedException(next, response.CompactRevision);
                }

                if (response.Canceled)
                {
                    throw new KvUnavailableException($"store unavailable: etcd cancelled the watch ({response.CancelReason})");
                }

                failures = 0;
                events.Clear();
                // etcd never splits a revision's changes over two responses (its watch guarantees it), so the last
                // change of each revision in a response ends its commit.
                events.AddRange(KvEvent.MarkCommitEnds([.. response.Events.Select(e => new KvEvent(
                    e.Type == Mvccpb.Event.Types.EventType.Put ? KvEventKind.Put : KvEventKind.Delete,
                    Key(e.Kv.Key), e.Type == Mvccpb.Event.Types.EventType.Put ? e.Kv.Value.ToByteArray() : null, e.Kv.ModRevision))]));
                foreach (var change in events)
                {
                    next = change.Revision + 1;
                    yield return change;
                }
            }

            if (failed)
            {
                // Resume on the next member from the revision after the last one delivered: nothing is lost or repeated. A member
                // without a quorum ends the watch at once (it is asked to: hasleader), so while etcd has no quorum this goes
                // round the members every 2 s at most, for as long as it takes, rather than giving up.
                _members.Failed(channel);
                failures++;
                await Task.Delay(TimeSpan.FromMilliseconds(Math.Min(2000, 100 * failures)), cancellationToken);
                if (next <= 0)
                {
                    next = (await ListAsync(prefix, cancellationToken)).Revision + 1;
                }
            }
        }
    }

    /// <summary>
    /// The watch's member went away: an error status, or the HTTP/2 stream reset under the call, which the gRPC client
    /// lets through as an IOException ("Connection reset by peer") when the member dies as the watch is made or read.
    /// </summary>
    private static bool LostMember(Exception e, CancellationToken cancellationToken) =>
        e is RpcException r ? EtcdMembers.Unreachable(r, cancellationToken) : e is IOException && !cancellationToken.IsCancellationRequested;

    private ByteString Bytes(string key) => ByteString.CopyFromUtf8(Root + key);

    private string Key(ByteString key) => key.ToStringUtf8()[Root.Length..];

    private KvEntry Entry(Mvccpb.KeyValue kv) => new(Key(kv.Key), kv.Value.ToByteArray(), kv.CreateRevision, kv.ModRevision);

    /// <summary>The smallest key after every key with this prefix (etcd's range end for a prefix).</summary>
    private static ByteString PrefixEnd(string prefix)
    {
        var bytes = System.Text.Encoding.UTF8.GetBytes(prefix);
        for (var i = bytes.Length - 1; i >= 0; i--)
        {
            if (bytes[i] < 0xff)
            {
                bytes[i]++;
                return ByteString.CopyFrom(bytes, 0, i + 1);
            }
        }

        return ByteString.CopyFrom(0); // every key
    }

    public ValueTask DisposeAsync()
    {
        _members.Dispose();
        return ValueTask.CompletedTask;
    }
}
