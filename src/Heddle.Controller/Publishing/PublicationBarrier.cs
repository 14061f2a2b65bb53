using Heddle.Controller.Dns;
using Heddle.Controller.LoadBalancing;

namespace Heddle.Controller.Publishing;

/// <summary>Whether the load balancer and DNS have been told the store's current picture (an instance taken out of rotation).</summary>
public interface IPublicationBarrier
{
    bool Published();
}

public sealed class PublicationBarrier(LoadBalancerConfigSource balancer, DnsRecordSource dns) : IPublicationBarrier
{
    public bool Published() => balancer.RebuildAndCheckDelivered() & dns.RebuildAndCheckDelivered();
}
