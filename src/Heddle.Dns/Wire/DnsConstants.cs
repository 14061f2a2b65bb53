namespace Heddle.Dns.Wire;

/// <summary>Numbers from RFC 1035, 2782, 3596, 6891.</summary>
internal static class DnsType
{
    public const ushort A = 1;
    public const ushort NS = 2;
    public const ushort SOA = 6;
    public const ushort TXT = 16;
    public const ushort AAAA = 28;
    public const ushort SRV = 33;
    public const ushort OPT = 41;
    public const ushort ANY = 255;
}

internal static class DnsClass
{
    public const ushort IN = 1;
    public const ushort ANY = 255;
}

internal static class DnsRcode
{
    public const int NoError = 0;
    public const int FormErr = 1;
    public const int ServFail = 2;
    public const int NxDomain = 3;
    public const int NotImp = 4;
    public const int Refused = 5;
}
