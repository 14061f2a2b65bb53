using System.Diagnostics;

namespace Heddle.Agent.Isolation;

/// <summary>
/// An exclusive lock shared by every agent of a host: a file in <paramref name="folder"/> opened with no sharing. Held
/// while the returned stream is open; waited for up to 10 s (an agent holds it for a few milliseconds).
/// </summary>
internal static class HostLock
{
    public static FileStream Acquire(string folder)
    {
        Directory.CreateDirectory(folder);
        var waited = Stopwatch.StartNew();
        while (true)
        {
            try
            {
                return new FileStream(Path.Combine(folder, ".lock"), FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None);
            }
            catch (IOException) when (waited.Elapsed < TimeSpan.FromSeconds(10))
            {
                Thread.Sleep(5);
            }
        }
    }
}
