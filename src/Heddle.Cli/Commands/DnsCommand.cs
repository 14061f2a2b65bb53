using System.CommandLine;
using Heddle.Cli.Client;
using Heddle.Contracts.Api;
using Heddle.Controller.Dns;
using Heddle.Controller.Hosting;
using Heddle.Controller;
using Heddle.Dns.Server;
using Heddle.Dns;
using Microsoft.Extensions.DependencyInjection;

namespace Heddle.Cli.Commands;

/// <summary>The DNS options shared by `heddle controller` (which hosts the server) and `heddle dns`.</summary>
internal sealed class DnsOptionsBinder
{
    private readonly Option<string> _zone = new("--zone") { Description = "The cluster's DNS zone (default heddle.internal)", DefaultValueFactory = _ => "heddle.internal" };
    private readonly Option<int> _port = new("--dns-port") { Description = "DNS port, udp and tcp; 0 lets the OS choose (default 0)" };
    private readonly Option<int> _ttl = new("--dns-ttl") { Description = "TTL of answers, 0-3600 s (default 5)", DefaultValueFactory = _ => 5 };
    private readonly Option<bool> _off = new("--no-dns") { Description = "Do not host a DNS server" };

    public static DnsOptionsBinder Create() => new();

    public void AddTo(Command command, bool withOff = true)
    {
        command.Options.Add(_zone);
        command.Options.Add(_port);
        command.Options.Add(_ttl);
        if (withOff)
        {
            command.Options.Add(_off);
        }
    }

    public DnsOptions Options(ParseResult parse, string address)
    {
        var options = new DnsOptions { Zone = parse.GetValue(_zone)!, Port = parse.GetValue(_port), Ttl = parse.GetValue(_ttl), ListenAddress = address };
        try
        {
            options.Validate();
        }
        catch (ArgumentException e)
        {
            throw new UsageException(e.Message);
        }

        return options;
    }

    /// <summary>Starts a DNS server fed by the controller in this process (null with --no-dns).</summary>
    public DnsServer? StartHosted(ParseResult parse, string address, ControllerHost host)
    {
        if (parse.GetValue(_off))
        {
            return null;
        }

        var server = DnsServer.Start(Options(parse, address), host.Meters);
        var source = host.Services.GetRequiredService<DnsRecordSource>();
        source.Changed += server.Update;
        server.Update(source.Current);
        var info = host.Services.GetRequiredService<ControllerInfo>();
        info.DnsAddress = server.Endpoint.ToString();
        info.Zone = server.Zone;
        return server;
    }
}

/// <summary><c>heddle dns --controller URL</c>: the cluster's DNS server on a host of its own, fed by the controller's API.</summary>
internal static class DnsCommand
{
    public static Command Create(CliConsole console)
    {
        var controller = new Option<string?>("--controller") { Description = "The controller's API URL, or several comma-separated (the next is followed when one is lost; default: from $HEDDLE_HOME/config.json)" };
        var tokenFile = new Option<string?>("--token-file") { Description = "A file holding an admin API token (default: from $HEDDLE_HOME/config.json)" };
        var caFile = new Option<string?>("--ca-file") { Description = "The cluster CA certificate, PEM, to check the controller with (default: from $HEDDLE_HOME/config.json; the controller writes <state>/ca.crt)" };
        var listen = new Option<string>("--listen") { Description = "Address to answer on (default 127.0.0.1)", DefaultValueFactory = _ => "127.0.0.1" };
        var dns = DnsOptionsBinder.Create();
        var metrics = new MetricsOptions();
        var command = new Command("dns", "Run the cluster's DNS server on its own, fed by a controller") { controller, tokenFile, caFile, listen };
        dns.AddTo(command, withOff: false);
        metrics.AddTo(command);
        command.SetAction(async (parse, ct) =>
        {
            metrics.Options(parse);
            using var api = ControllerFollower.Connect(parse.GetValue(controller), parse.GetValue(tokenFile), parse.GetValue(caFile));
            var url = api.ApiUrl;
            using var meters = new Heddle.Contracts.Metrics.MeterScope();
            await using var server = DnsServer.Start(dns.Options(parse, parse.GetValue(listen)!), meters);
            await using var listener = await metrics.StartAsync(parse, meters, console, "dns", ct);
            console.Out.WriteLine($"dns {Environment.ProcessId}: zone {server.Zone} on {server.Endpoint} (udp and tcp), records from {url}");
            var copy = Views.DnsCopy(); // kept across reconnections: a controller that still knows its version sends only what changed
            await ControllerFollower.RunAsync("dns", c => api.FollowDnsRecordsAsync(copy, server.Endpoint.ToString(), server.Zone, c), records =>
            {
                server.Update(records);
                return Task.CompletedTask;
            }, console, ct);
            return ExitCodes.Ok;
        });
        return command;
    }
}
