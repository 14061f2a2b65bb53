using System.Text.Json;
using Heddle.Contracts.Api;
using Heddle.Controller.Publishing;

namespace Heddle.Controller.Tests.Publishing;

/// <summary>A projection's fingerprint is the serializer's own JSON of its parts, whatever kind of list holds them.</summary>
public sealed class FingerprintJsonTests
{
    [Fact]
    public void Parts_AreWrittenAsTheDefaultsWriteThem_FromAnyList()
    {
        IReadOnlyList<DnsService> parts =
        [
            new DnsService("web.shop", ["10.0.0.1"], [new DnsRole("web", [new DnsInstance(0, "198.18.0.2", [new DnsEndpoint("http", "tcp", 8080)]), new DnsInstance(1, "198.18.0.3", [])])]),
            new DnsService("db.shop", [], new List<DnsRole> { new("db", new[] { new DnsInstance(0, "198.18.0.4", new List<DnsEndpoint> { new("sql", "tcp", 5432), new("dns", "udp", 53) }) }) }),
        ];

        Assert.Equal(JsonSerializer.Serialize(parts), JsonSerializer.Serialize(parts, FingerprintJson.Options));
        Assert.Equal("[]", JsonSerializer.Serialize<IReadOnlyList<DnsService>>([], FingerprintJson.Options));

        var read = JsonSerializer.Deserialize<IReadOnlyList<DnsService>>(JsonSerializer.Serialize(parts, FingerprintJson.Options), FingerprintJson.Options)!;
        Assert.Equal(JsonSerializer.Serialize(parts), JsonSerializer.Serialize(read));
    }
}
