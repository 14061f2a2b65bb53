using System.Collections.Concurrent;
using Microsoft.AspNetCore.Http;

namespace Heddle.LoadBalancer.L7;

/// <summary>
/// The requests being forwarded, by the instance they went to, so that draining a removed instance can end what is
/// still running on it once the drain timeout has passed (the client's connection is aborted, as L4 closes it).
/// </summary>
internal sealed class InFlightRequests
{
    private readonly ConcurrentDictionary<HttpContext, string> _requests = new();

    public int Count => _requests.Count;

    /// <summary>Records <paramref name="context"/> as forwarded to <paramref name="destination"/> until <paramref name="forward"/> ends.</summary>
    public async Task TrackAsync(HttpContext context, string destination, Func<Task> forward)
    {
        _requests[context] = destination;
        try
        {
            await forward();
        }
        finally
        {
            _requests.TryRemove(context, out _);
        }
    }

    /// <summary>Aborts every request still running on one of <paramref name="destinations"/>; returns how many.</summary>
    public int Abort(IReadOnlySet<string> destinations)
    {
        var aborted = 0;
        foreach (var (context, destination) in _requests)
        {
            if (destinations.Contains(destination))
            {
                context.Abort();
                aborted++;
            }
        }

        return aborted;
    }
}
