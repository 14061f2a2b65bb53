using System.Net;
using Heddle.Contracts.Api;
using Heddle.Dns.Zone;
using Heddle.Model.Definition;
using Heddle.Model.Diagnostics;
using Heddle.Model.Validation;

namespace Heddle.Dns.Tests;

/// <summary>
/// The names the zone answers for itself (its name server, its version, the parent of every staging slot) are found
/// by building a zone and looking at what it holds, not listed by hand: a name the server starts answering for
/// itself is caught here unless it is reserved, and no service can be named like one, nor put a record on one.
/// </summary>
public sealed class ZoneOwnNameTests
{
    private static readonly DnsOptions Options = new();

    [Fact]
    public void OwnNames_OfAZoneWithAProductionAndAStagingDeployment_AreEachReserved()
    {
        var own = OwnLabels();

        Assert.Contains(ZoneLabels.NameServer, own);
        Assert.Contains(ZoneLabels.Version, own);
        Assert.Contains(ZoneLabels.Staging, own);
        Assert.All(own, label => Assert.True(ZoneLabels.IsReserved(label), $"the zone answers {label}.<zone> for itself, but '{label}' is not in ZoneLabels.Reserved"));
    }

    [Fact]
    public void ServiceDefinition_NamedLikeAnyOwnName_IsRefusedWithHD1019()
    {
        foreach (var label in OwnLabels().Union(ZoneLabels.Reserved))
        {
            var diagnostics = new DiagnosticBag();
            ServiceDefinitionParser.Parse($"name: {label}\nroles:\n  web:\n    entryPoint: {{ command: /bin/true }}\n", diagnostics);

            Assert.True(diagnostics.HasErrors);
            Assert.Contains(diagnostics.Items, d => d.Code == DiagnosticCodes.ReservedServiceName && d.Message.Contains($"'{label}' is reserved", StringComparison.Ordinal));
        }
    }

    [Fact]
    public void Build_WithAServiceNamedLikeAnOwnName_AddsNoRecordToTheZone()
    {
        var bare = Dump(Build());
        foreach (var label in OwnLabels().Union(ZoneLabels.Reserved))
        {
            // As a service stored before the name was reserved would be published: production and staging, a VIP, a Ready instance.
            var dump = Dump(Build(Service(label, "127.77.0.9"), Service($"{label}.{ZoneLabels.Staging}", "127.77.0.10")));

            Assert.Equal(bare, dump);
        }

        Assert.NotEqual(bare, Dump(Build(Service("nsx", "127.77.0.9"))));
    }

    /// <summary>The first label below the zone of every name a zone holds that is not the apex and not at or below a service's own name.</summary>
    private static List<string> OwnLabels()
    {
        var zone = Build(Service("shop", "127.77.0.5"), Service("shop.staging", "127.77.0.6"));
        var suffix = $".{zone.Zone}";
        return [.. zone.Names
            .Where(n => n != zone.Zone && n != $"shop{suffix}" && !n.EndsWith($".shop{suffix}", StringComparison.Ordinal))
            .Select(n => n[..^suffix.Length].Split('.')[^1])
            .Distinct()
            .Order(StringComparer.Ordinal)];
    }

    private static CompiledZone Build(params DnsService[] services) =>
        CompiledZone.Build(new DnsRecordSet { Serial = 7, Services = services }, Options, [IPAddress.Parse("127.0.0.53")]);

    private static DnsService Service(string name, string vip) =>
        new(name, [vip], [new DnsRole("web", [new DnsInstance(0, "127.0.1.1", [new DnsEndpoint("http", "tcp", 8080)])])]);

    /// <summary>Every name with every record it answers, as text, for comparing two zones.</summary>
    private static List<string> Dump(CompiledZone zone) =>
        [.. zone.Names.Order(StringComparer.Ordinal).SelectMany(n => zone.Find(n)!.Sets.SelectMany(s => s.Records.Select(r => $"{n} {s.Type} {Convert.ToHexString(r)}")).DefaultIfEmpty(n))];
}
