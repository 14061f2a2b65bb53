namespace Heddle.LoadBalancer.Announcing.Arp;

/// <summary>How <see cref="ArpAnnouncer"/> answers (heddle lb --announce arp --interface IF).</summary>
public sealed class ArpAnnouncerOptions
{
    /// <summary>The interface on the clients' network, where the VIPs are answered for.</summary>
    public required string Interface { get; init; }

    /// <summary>
    /// Gratuitous ARPs (each a request and a reply) for a VIP newly announced: the first at once, the rest
    /// <see cref="GratuitousInterval"/> apart, so that one frame lost does not leave a neighbour's cache on the old owner.
    /// </summary>
    public int GratuitousRounds { get; init; } = 3;

    public TimeSpan GratuitousInterval { get; init; } = TimeSpan.FromMilliseconds(500);

    /// <summary>How often the receiver looks whether the interface was deleted and made again (a new index to bind to).</summary>
    public TimeSpan InterfaceCheckInterval { get; init; } = TimeSpan.FromSeconds(1);

    public void Validate()
    {
        if (GratuitousRounds < 1 || GratuitousInterval <= TimeSpan.Zero || InterfaceCheckInterval <= TimeSpan.Zero)
        {
            throw new AnnouncerException("arp announcing needs at least one gratuitous round and positive intervals");
        }
    }
}
