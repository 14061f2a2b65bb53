using System.Diagnostics;
using System.Net;

namespace Heddle.LoadBalancer.Announcing;

/// <summary>
/// Makes this host accept the VIPs it serves: a `local` route per VIP on the loopback device (`ip route replace local
/// VIP/32 dev lo`), so the listeners bind and the kernel delivers whatever an announcer sends here, without the address
/// on any interface (the kernel would answer ARP for it there, on its own and after a crash). Routes are added for every
/// VIP the balancer serves, owned or not, so a VIP handed to this balancer answers at once; they are removed when the
/// VIP goes and when the balancer stops. A balancer killed leaves its routes; the next start replaces them.
/// </summary>
public sealed class LocalVipRoutes(string ip = "/usr/sbin/ip")
{
    private readonly HashSet<IPAddress> _routed = [];
    private readonly SemaphoreSlim _lock = new(1, 1);

    /// <summary>Routes exactly these VIPs; returns a sentence per VIP that could not be routed.</summary>
    public async Task<IReadOnlyList<string>> SetAsync(IEnumerable<IPAddress> vips, CancellationToken cancellationToken)
    {
        var wanted = vips.ToHashSet();
        var problems = new List<string>();
        await _lock.WaitAsync(cancellationToken);
        try
        {
            foreach (var vip in _routed.Where(v => !wanted.Contains(v)).ToList())
            {
                await RunAsync(cancellationToken, "route", "del", "local", Prefix(vip), "dev", "lo", "table", "local");
                _routed.Remove(vip);
            }

            foreach (var vip in wanted.Where(v => !_routed.Contains(v)))
            {
                var error = await RunAsync(cancellationToken, "route", "replace", "local", Prefix(vip), "dev", "lo", "table", "local");
                if (error is null)
                {
                    _routed.Add(vip);
                }
                else
                {
                    problems.Add($"cannot route {vip} to this host (ip route replace local {Prefix(vip)} dev lo: {error})");
                }
            }
        }
        finally
        {
            _lock.Release();
        }

        return problems;
    }

    public IReadOnlyCollection<IPAddress> Routed
    {
        get
        {
            _lock.Wait();
            try
            {
                return [.. _routed];
            }
            finally
            {
                _lock.Release();
            }
        }
    }

    private static string Prefix(IPAddress vip) => vip.AddressFamily == System.Net.Sockets.AddressFamily.InterNetworkV6 ? $"{vip}/128" : $"{vip}/32";

    /// <summary>Runs ip; null when it succeeded, else what it printed.</summary>
    private async Task<string?> RunAsync(CancellationToken cancellationToken, params string[] args)
    {
        var start = new ProcessStartInfo(ip) { RedirectStandardError = true, RedirectStandardOutput = true, UseShellExecute = false };
        foreach (var arg in args)
        {
            start.ArgumentList.Add(arg);
        }

        using var process = Process.Start(start) ?? throw new AnnouncerException($"cannot run {ip}");
        var error = await process.StandardError.ReadToEndAsync(cancellationToken);
        await process.WaitForExitAsync(cancellationToken);
        return process.ExitCode == 0 ? null : error.Trim();
    }
}
