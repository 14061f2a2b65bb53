namespace Heddle.Model.Validation;

/// <summary>
/// The labels right below the cluster's DNS zone that the zone uses for itself. A service's records live at
/// <c>&lt;service&gt;.&lt;zone&gt;</c> and below, so a service named like one of these would put its records beside the
/// zone's own: none may be a service name (HD1019). The DNS server builds its own names from these constants, so a
/// name it starts answering for itself is reserved by being added here.
/// </summary>
public static class ZoneLabels
{
    /// <summary>The zone's name server (the target of its NS record and the SOA's MNAME): <c>ns.&lt;zone&gt;</c>.</summary>
    public const string NameServer = "ns";

    /// <summary>The server's version, a TXT record: <c>dns-version.&lt;zone&gt;</c>.</summary>
    public const string Version = "dns-version";

    /// <summary>The SOA's contact (RNAME), <c>hostmaster.&lt;zone&gt;</c>: a mailbox, not a name with records, kept free all the same.</summary>
    public const string Hostmaster = "hostmaster";

    /// <summary>Every service's staging slot is <c>&lt;service&gt;.staging.&lt;zone&gt;</c>.</summary>
    public const string Staging = "staging";

    public static IReadOnlyList<string> Reserved { get; } = [NameServer, Version, Hostmaster, Staging];

    public static bool IsReserved(string label) => Reserved.Contains(label, StringComparer.OrdinalIgnoreCase);

    /// <summary>What the zone uses a reserved label for, in the words of the HD1019 message.</summary>
    public static string UseOf(string label) => label.ToLowerInvariant() switch
    {
        NameServer => "ns.<zone> is the zone's name server",
        Version => "dns-version.<zone> answers the DNS server's version",
        Hostmaster => "hostmaster.<zone> is the contact in the zone's SOA",
        Staging => "a service's staging slot is named <service>.staging in DNS",
        _ => "the DNS zone uses it for itself",
    };
}
