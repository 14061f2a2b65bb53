using System.Net;
using Heddle.Contracts.Api;
using Heddle.Dns.Zone;

namespace Heddle.Dns.Tests;

/// <summary>
/// A zone built from the one before keeps what it compiled for the services that say the same and encodes only the
/// others: whatever the changes, it answers exactly what a zone built whole from the same records answers.
/// </summary>
public sealed class ZoneIncrementalTests
{
    private static readonly DnsOptions Options = new();
    private static readonly IPAddress[] NameServers = [IPAddress.Parse("127.0.0.53")];

    [Fact]
    public void Build_FromThePreviousZone_KeepsUnchangedServicesAndAnswersAsAWholeBuild()
    {
        var first = Build(null, 1, Service("shop", 3), Service("blog", 2));
        var second = Build(first, 2, Service("shop", 3), Service("blog", 3));

        Assert.Same(first.Find($"0.web.shop.{first.Zone}"), second.Find($"0.web.shop.{second.Zone}"));
        Assert.NotSame(first.Find($"0.web.blog.{first.Zone}"), second.Find($"0.web.blog.{second.Zone}"));
        Assert.NotNull(second.Find($"2.web.blog.{second.Zone}"));
        Assert.Equal(Dump(Build(null, 2, Service("shop", 3), Service("blog", 3))), Dump(second));
    }

    [Fact]
    public void Build_FromAZoneOfAnotherSerial_CarriesTheNewSerial()
    {
        var first = Build(null, 1, Service("shop", 1));
        var second = Build(first, 9, Service("shop", 1));

        Assert.Equal(9, second.Serial);
        Assert.Equal(Dump(Build(null, 9, Service("shop", 1))), Dump(second));
    }

    [Fact]
    public void Build_ThroughRandomChanges_AlwaysAnswersAsAWholeBuild()
    {
        var random = new Random(27);
        var names = new[] { "shop", "blog", "shop.staging", "staging", "api", "web.api" }; // 'web.api' collides with api's role web
        CompiledZone? zone = null;
        for (var step = 1; step <= 200; step++)
        {
            var services = names.Where(_ => random.Next(3) > 0)
                .Select(n => Service(n, random.Next(4), vip: random.Next(2) == 0 ? null : $"127.80.0.{random.Next(1, 4)}", node: random.Next(1, 3)))
                .ToArray();
            zone = Build(zone, step, services);

            Assert.Equal(Dump(Build(null, step, services)), Dump(zone));
        }
    }

    private static CompiledZone Build(CompiledZone? previous, long serial, params DnsService[] services) =>
        CompiledZone.Build(new DnsRecordSet { Serial = serial, Services = services }, Options, NameServers, previous);

    private static DnsService Service(string name, int instances, string? vip = "127.80.0.1", int node = 1) =>
        new(name, vip is null ? [] : [vip],
        [
            new DnsRole("web", [.. Enumerable.Range(0, instances).Select(i => new DnsInstance(i, $"127.0.{node}.{i + 1}", [new DnsEndpoint("http", "tcp", 8000 + i)]))]),
        ]);

    /// <summary>Every name with every record and additional record it answers, as text.</summary>
    private static List<string> Dump(CompiledZone zone) =>
    [
        .. zone.Names.Order(StringComparer.Ordinal).SelectMany(n => zone.Find(n)!.Sets
            .SelectMany(s => s.Records.Select(r => $"{n} {s.Type} {Convert.ToHexString(r)}")
                .Concat((s.Additional ?? []).Select(r => $"{n} {s.Type} additional {Convert.ToHexString(r)}")))
            .DefaultIfEmpty(n)),
        $"soa {Convert.ToHexString(zone.SoaAuthority)}",
    ];
}
