namespace Heddle.Testing;

/// <summary>
/// Ports from 30000-32767 that test controllers of this process hold, or will start on again after a restart. A port
/// is handed out to one holder at a time (picked at random, so that test processes running at once rarely pick the
/// same; a clash with another process still shows as "address in use" and the caller takes another).
/// </summary>
public static class ReservedPorts
{
    private const int First = 30_000;
    private const int Count = 2_768;
    private static readonly HashSet<int> Held = [];

    public static int Take()
    {
        lock (Held)
        {
            if (Held.Count >= Count / 2)
            {
                throw new InvalidOperationException($"{Held.Count} test ports are held in this process: a test cluster is not disposed");
            }

            while (true)
            {
                var port = First + Random.Shared.Next(Count);
                if (Held.Add(port))
                {
                    return port;
                }
            }
        }
    }

    public static void Release(int port)
    {
        lock (Held)
        {
            Held.Remove(port);
        }
    }
}
