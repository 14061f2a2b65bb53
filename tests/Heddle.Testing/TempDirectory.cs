namespace Heddle.Testing;

/// <summary>
/// A fresh folder under /var/tmp, removed when the test ends. Not under /tmp: every instance sees a /tmp of its own
/// there, so an agent refuses a state folder below it.
/// </summary>
public sealed class TempDirectory : IDisposable
{
    public TempDirectory(string prefix = "heddle-test-")
    {
        var root = Directory.Exists("/var/tmp") ? "/var/tmp" : System.IO.Path.GetTempPath();
        Path = System.IO.Path.Combine(root, prefix + Guid.NewGuid().ToString("N")[..12]);
        Directory.CreateDirectory(Path);
        File.SetUnixFileMode(Path, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
    }

    public string Path { get; }

    public string Combine(params string[] parts) => System.IO.Path.Combine([Path, .. parts]);

    public void Dispose()
    {
        try
        {
            Directory.Delete(Path, recursive: true);
        }
        catch (IOException)
        {
        }
    }
}
