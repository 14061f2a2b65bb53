using Heddle.Contracts.Api;

namespace Heddle.LoadBalancer;

/// <summary>One VIP:port served by the balancer: L4 (tcp) or L7 (http). Takes whole backend lists.</summary>
internal interface IVipListener : IAsyncDisposable
{
    void Update(IReadOnlyList<Backend> backends);
}
