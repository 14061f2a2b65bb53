using Heddle.Contracts.Api;
using Heddle.Testing;

namespace Heddle.LoadBalancer.Tests;

/// <summary>
/// Applies a configuration whose listeners need ports of their own on 127.0.0.1: ports are taken from
/// <see cref="ReservedPorts"/>, and when one turns out to be in use (another process holds it) the configuration is
/// applied again on others. No port is probed by binding and giving it back.
/// </summary>
internal static class HostPorts
{
    public static async Task<int[]> ApplyAsync(LoadBalancerHost host, int count, Func<int[], LoadBalancerConfig> config)
    {
        for (var attempt = 1; ; attempt++)
        {
            var ports = Enumerable.Range(0, count).Select(_ => ReservedPorts.Take()).ToArray();
            try
            {
                var problems = await host.ApplyAsync(config(ports));
                if (problems.Count == 0)
                {
                    return ports;
                }

                if (attempt == 10 || problems.Any(p => p.Kind != ListenerProblemKinds.InUse))
                {
                    Assert.Fail($"the listeners did not start (attempt {attempt}): " + string.Join("; ", problems.Select(p => $"{p.Vip}:{p.Port} {p.Reason}")));
                }
            }
            finally
            {
                foreach (var port in ports)
                {
                    ReservedPorts.Release(port); // held by the listener now, or not wanted
                }
            }
        }
    }
}
