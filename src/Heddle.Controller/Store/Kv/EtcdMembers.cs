using System.Net.Security;
using System.Security.Cryptography.X509Certificates;
using Grpc.Core;
using Grpc.Net.Client;

namespace Heddle.Controller.Store.Kv;

/// <summary>
/// How a controller reaches etcd: the members, and with TLS the CA their certificates chain to and this controller's
/// client certificate (etcd started with --client-cert-auth refuses a client without one).
/// </summary>
public sealed record EtcdConnection(IReadOnlyList<Uri> Members, X509Certificate2Collection? TrustedCa = null, X509Certificate2? ClientCertificate = null)
{
    public bool UsesTls => ClientCertificate is not null || TrustedCa is not null;
}

/// <summary>
/// The members of an etcd cluster, one gRPC channel each, and which one calls go to now: a member that does not answer
/// is left for the next. Shared by the store and the leader election of one controller.
/// A member can vanish without a word (its host dropped from the network): every channel pings its member every
/// <see cref="PingEvery"/> and gives up on it after <see cref="PingTimeout"/> without an answer, which fails every call
/// and stream on it at once; every unary call also has a deadline.
/// </summary>
public sealed class EtcdMembers : IDisposable
{
    private readonly GrpcChannel[] _channels;
    private readonly string[] _names;
    private int _current;

    public EtcdMembers(IReadOnlyList<Uri> members)
        : this(new EtcdConnection(members))
    {
    }

    public EtcdMembers(EtcdConnection connection)
    {
        if (connection.Members.Count == 0)
        {
            throw new ArgumentException("name at least one etcd member (http://host:port)");
        }

        _names = [.. connection.Members.Select(m => m.Authority)];
        _channels = [.. connection.Members.Select(m => GrpcChannel.ForAddress(connection.UsesTls ? new UriBuilder(m) { Scheme = Uri.UriSchemeHttps }.Uri : m, new GrpcChannelOptions
        {
            MaxReceiveMessageSize = 64 << 20,
            HttpHandler = Handler(connection),
            // A member back from a partition is used again within seconds (gRPC's default backoff grows to 2 minutes).
            InitialReconnectBackoff = TimeSpan.FromMilliseconds(200),
            MaxReconnectBackoff = TimeSpan.FromSeconds(2),
            DisposeHttpClient = true,
        }))];
    }

    /// <summary>
    /// Connects to every member now (in the background), so that moving to another member when one fails costs no
    /// handshake; the pings keep the connections up.
    /// </summary>
    public void ConnectAll()
    {
        foreach (var channel in _channels)
        {
            _ = channel.ConnectAsync().ContinueWith(t => _ = t.Exception, TaskScheduler.Default);
        }
    }

    /// <summary>How often an idle or busy channel checks that its member still answers.</summary>
    public static TimeSpan PingEvery { get; } = TimeSpan.FromSeconds(1);

    /// <summary>How long a ping may go unanswered before the member's connection is taken for dead.</summary>
    public static TimeSpan PingTimeout { get; } = TimeSpan.FromSeconds(2);

    /// <summary>How long a new connection to a member may take (a host that is gone never answers the SYN).</summary>
    public static TimeSpan ConnectTimeout { get; } = TimeSpan.FromSeconds(2);

    private static SocketsHttpHandler Handler(EtcdConnection connection)
    {
        var handler = new SocketsHttpHandler
        {
            KeepAlivePingDelay = PingEvery,
            KeepAlivePingTimeout = PingTimeout,
            KeepAlivePingPolicy = HttpKeepAlivePingPolicy.Always,
            ConnectTimeout = ConnectTimeout,
            EnableMultipleHttp2Connections = true,
            PooledConnectionIdleTimeout = Timeout.InfiniteTimeSpan,
        };
        if (connection.UsesTls)
        {
            handler.SslOptions = new SslClientAuthenticationOptions
            {
                ClientCertificates = connection.ClientCertificate is null ? null : [connection.ClientCertificate],
                RemoteCertificateValidationCallback = connection.TrustedCa is null ? null : (_, certificate, _, errors) => Verify(certificate, errors, connection.TrustedCa),
            };
        }

        return handler;
    }

    /// <summary>A member's certificate must chain to the given CA alone (not the machine's roots), be for server use and name the address dialled.</summary>
    internal static bool Verify(X509Certificate? certificate, SslPolicyErrors errors, X509Certificate2Collection trusted)
    {
        if (certificate is null || (errors & (SslPolicyErrors.RemoteCertificateNameMismatch | SslPolicyErrors.RemoteCertificateNotAvailable)) != 0)
        {
            return false;
        }

        using var chain = new X509Chain();
        chain.ChainPolicy.TrustMode = X509ChainTrustMode.CustomRootTrust;
        chain.ChainPolicy.CustomTrustStore.AddRange(trusted);
        chain.ChainPolicy.RevocationMode = X509RevocationMode.NoCheck;
        chain.ChainPolicy.ApplicationPolicy.Add(new System.Security.Cryptography.Oid("1.3.6.1.5.5.7.3.1")); // server auth: a client's certificate cannot pose as a member
        using var leaf = new X509Certificate2(certificate);
        return chain.Build(leaf);
    }

