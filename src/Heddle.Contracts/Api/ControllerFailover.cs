using System.Net.Sockets;

namespace Heddle.Contracts.Api;

/// <summary>
/// Sends each request to one of several controllers of a cluster (they share one store, so any of them answers):
/// the one that answered last; when it cannot be connected to, the next, and so on once round. Only a request that
/// never reached a controller (the connection was refused or timed out) is sent again, so nothing is done twice.
/// </summary>
public sealed class ControllerFailover(IReadOnlyList<Uri> controllers) : DelegatingHandler
{
    private int _current;

    public Uri Current => controllers[(int)((uint)Volatile.Read(ref _current) % (uint)controllers.Count)];

    protected override async Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken)
    {
        for (var tried = 1; ; tried++)
        {
            var index = Volatile.Read(ref _current);
            var target = controllers[(int)((uint)index % (uint)controllers.Count)];
            if (request.RequestUri is { IsAbsoluteUri: true } uri)
            {
                request.RequestUri = new UriBuilder(uri) { Scheme = target.Scheme, Host = target.Host, Port = target.Port }.Uri;
            }

            try
            {
                return await base.SendAsync(request, cancellationToken);
            }
            catch (HttpRequestException e) when (tried < controllers.Count && NeverSent(e) && (request.Content is null || request.Content.Headers.ContentLength is not null))
            {
                Interlocked.CompareExchange(ref _current, index + 1, index);
            }
        }
    }

    /// <summary>Whether the request failed before any of it reached the controller: no connection could be made.</summary>
    private static bool NeverSent(HttpRequestException e) =>
        e.HttpRequestError == HttpRequestError.ConnectionError || e.InnerException is SocketException { SocketErrorCode: SocketError.ConnectionRefused or SocketError.TimedOut or SocketError.HostUnreachable };
}
