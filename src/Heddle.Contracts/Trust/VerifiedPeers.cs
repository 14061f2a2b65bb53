using System.Collections.Concurrent;
using System.Runtime.CompilerServices;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;

namespace Heddle.Contracts.Trust;

/// <summary>
/// Peer certificates already found to chain to a CA for a purpose, until the first of the two expires: a node that
/// reconnects presents the same certificate again, and building its chain (the TLS callback, then the controller's
/// Authenticate; the agent checks the controller's the same way) was most of what a controller and a thousand hollow
/// agents did in a wave of reconnections. Only successes are kept; revocation is not a chain matter here (the
/// controller looks each node certificate up in its store on every stream). Bounded: emptied when full.
/// </summary>
internal static class VerifiedPeers
{
    private const int Capacity = 65_536;

    private static readonly ConcurrentDictionary<(string Certificate, string Ca, string Purpose), DateTime> Until = new();

    /// <summary>Each CA's hash made once: every node's entry holds the same copy, not 150 bytes of its own (1.5 MB at 10,000 nodes).</summary>
    private static readonly ConditionalWeakTable<X509Certificate2, string> CaHashes = new();

    /// <summary>Whether <paramref name="certificate"/> chains to <paramref name="ca"/> for <paramref name="purpose"/>: remembered, or checked by <paramref name="check"/>.</summary>
    public static bool Chains(X509Certificate2 certificate, X509Certificate2 ca, Oid purpose, Func<X509Certificate2, X509Certificate2, Oid, bool> check)
    {
        var key = (Hash(certificate), CaHashes.GetValue(ca, Hash), purpose.Value ?? string.Empty);
        var now = DateTime.UtcNow; // the clock X509Chain checks validity periods by
        if (Until.TryGetValue(key, out var until) && now < until)
        {
            return true;
        }

        if (!check(certificate, ca, purpose))
        {
            return false;
        }

        if (Until.Count >= Capacity)
        {
            Until.Clear();
        }

        var expires = certificate.NotAfter.ToUniversalTime() < ca.NotAfter.ToUniversalTime() ? certificate.NotAfter.ToUniversalTime() : ca.NotAfter.ToUniversalTime();
        Until[key] = expires;
        return true;
    }

    private static string Hash(X509Certificate2 certificate) => Convert.ToHexString(SHA256.HashData(certificate.RawDataMemory.Span));
}
