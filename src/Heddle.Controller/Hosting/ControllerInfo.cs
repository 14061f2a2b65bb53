using Heddle.Contracts.Api;

namespace Heddle.Controller.Hosting;

/// <summary>
/// What `heddle info` shows. The DNS fields come from a DNS server hosted here, or else from the `heddle dns` processes
/// that follow this controller's records and said where they answer (the most recent one while it follows).
/// </summary>
public sealed class ControllerInfo(string stateDirectory)
{
    private readonly List<(string Address, string Zone)> _dnsFollowers = [];

    public Uri? ApiUrl { get; set; }

    public Uri? AgentUrl { get; set; }

    /// <summary>Where this cluster's DNS server answers (address:port), when one is hosted with the controller.</summary>
    public string? DnsAddress { get; set; }

    public string? Zone { get; set; }

    /// <summary>Records a separate DNS server following this controller, until the returned handle is disposed.</summary>
    public IDisposable AddDnsFollower(string address, string zone)
    {
        var entry = (address, zone);
        lock (_dnsFollowers)
        {
            _dnsFollowers.Add(entry);
        }

        return new Release(() =>
        {
            lock (_dnsFollowers)
            {
                _dnsFollowers.Remove(entry);
            }
        });
    }

    public ClusterInfo Describe()
    {
        (string Address, string Zone)? follower;
        lock (_dnsFollowers)
        {
            follower = _dnsFollowers.Count > 0 ? _dnsFollowers[^1] : null;
        }

        return new(ApiUrl?.ToString() ?? string.Empty, AgentUrl?.ToString() ?? string.Empty, typeof(ControllerInfo).Assembly.GetName().Version?.ToString() ?? "0",
            DnsAddress ?? follower?.Address, Zone ?? follower?.Zone, stateDirectory);
    }

    private sealed class Release(Action release) : IDisposable
    {
        private int _done;

        public void Dispose()
        {
            if (Interlocked.Exchange(ref _done, 1) == 0)
            {
                release();
            }
        }
    }
}
