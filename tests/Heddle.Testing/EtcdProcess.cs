using Heddle.Controller.Store.Kv;

namespace Heddle.Testing;

/// <summary>
/// An etcd cluster of one or more members started by a test (<see cref="LocalEtcd"/>, as `heddle up --controllers`
/// runs it) with its data in a temporary folder; disposing stops every member and removes the folder.
/// </summary>
public sealed class EtcdProcess : IAsyncDisposable
{
    private readonly TempDirectory _data;
    private readonly LocalEtcd _etcd;

    private EtcdProcess(TempDirectory data, LocalEtcd etcd)
    {
        _data = data;
        _etcd = etcd;
    }

    /// <summary>The first member's client URL.</summary>
    public Uri ClientUrl => ClientUrls[0];

    public IReadOnlyList<Uri> ClientUrls => _etcd.ClientUrls;

    public static async Task<EtcdProcess> StartAsync(int members = 1)
    {
        var data = new TempDirectory("heddle-etcd-");
        try
        {
            return new EtcdProcess(data, await LocalEtcd.StartAsync(data.Path, members));
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
