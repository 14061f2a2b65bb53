using Microsoft.Extensions.Hosting;

namespace Heddle.LoadBalancer.L7;

/// <summary>
/// The lifetime of a listener's web host inside another process: it starts and stops when the balancer says, and
/// does not take SIGTERM or Ctrl-C for itself (the default console lifetime would stop the listener on the signal,
/// before the process hosting it had decided how to shut down).
/// </summary>
internal sealed class EmbeddedHostLifetime : IHostLifetime
{
    public Task WaitForStartAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;
}
