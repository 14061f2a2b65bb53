using Grpc.Core;
using Grpc.Net.Client;

namespace Heddle.Controller.Store.Kv;

/// <summary>
/// The members of an etcd cluster, one gRPC channel each, and which one calls go to now: a member that does not answer
/// is left for the next. Shared by the store and the leader election of one controller.
/// </summary>
public sealed class EtcdMembers : IDisposable
{
    private readonly GrpcChannel[] _channels;
    private readonly string[] _names;
    private int _current;

    public EtcdMembers(IReadOnlyList<Uri> members)
    {
        if (members.Count == 0)
        {
            throw new ArgumentException("name at least one etcd member (http://host:port)");
        }

        _names = [.. members.Select(m => m.Authority)];
        _channels = [.. members.Select(m => GrpcChannel.ForAddress(m, new GrpcChannelOptions { MaxReceiveMessageSize = 64 << 20 }))];
    }

    public int Count => _channels.Length;

    public string Names => string.Join(", ", _names);

    /// <summary>The member calls go to now.</summary>
    public GrpcChannel Current => _channels[(int)((uint)Volatile.Read(ref _current) % (uint)_channels.Length)];

    /// <summary>Moves on from a member that failed (unless another caller already has).</summary>
    public void Failed(GrpcChannel member)
    {
        var index = Array.IndexOf(_channels, member);
        Interlocked.CompareExchange(ref _current, index + 1, index);
    }

    /// <summary>Calls the current member, and the others in turn while they do not answer.</summary>
    public async Task<T> CallAsync<T>(Func<GrpcChannel, Task<T>> call, CancellationToken cancellationToken)
    {
        RpcException? last = null;
        for (var tried = 0; tried < _channels.Length; tried++)
        {
            var member = Current;
            try
            {
                return await call(member);
            }
            catch (RpcException e) when (Unreachable(e.StatusCode) && !cancellationToken.IsCancellationRequested)
            {
                last = e;
                Failed(member);
            }
        }

        var reachable = await ReachableAsync(cancellationToken);
        var why = last is null ? string.Empty : string.IsNullOrEmpty(last.Status.Detail) ? $" ({last.StatusCode})" : $" ({last.StatusCode}: {last.Status.Detail})";
        throw new KvUnavailableException(reachable > _channels.Length / 2
            ? $"store busy: etcd did not answer within {CallTimeout.TotalSeconds:0} s though {reachable} of {_channels.Length} members are reachable{why}"
            : $"store unavailable: {reachable} of {_channels.Length} etcd members reachable{why}", last);
    }

    /// <summary>How long one call may take before the next member is tried (etcd without a quorum holds a write until its own timeout).</summary>
    public static TimeSpan CallTimeout { get; } = TimeSpan.FromSeconds(5);

    /// <summary>A deadline for a call made now.</summary>
    public static DateTime Deadline() => DateTime.UtcNow + CallTimeout;

    /// <summary>How many members answer a status request within a second: what an error says when the cluster cannot serve.</summary>
    public async Task<int> ReachableAsync(CancellationToken cancellationToken)
    {
        var answers = await Task.WhenAll(_channels.Select(async channel =>
        {
            try
            {
                await new Etcdserverpb.Maintenance.MaintenanceClient(channel).StatusAsync(new Etcdserverpb.StatusRequest(), deadline: DateTime.UtcNow.AddSeconds(1), cancellationToken: cancellationToken);
                return 1;
            }
            catch (RpcException)
            {
                return 0;
            }
        }));
        return answers.Sum();
    }

    public static bool Unreachable(StatusCode status) => status is StatusCode.Unavailable or StatusCode.DeadlineExceeded or StatusCode.Internal or StatusCode.Unknown;

    public void Dispose()
    {
        foreach (var channel in _channels)
        {
            channel.Dispose();
        }
    }
}
