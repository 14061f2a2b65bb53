using System.Text;
using Heddle.Contracts.Api;

namespace Heddle.Benchmarks.Dns;

/// <summary>Knot DNS serving the same names from a zone file, with one UDP worker.</summary>
internal static class Knot
{
    public static DnsHarness.ReferenceServer Start(string work, DnsRecordSet records) => DnsHarness.ReferenceServer.OnReservedPort(port => Start(work, records, port));

    private static DnsHarness.ReferenceServer Start(string work, DnsRecordSet records, int port)
    {
        var dir = Path.Combine(work, "knot");
        Directory.CreateDirectory(dir);
        File.WriteAllText(Path.Combine(dir, "heddle.internal.zone"), ZoneFile(records));
        var config = Path.Combine(dir, "knot.conf");
        File.WriteAllText(config, $"""
            server:
                listen: 127.0.0.1@{port}
                udp-workers: 1
                tcp-workers: 1
                background-workers: 1
                rundir: "{dir}"
            database:
                storage: "{dir}"
            template:
              - id: default
                storage: "{dir}"
                semantic-checks: off
            zone:
              - domain: heddle.internal
                file: heddle.internal.zone
            log:
              - target: stderr
                any: error
            """);
        return DnsHarness.ReferenceServer.Launch("knotd", ["-c", config], port);
    }

    private static string ZoneFile(DnsRecordSet records)
    {
        var zone = new StringBuilder();
        zone.AppendLine("$ORIGIN heddle.internal.").AppendLine("$TTL 5");
        zone.AppendLine("@ SOA ns hostmaster 1 3600 600 86400 5").AppendLine("@ NS ns").AppendLine("ns A 127.0.0.1");
        zone.AppendLine("dns-version TXT \"heddle-dns 1\"");
        foreach (var record in FlatRecords.Of(records))
        {
            var relative = record.Name[..^".heddle.internal".Length];
            zone.AppendLine(record.Type == "SRV"
                ? $"{relative} SRV 0 1 {record.Port} {record.Value[..^".heddle.internal".Length]}"
                : $"{relative} A {record.Value}");
        }

        return zone.ToString();
    }
}

/// <summary>dnsmasq answering the same names locally (no upstream), names outside them in the zone NXDOMAIN.</summary>
internal static class Dnsmasq
{
    public static DnsHarness.ReferenceServer Start(string work, DnsRecordSet records) => DnsHarness.ReferenceServer.OnReservedPort(port => Start(work, records, port));

    private static DnsHarness.ReferenceServer Start(string work, DnsRecordSet records, int port)
    {
        var dir = Path.Combine(work, "dnsmasq");
        Directory.CreateDirectory(dir);
        var config = new StringBuilder();
        config.AppendLine($"port={port}").AppendLine("listen-address=127.0.0.1").AppendLine("bind-interfaces").AppendLine("no-resolv").AppendLine("no-hosts")
            .AppendLine("no-poll").AppendLine("local=/heddle.internal/").AppendLine("cache-size=10000").AppendLine("user=root")
            .AppendLine($"pid-file={Path.Combine(dir, "pid")}").AppendLine("txt-record=dns-version.heddle.internal,\"heddle-dns 1\"");
        foreach (var record in FlatRecords.Of(records))
        {
            config.AppendLine(record.Type == "SRV" ? $"srv-host={record.Name},{record.Value},{record.Port},0,1" : $"host-record={record.Name},{record.Value}");
        }

        var file = Path.Combine(dir, "dnsmasq.conf");
        File.WriteAllText(file, config.ToString());
        return DnsHarness.ReferenceServer.Launch("dnsmasq", ["--keep-in-foreground", $"--conf-file={file}"], port);
    }
}

/// <summary>The names a record set defines, one A or SRV record at a time, for the reference servers' own formats.</summary>
internal static class FlatRecords
{
    public sealed record Record(string Name, string Type, string Value, int Port = 0);

    public static IEnumerable<Record> Of(DnsRecordSet records)
    {
        foreach (var service in records.Services)
        {
            var serviceName = $"{service.Name}.heddle.internal";
            foreach (var address in service.Roles.SelectMany(r => r.Instances).Select(i => i.Address).Distinct())
            {
                yield return new Record(serviceName, "A", address);
            }

            foreach (var role in service.Roles)
            {
                var roleName = $"{role.Name}.{serviceName}";
                foreach (var instance in role.Instances)
                {
                    yield return new Record(roleName, "A", instance.Address);
                    yield return new Record($"{instance.Index}.{roleName}", "A", instance.Address);
                    foreach (var endpoint in instance.Endpoints)
                    {
                        yield return new Record($"_{endpoint.Name}._{endpoint.Transport}.{roleName}", "SRV", $"{instance.Index}.{roleName}", endpoint.Port);
                    }
                }
            }
        }
    }
}
