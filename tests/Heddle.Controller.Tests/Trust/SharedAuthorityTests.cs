using System.Text;
using System.Text.Json;
using Heddle.Controller.Store.Kv;
using Heddle.Controller.Trust;
using Heddle.Testing;

namespace Heddle.Controller.Tests.Trust;

/// <summary>Controllers sharing a store agree on one CA whose key stays on their disks: the store keeps its certificate alone.</summary>
public sealed class SharedAuthorityTests : IAsyncLifetime
{
    private readonly TempDirectory _directory = new("heddle-shared-ca-");
    private KvMirror _mirror = null!;

    public async Task InitializeAsync() => _mirror = await KvMirror.StartAsync(new InMemoryKeyValueStore(), ownsStore: true);

    public async Task DisposeAsync()
    {
        await _mirror.DisposeAsync();
        _directory.Dispose();
    }

    private string Folder(string name) => Directory.CreateDirectory(_directory.Combine(name)).FullName;

    private string Shared() => Encoding.UTF8.GetString(_mirror.Get("secrets/ca")!.Value!);

    [Fact]
    public async Task ShareAsync_First_PutsTheCertificateAlone_AndAnotherFolderWithTheSameFilesIsAccepted()
    {
        var first = Folder("first");
        Assert.False(await SharedAuthority.ShareAsync(_mirror, first, CancellationToken.None));
        Assert.True(File.Exists(Path.Combine(first, "ca.key")));
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(Path.Combine(first, "ca.key")));
        Assert.DoesNotContain("PRIVATE KEY", Shared());

        var second = Folder("second");
        TestCluster.CopyCa(first, second);
        Assert.False(await SharedAuthority.ShareAsync(_mirror, second, CancellationToken.None));
    }

    [Fact]
    public async Task ShareAsync_FolderWithoutTheCa_IsRefusedSayingWhatToCopy_AndMakesNothing()
    {
        await SharedAuthority.ShareAsync(_mirror, Folder("first"), CancellationToken.None);
        var empty = Folder("empty");
        var e = await Assert.ThrowsAsync<InvalidOperationException>(() => SharedAuthority.ShareAsync(_mirror, empty, CancellationToken.None));
        Assert.Contains($"{empty} has no cluster CA (ca.crt and ca.key)", e.Message);
        Assert.Contains("copy ca.crt and ca.key", e.Message);
        Assert.Empty(Directory.EnumerateFiles(empty));
    }

    [Fact]
    public async Task ShareAsync_StoreHoldingTheKeyInClear_TheKeyIsRemoved_AndAnEmptyFolderTakesTheCaOnce()
    {
        var old = Folder("old");
        using (CertificateAuthority.LoadOrCreate(old, TimeProvider.System))
        {
        }

        var certificate = File.ReadAllText(Path.Combine(old, "ca.crt"));
        await _mirror.CommitAsync([], [KvWrite.Put("secrets/ca", JsonSerializer.SerializeToUtf8Bytes(new { Certificate = certificate, PrivateKey = File.ReadAllText(Path.Combine(old, "ca.key")) }))]);

        var upgraded = Folder("upgraded");
        Assert.True(await SharedAuthority.ShareAsync(_mirror, upgraded, CancellationToken.None));
        Assert.Equal(File.ReadAllText(Path.Combine(old, "ca.key")).Trim(), File.ReadAllText(Path.Combine(upgraded, "ca.key")).Trim());
        Assert.DoesNotContain("PRIVATE KEY", Shared());
        Assert.Equal(certificate.Trim(), JsonDocument.Parse(Shared()).RootElement.GetProperty("Certificate").GetString()!.Trim());

        // From now on a folder without the CA gets nothing from the store.
        await Assert.ThrowsAsync<InvalidOperationException>(() => SharedAuthority.ShareAsync(_mirror, Folder("late"), CancellationToken.None));
    }
}
