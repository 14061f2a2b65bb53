using Heddle.Agent.Connection;
using Heddle.Testing;

namespace Heddle.Agent.Tests.Connection;

/// <summary>
/// A renewal replaces key, certificate and CA as one: whatever line a crash stops it at, the node finds a matching
/// set when it starts again (the old one, or the new one), never a key beside another key's certificate.
/// </summary>
public sealed class IdentityFilesTests : IDisposable
{
    private readonly TempDirectory _directory = new("heddle-identity-");

    private (string Certificate, string Key, string Ca) Paths => IdentityFiles.Paths(_directory.Path);

    private string[] Read() => [File.ReadAllText(Paths.Key), File.ReadAllText(Paths.Certificate), File.ReadAllText(Paths.Ca)];

    [Fact]
    public void Save_ReplacesAllThree_AndLeavesNothingPending()
    {
        IdentityFiles.Save(_directory.Path, "key 1", "cert 1", "ca 1");
        IdentityFiles.Save(_directory.Path, "key 2", "cert 2", "ca 2");
        Assert.Equal(["key 2\n", "cert 2\n", "ca 2\n"], Read());
        Assert.Equal(["ca.crt", "node.crt", "node.key"], Directory.GetFiles(_directory.Path).Select(Path.GetFileName).Order());
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(Paths.Key));
    }

    [Fact]
    public void ACrashBeforeTheNewCertificateWasWhole_KeepsTheOldSet()
    {
        IdentityFiles.Save(_directory.Path, "key 1", "cert 1", "ca 1");
        File.WriteAllText(Paths.Key + ".new", "key 2"); // the new key and CA written, the certificate not yet
        File.WriteAllText(Paths.Ca + ".new", "ca 2");
        File.WriteAllText(Paths.Certificate + ".new.tmp", "cert"); // half of it, never renamed into place

        IdentityFiles.Recover(_directory.Path);
        Assert.Equal(["key 1\n", "cert 1\n", "ca 1\n"], Read());
        Assert.False(File.Exists(Paths.Key + ".new"));
    }

    [Fact]
    public void ACrashAfterTheNewCertificateWasWritten_FinishesTheReplacement()
    {
        IdentityFiles.Save(_directory.Path, "key 1", "cert 1", "ca 1");
        File.WriteAllText(Paths.Certificate + ".new", "cert 2\n"); // committed; the key already renamed, the CA not
        File.WriteAllText(Paths.Key, "key 2\n");
        File.WriteAllText(Paths.Ca + ".new", "ca 2\n");

        IdentityFiles.Recover(_directory.Path);
        Assert.Equal(["key 2\n", "cert 2\n", "ca 2\n"], Read());
    }

    [Fact]
    public void Recover_OnAFolderNotMadeYet_DoesNothing() => IdentityFiles.Recover(Path.Combine(_directory.Path, "absent"));

    public void Dispose() => _directory.Dispose();
}