    public int Count => _channels.Length;

    public string Names => string.Join(", ", _names);

    /// <summary>The member calls go to now.</summary>
    public GrpcChannel Current => _channels[Volatile.Read(ref _current)];

    /// <summary>The member after this one, for a caller that keeps its own place (a lease renewal moving on).</summary>
    public GrpcChannel Next(GrpcChannel member) => _channels[(Array.IndexOf(_channels, member) + 1) % _channels.Length];

    /// <summary>The address of a member, for log lines.</summary>
    public string NameOf(GrpcChannel member) => _names[Math.Max(0, Array.IndexOf(_channels, member))];

    /// <summary>Moves on from a member that failed (unless another caller already has).</summary>
    public void Failed(GrpcChannel member)
    {
        var index = Array.IndexOf(_channels, member);
        var current = Volatile.Read(ref _current);
        if (index >= 0 && current == index)
        {
            Interlocked.CompareExchange(ref _current, (index + 1) % _channels.Length, current); // kept within 0..Count-1: a counter past the end never matched a member again
        }
    }

    /// <summary>
    /// Calls the current member, and the others in turn while they do not answer. A call made with
    /// <see cref="RequireLeader"/> is refused at once ("etcdserver: no leader") by a member that has no etcd leader — one
    /// cut off from the others, or back from a partition and not yet rejoined — rather than held until its deadline, and
    /// goes to the next member; while every member says so (etcd is electing), the round is made again until
    /// <paramref name="within"/> (default <see cref="CallTimeout"/>) has passed.
    /// </summary>
    public async Task<T> CallAsync<T>(Func<GrpcChannel, Task<T>> call, CancellationToken cancellationToken, TimeSpan? within = null)
    {
        RpcException? last = null;
        var started = System.Diagnostics.Stopwatch.GetTimestamp();
        for (var round = 0; ; round++)
        {
            var leaderless = 0;
            for (var tried = 0; tried < _channels.Length; tried++)
            {
                var member = Current;
                try
                {
                    return await call(member);
                }
                catch (RpcException e) when (Unreachable(e, cancellationToken))
                {
                    last = e;
                    Failed(member);
                    leaderless += NoLeader(e) ? 1 : 0;
                }
            }

            if (leaderless == 0 || System.Diagnostics.Stopwatch.GetElapsedTime(started) + ElectionPause >= (within ?? CallTimeout))
            {
                break;
            }

            await Task.Delay(ElectionPause, cancellationToken);
        }

        var reachable = await ReachableAsync(cancellationToken);
        var why = last is null ? string.Empty : string.IsNullOrEmpty(last.Status.Detail) ? $" ({last.StatusCode})" : $" ({last.StatusCode}: {last.Status.Detail})";
        throw new KvUnavailableException(reachable > _channels.Length / 2
            ? $"store busy: etcd did not answer within {CallTimeout.TotalSeconds:0} s though {reachable} of {_channels.Length} members are reachable{why}"
            : $"store unavailable: {reachable} of {_channels.Length} etcd members reachable{why}", last);
    }

    /// <summary>How long a call waits before going round the members again while they have no etcd leader.</summary>
    private static readonly TimeSpan ElectionPause = TimeSpan.FromMilliseconds(100);

    /// <summary>Whether a member refused a call because it has no etcd leader (asked with <see cref="RequireLeader"/>).</summary>
    public static bool NoLeader(RpcException e) => e.StatusCode == StatusCode.Unavailable && e.Status.Detail.Contains("no leader", StringComparison.Ordinal);

    /// <summary>How long one call may take before the next member is tried (etcd without a quorum holds a write until its own timeout).</summary>
    public static TimeSpan CallTimeout { get; } = TimeSpan.FromSeconds(5);

    /// <summary>How long a read that a user waits on (who leads now) may take on one member before the next is asked.</summary>
    public static TimeSpan QuickCallTimeout { get; } = TimeSpan.FromSeconds(1);

    /// <summary>A deadline for a call made now.</summary>
    public static DateTime Deadline() => DateTime.UtcNow + CallTimeout;

    /// <summary>
    /// Call options for a stream that must end when its member loses the etcd leader (a member cut off from the others
    /// would otherwise keep a watch or a lease renewal open and silent), and for a call that a member without a leader
    /// must refuse at once rather than hold until its deadline: etcd's "require leader" metadata.
    /// </summary>
    public static Metadata RequireLeader { get; } = new() { { "hasleader", "true" } };

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

    /// <summary>
    /// Whether a call failed because its member went away rather than because of what it asked. Cancelled counts when the
    /// caller did not cancel: the connection under the call was torn down (its keepalive ping went unanswered), which ends
    /// a stream's pending write or read that way.
    /// </summary>
    public static bool Unreachable(RpcException e, CancellationToken callerToken) =>
        !callerToken.IsCancellationRequested
        && e.StatusCode is StatusCode.Unavailable or StatusCode.DeadlineExceeded or StatusCode.Internal or StatusCode.Unknown or StatusCode.Cancelled;

    public void Dispose()
    {
        foreach (var channel in _channels)
        {
            channel.Dispose();
        }
    }
}
