using System.Diagnostics;
using System.Text.Json;

namespace Heddle.Controller.Store.Kv;

/// <summary>
/// An etcd cluster of one or more members on this machine's loopback (Debian's etcd-server), as `heddle up
/// --controllers N` and the tests run it: one etcd process per member, each with its data in a folder of its own under
/// <see cref="DataDirectory"/>. Ports are not probed: a first start that finds one taken is retried on others, and the
/// ports chosen are kept in ports.json beside the data, so that a cluster started again finds its members where their
/// data says they are. Members can be killed (as a crash would) and started again on their data.
/// With TLS files for each member, clients and peers speak TLS only (https URLs) and must show a certificate of the
/// members' CA that names <see cref="Trust.CertificateAuthority.EtcdClientName"/>, as a controller's etcd client certificate does.
/// </summary>
public sealed class LocalEtcd : IAsyncDisposable
{
    private readonly Process?[] _members;
    private readonly int[] _clientPorts;
    private readonly string _initialCluster;
    private readonly IReadOnlyList<EtcdTlsFiles>? _tls;

    private LocalEtcd(string dataDirectory, int[] clientPorts, IReadOnlyList<EtcdTlsFiles>? tls)
    {
        DataDirectory = dataDirectory;
        _clientPorts = clientPorts;
        _tls = tls;
        _initialCluster = string.Join(',', clientPorts.Select((p, i) => $"m{i}={Scheme}://127.0.0.1:{p + 1}"));
        _members = new Process?[clientPorts.Length];
    }

    public string DataDirectory { get; }

    /// <summary>Whether the members speak TLS only and ask clients for a certificate.</summary>
    public bool UsesTls => _tls is not null;

    private string Scheme => UsesTls ? "https" : "http";

    public IReadOnlyList<Uri> ClientUrls => [.. _clientPorts.Select(p => new Uri($"{Scheme}://127.0.0.1:{p}"))];

    /// <summary>What `heddle controller --store` takes to use this cluster.</summary>
    public string StoreOption => "etcd://" + string.Join(',', ClientUrls.Select(u => u.Authority));

    /// <summary>The pids of the members running now.</summary>
    public IReadOnlyList<int> Pids => [.. _members.OfType<Process>().Where(p => !p.HasExited).Select(p => p.Id)];

