namespace Heddle.Contracts.Api;

/// <summary>One service's part of a data-plane view: its DNS entry, or its load-balancer listeners.</summary>
/// <param name="Service">The deployment key the parts are of.</param>
public sealed record ViewPart<TPart>(string Service, IReadOnlyList<TPart> Parts);

/// <summary>
/// A change of a data-plane view as a remote data plane is sent it (`?follow=true&amp;changes=true`): with
/// <see cref="Base"/> 0, the whole view (every service's parts); otherwise only what changed since the view of version
/// <see cref="Base"/>, which the follower must hold: the services whose parts are new or changed, and those gone. A
/// follower that reconnects names the version it holds (`&amp;since=`) and is sent what changed since, or the whole view
/// when the controller no longer knows that version. Versions count one controller's views: <see cref="Origin"/> names
/// whose (a follower that fails over to another controller names the origin its version is of, and is sent the whole view).
/// </summary>
public sealed record ViewChange<TPart>(string Origin, long Base, long Version, IReadOnlyList<ViewPart<TPart>> Changed, IReadOnlyList<string> Removed)
{
    public bool IsWhole => Base == 0;
}

/// <summary>
/// A remote data plane's copy of a view, kept from a stream of <see cref="ViewChange{TPart}"/>: a part that did not
/// change stays the object it was (the DNS server keeps what it compiled of it). It lives across reconnections, so a
/// follower that comes back is sent only what changed meanwhile.
/// </summary>
public sealed class ViewCopy<TPart, T>(Func<IEnumerable<TPart>, long, T> assemble)
    where T : class
{
    private readonly SortedDictionary<string, IReadOnlyList<TPart>> _parts = new(StringComparer.Ordinal);

    /// <summary>The version held, or 0 before the first whole view.</summary>
    public long Version { get; private set; }

    /// <summary>Whose versions <see cref="Version"/> counts (<see cref="ViewChange{TPart}.Origin"/>), or empty before the first whole view.</summary>
    public string Origin { get; private set; } = string.Empty;

    /// <summary>How many whole views the copy has taken in (a follower that reconnects in time is sent only what changed).</summary>
    public int WholeViews { get; private set; }

    /// <summary>Whether a change follows on from this copy (or is whole).</summary>
    public bool Follows(ViewChange<TPart> change) => change.IsWhole || (change.Base == Version && change.Origin == Origin);

    /// <summary>Takes a change in and returns the whole view it makes.</summary>
    /// <exception cref="InvalidDataException">A change made from a version this copy does not hold (the stream is then started again).</exception>
    public T Apply(ViewChange<TPart> change)
    {
        if (change.IsWhole)
        {
            _parts.Clear();
            WholeViews++;
        }
        else if (!Follows(change))
        {
            throw new InvalidDataException($"a change from version {change.Base} of {change.Origin} came to a copy of version {Version} of {Origin}");
        }

        foreach (var gone in change.Removed)
        {
            _parts.Remove(gone);
        }

        foreach (var part in change.Changed)
        {
            if (part.Parts.Count == 0)
            {
                _parts.Remove(part.Service);
            }
            else
            {
                _parts[part.Service] = part.Parts;
            }
        }

        (Version, Origin) = (change.Version, change.Origin);
        return assemble(_parts.Values.SelectMany(p => p), Version);
    }
}

/// <summary>How the two views are made from their parts, on both sides of the stream.</summary>
public static class Views
{
    public static DnsRecordSet Dns(IEnumerable<DnsService> parts, long version) => new() { Serial = version + 1, Services = [.. parts] };

    public static LoadBalancerConfig LoadBalancer(IEnumerable<VipListener> parts, long version) => new() { Version = version, Listeners = [.. parts] };

    public static ViewCopy<DnsService, DnsRecordSet> DnsCopy() => new(Dns);

    public static ViewCopy<VipListener, LoadBalancerConfig> LoadBalancerCopy() => new(LoadBalancer);
}
