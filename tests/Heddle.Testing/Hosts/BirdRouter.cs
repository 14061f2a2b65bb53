using System.Net;
using Heddle.Testing;

namespace Heddle.Testing.Hosts;

/// <summary>
/// BIRD 2 as the router on a test host: one passive BGP session per balancer, every route learnt put in the host's
/// kernel table with `merge paths on` (several balancers' routes to one VIP become one multipath route), and flows
/// hashed by ports as well (fib_multipath_hash_policy 1). Its configuration, control socket and pid file are in a
/// temp folder; it runs in the foreground as a process of the bed, stopped with it.
/// </summary>
public sealed class BirdRouter : IAsyncDisposable
{
    public const uint Asn = 65000;

    private readonly TempDirectory _folder;
    private readonly HostProcess _bird;

    private BirdRouter(TestHost host, TempDirectory folder, HostProcess bird)
    {
        Host = host;
        _folder = folder;
        _bird = bird;
    }

    public TestHost Host { get; }

    public string Socket => _folder.Combine("bird.ctl");

    public string Output => _bird.Output;

    /// <summary>Starts BIRD on <paramref name="host"/> with a session to each balancer (protocol named after its host), all of AS <paramref name="balancerAsn"/>.</summary>
    public static async Task<BirdRouter> StartAsync(TestHost host, IEnumerable<TestHost> balancers, uint balancerAsn)
    {
        var folder = new TempDirectory("heddle-bird-");
        var config = $$"""
            log stderr all;
            router id {{host.Address}};
            protocol device { scan time 10; }
            protocol kernel {
                ipv4 { import none; export all; };
                merge paths on;
            }
            template bgp balancer {
                local {{host.Address}} as {{Asn}};
                passive on;
                hold time 3;
                keepalive time 1;
                debug { states, routes, events };
                ipv4 { import all; export none; };
            }

            """ + string.Concat(balancers.Select(b => $"protocol bgp {b.Name} from balancer {{ neighbor {b.Address} as {balancerAsn}; }}\n"));
        await File.WriteAllTextAsync(folder.Combine("bird.conf"), config);
        Check("sysctl", await host.RunAsync("/usr/sbin/sysctl", "-w", "net.ipv4.fib_multipath_hash_policy=1"));
        var bird = host.Start("bird", "/usr/sbin/bird", ["-f", "-c", folder.Combine("bird.conf"), "-s", folder.Combine("bird.ctl"), "-P", folder.Combine("bird.pid")]);
        var router = new BirdRouter(host, folder, bird);
        await Poll.UntilAsync(() => File.Exists(router.Socket) || bird.HasExited, TimeSpan.FromSeconds(10), "bird to open its control socket");
        if (bird.HasExited)
        {
            throw new InvalidOperationException($"bird exited ({bird.ExitCode}):\n{bird.Output}\nconfiguration:\n{config}");
        }

        return router;
    }

    /// <summary>The next hops of the router's kernel route to <paramref name="vip"/> (none when there is no route).</summary>
    public async Task<IReadOnlyList<IPAddress>> NextHopsAsync(IPAddress vip)
    {
        var result = await Host.RunAsync("/usr/sbin/ip", "-4", "route", "show", "exact", $"{vip}/32");
        Check("ip route", result);

        // "198.51.100.10 proto bird metric 32 \n\tnexthop via 198.18.7.11 dev eth0 weight 1 \n\tnexthop via …" or, with one, "… via 198.18.7.11 dev eth0 …".
        var words = result.Stdout.Split([' ', '\t', '\n'], StringSplitOptions.RemoveEmptyEntries);
        return [.. words.Zip(words.Skip(1)).Where(w => w.First == "via").Select(w => IPAddress.Parse(w.Second)).Order(Comparer<IPAddress>.Create((a, b) => string.CompareOrdinal(a.ToString(), b.ToString())))];
    }

    /// <summary>The BGP state of the session to <paramref name="balancer"/> as birdc shows it (Established, Active, …).</summary>
    public async Task<string> SessionAsync(TestHost balancer)
    {
        var result = await Task.Run(() => ProcessRunner.Run("/usr/sbin/birdc", ["-s", Socket, "show", "protocols", balancer.Name], TimeSpan.FromSeconds(10)));
        Check("birdc", result);
        var line = result.Stdout.Split('\n').FirstOrDefault(l => l.StartsWith(balancer.Name + " ", StringComparison.Ordinal)) ?? string.Empty;
        var words = line.Split(' ', StringSplitOptions.RemoveEmptyEntries);
        return words.Length >= 6 ? words[5] : words.LastOrDefault() ?? "(no such protocol)";
    }

    private static void Check(string what, ProcessResult result)
    {
        if (result.ExitCode != 0)
        {
            throw new InvalidOperationException($"{what}: {result}");
        }
    }

    public async ValueTask DisposeAsync()
    {
        await _bird.StopAsync();
        _folder.Dispose();
    }
}
