using Heddle.Controller.Store.Kv;

namespace Heddle.Testing;

/// <summary>
/// An etcd cluster of one or more members started by a test (<see cref="LocalEtcd"/>, as `heddle up --controllers`
/// runs it) with its data in a temporary folder; disposing stops every member and removes the folder. With TLS, a CA
/// of its own (in <see cref="CaDirectory"/>) issues the members' certificates and a client certificate (<see cref="ClientTls"/>).
/// </summary>
public sealed class EtcdProcess : IAsyncDisposable
{
    private readonly TempDirectory _data;
    private readonly LocalEtcd _etcd;

    private EtcdProcess(TempDirectory data, LocalEtcd etcd, EtcdTlsFiles? client)
    {
        _data = data;
        _etcd = etcd;
        ClientTls = client;
    }

    /// <summary>With TLS: the folder of the CA that issued the members' certificates (ca.crt, ca.key), which can issue more.</summary>
    public string CaDirectory => Path.Combine(_data.Path, "ca");

    /// <summary>With TLS: a client certificate the members accept, its key and their CA.</summary>
    public EtcdTlsFiles? ClientTls { get; }

    /// <summary>What `--store` takes to use this cluster.</summary>
    public string StoreOption => _etcd.StoreOption;

    /// <summary>The first member's client URL.</summary>
    public Uri ClientUrl => ClientUrls[0];

    public IReadOnlyList<Uri> ClientUrls => _etcd.ClientUrls;

    /// <summary>Where the members keep their data (and, with TLS, the CA and certificates).</summary>
    public string DataDirectory => _data.Path;

    /// <summary>The members' process ids (those running).</summary>
    public IReadOnlyList<int> Pids => _etcd.Pids;

    public static async Task<EtcdProcess> StartAsync(int members = 1, bool tls = false)
    {
        var data = new TempDirectory("heddle-etcd-");
        try
        {
            if (!tls)
            {
                return new EtcdProcess(data, await LocalEtcd.StartAsync(data.Path, members), null);
            }

            using var ca = Heddle.Controller.Trust.CertificateAuthority.LoadOrCreate(Directory.CreateDirectory(Path.Combine(data.Path, "ca")).FullName, TimeProvider.System);
            var pki = Path.Combine(data.Path, "pki");
            var lifetime = TimeSpan.FromDays(1);
            var memberFiles = Enumerable.Range(0, members)
                .Select(i => Heddle.Controller.Trust.EtcdCertificates.WriteMember(ca, $"m{i}", ["127.0.0.1"], pki, lifetime, TimeProvider.System)).ToList();
            var client = Heddle.Controller.Trust.EtcdCertificates.WriteClient(ca, "test-client", pki, lifetime, TimeProvider.System);
            return new EtcdProcess(data, await LocalEtcd.StartAsync(Path.Combine(data.Path, "etcd"), members, memberFiles), client);
        }
        catch
        {
            data.Dispose();
            throw;
        }
    }

    /// <summary>Kills member <paramref name="index"/> (as a crash would).</summary>
    public void Kill(int index) => _etcd.Kill(index);

    /// <summary>Starts member <paramref name="index"/> again on its data.</summary>
    public Task RestartAsync(int index) => _etcd.RestartAsync(index);

    public async ValueTask DisposeAsync()
    {
        await _etcd.DisposeAsync();
        _data.Dispose();
    }
}
