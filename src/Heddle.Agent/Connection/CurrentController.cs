namespace Heddle.Agent.Connection;

/// <summary>Sends each request to the controller the agent talks to now (same path, that controller's scheme, host and port).</summary>
internal sealed class CurrentController(Func<Uri> current) : DelegatingHandler
{
    protected override Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken)
    {
        if (request.RequestUri is { IsAbsoluteUri: true } uri)
        {
            var target = current();
            request.RequestUri = new UriBuilder(uri) { Scheme = target.Scheme, Host = target.Host, Port = target.Port }.Uri;
        }

        return base.SendAsync(request, cancellationToken);
    }
}