    /// <summary>Starts the members on the data in <paramref name="dataDirectory"/> (made afresh when there is none) and waits until each answers.</summary>
    /// <param name="tls">Member i's certificate, key and CA (valid for 127.0.0.1), for TLS with client certificates; null for plain HTTP.</param>
    public static async Task<LocalEtcd> StartAsync(string dataDirectory, int members = 1, IReadOnlyList<EtcdTlsFiles>? tls = null, CancellationToken cancellationToken = default)
    {
        if (tls is not null && tls.Count != members)
        {
            throw new ArgumentException($"give TLS files for each of the {members} members, not {tls.Count}");
        }

        if (!File.Exists("/usr/bin/etcd") && !File.Exists("/usr/local/bin/etcd"))
        {
            throw new InvalidOperationException("etcd is not installed: run 'apt-get install etcd-server' (scripts/install-deps.sh does)");
        }

        Directory.CreateDirectory(dataDirectory, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        var portsFile = Path.Combine(dataDirectory, "ports.json");
        if (File.Exists(portsFile) && JsonSerializer.Deserialize<int[]>(File.ReadAllText(portsFile)) is { } kept && kept.Length == members)
        {
            var existing = new LocalEtcd(dataDirectory, kept, tls);
            var errors = await Task.WhenAll(Enumerable.Range(0, members).Select(i => existing.StartMemberAsync(i, fresh: false, cancellationToken)));
            if (errors.All(e => e is null))
            {
                return existing;
            }

            existing.StopAll();
            throw new InvalidOperationException($"the etcd cluster in {dataDirectory} did not come back on its ports {string.Join(", ", kept)}: {string.Join(" | ", errors.Where(e => e is not null))}");
        }

        var failures = new List<string>();
        for (var attempt = 1; ; attempt++)
        {
            foreach (var old in Directory.EnumerateDirectories(dataDirectory, "m*"))
            {
                Directory.Delete(old, recursive: true);
            }

            var basePort = Random.Shared.Next(FirstPort, LastPort - (2 * members));
            var cluster = new LocalEtcd(dataDirectory, [.. Enumerable.Range(0, members).Select(i => basePort + (2 * i))], tls);
            var errors = await Task.WhenAll(Enumerable.Range(0, members).Select(i => cluster.StartMemberAsync(i, fresh: true, cancellationToken)));
            if (errors.All(e => e is null))
            {
                File.WriteAllText(portsFile, JsonSerializer.Serialize(cluster._clientPorts));
                if (tls is not null)
                {
                    File.WriteAllText(Path.Combine(dataDirectory, TlsMarker), "members and peers speak TLS only\n");
                }

                return cluster;
            }

            cluster.StopAll();
            failures.Add($"attempt {attempt}: {string.Join(" | ", errors.Where(e => e is not null))}");
            if (!errors.Any(e => e?.Contains("address already in use", StringComparison.Ordinal) == true) || attempt >= 5)
            {
                throw new InvalidOperationException($"etcd did not become healthy: {string.Join(" / ", failures)}");
            }
        }
    }

    /// <summary>Beside ports.json in a cluster made with TLS: its members know each other by https URLs.</summary>
    private const string TlsMarker = "tls";

    /// <summary>
    /// Whether <paramref name="dataDirectory"/> holds a cluster made without TLS (by an earlier Heddle): its members know
    /// each other by http URLs, so it can only be started again in clear.
    /// </summary>
    public static bool HoldsPlainCluster(string dataDirectory) =>
        File.Exists(Path.Combine(dataDirectory, "ports.json")) && !File.Exists(Path.Combine(dataDirectory, TlsMarker));

    /// <summary>
    /// Members listen between these ports: below Linux's default ephemeral range (32768–60999), where outgoing connections
    /// and listeners on port 0 take theirs (a test run that opens thousands of connections left no free pair there), and
    /// below the agents' instance ports (20000–29999).
    /// </summary>
    private const int FirstPort = 12000, LastPort = 19990;

    /// <summary>Kills member <paramref name="index"/> (as a crash would).</summary>
    public void Kill(int index)
    {
        Stop(_members[index]);
        _members[index] = null;
    }

    /// <summary>Starts member <paramref name="index"/> again on its data.</summary>
    public async Task RestartAsync(int index, CancellationToken cancellationToken = default)
    {
        if (await StartMemberAsync(index, fresh: false, cancellationToken) is { } error)
        {
            throw new InvalidOperationException($"etcd member m{index} did not come back: {error}");
        }
    }

    /// <summary>Starts a member and waits until it answers; null, or what it said on stderr.</summary>
    private async Task<string?> StartMemberAsync(int index, bool fresh, CancellationToken cancellationToken)
    {
        var client = _clientPorts[index];
        var start = new ProcessStartInfo("etcd") { UseShellExecute = false, RedirectStandardError = true, RedirectStandardOutput = true };
        foreach (var arg in new[]
        {
            "--name", $"m{index}", "--data-dir", Path.Combine(DataDirectory, $"m{index}"),
            "--listen-client-urls", $"{Scheme}://127.0.0.1:{client}", "--advertise-client-urls", $"{Scheme}://127.0.0.1:{client}",
            "--listen-peer-urls", $"{Scheme}://127.0.0.1:{client + 1}", "--initial-advertise-peer-urls", $"{Scheme}://127.0.0.1:{client + 1}",
            "--initial-cluster", _initialCluster, "--initial-cluster-state", fresh ? "new" : "existing",
            "--max-txn-ops", "10000", "--log-level", "warn", "--pre-vote", // a member back from a partition does not depose the leader
        }.Concat(_tls is null ? [] : TlsArguments(_tls[index])))
        {
            start.ArgumentList.Add(arg);
        }

        var process = Process.Start(start) ?? throw new InvalidOperationException("etcd did not start");
        var errors = new System.Text.StringBuilder();
        process.ErrorDataReceived += (_, e) =>
        {
            if (e.Data is null || e.Data.StartsWith("[WARNING] Deprecated", StringComparison.Ordinal))
            {
                return; // etcd 3.4 warns on every start that its default logger is deprecated
            }

            lock (errors)
            {
                errors.AppendLine(e.Data);
            }
        };
        process.OutputDataReceived += (_, _) => { };
        process.BeginErrorReadLine();
        process.BeginOutputReadLine();
        _members[index] = process;
        if (await HealthyAsync(new Uri($"{Scheme}://127.0.0.1:{client}"), _tls?[index], process, cancellationToken))
        {
            return null;
        }

        lock (errors)
        {
            return $"m{index} on port {client}: {errors}";
        }
    }

    /// <summary>
    /// etcd's flags for TLS on both its client and peer URLs, each end showing a certificate of the one CA. Clients must
    /// also be named <see cref="Trust.CertificateAuthority.EtcdClientName"/>: every other certificate of the CA (a node's)
    /// is refused.
    /// </summary>
    public static IEnumerable<string> TlsArguments(EtcdTlsFiles member) =>
    [
        "--cert-file", member.CertificateFile, "--key-file", member.KeyFile, "--trusted-ca-file", member.CaFile, "--client-cert-auth",
        "--client-cert-allowed-hostname", Trust.CertificateAuthority.EtcdClientName,
        "--peer-cert-file", member.CertificateFile, "--peer-key-file", member.KeyFile, "--peer-trusted-ca-file", member.CaFile, "--peer-client-cert-auth",
    ];

    /// <summary>Whether the member answers healthy within 30 s (false at once if it exits, as when its port is taken); over TLS it shows its own certificate.</summary>
    private static async Task<bool> HealthyAsync(Uri url, EtcdTlsFiles? tls, Process process, CancellationToken cancellationToken)
    {
        using var handler = new SocketsHttpHandler();
        if (tls is not null)
        {
            var connection = tls.Connect([url]);
            handler.SslOptions = new System.Net.Security.SslClientAuthenticationOptions
            {
                ClientCertificates = [connection.ClientCertificate!],
                RemoteCertificateValidationCallback = (_, certificate, _, errors) => EtcdMembers.Verify(certificate, errors, connection.TrustedCa!),
            };
        }

        using var http = new HttpClient(handler, disposeHandler: false) { Timeout = TimeSpan.FromSeconds(2) };
        var clock = Stopwatch.StartNew();
        while (clock.Elapsed < TimeSpan.FromSeconds(30) && !process.HasExited)
        {
            try
            {
                if ((await http.GetStringAsync(new Uri(url, "health"), cancellationToken)).Contains("\"true\"", StringComparison.Ordinal))
                {
                    return true;
                }
            }
            catch (Exception e) when (e is HttpRequestException or TaskCanceledException && !cancellationToken.IsCancellationRequested)
            {
            }

            await Task.Delay(100, cancellationToken);
        }

        return false;
    }

    private static void Stop(Process? process)
    {
        if (process is null)
        {
            return;
        }

        if (!process.HasExited)
        {
            process.Kill(entireProcessTree: true);
            process.WaitForExit(10_000);
        }

        process.Dispose();
    }

    private void StopAll()
    {
        for (var i = 0; i < _members.Length; i++)
        {
            Kill(i);
        }
    }

    /// <summary>Stops every member; the data stays (the caller owns the folder).</summary>
    public ValueTask DisposeAsync()
    {
        StopAll();
        return ValueTask.CompletedTask;
    }
}
