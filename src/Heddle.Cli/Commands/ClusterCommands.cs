using System.CommandLine;
using Heddle.Cli.Client;
using Heddle.Contracts.Api;

namespace Heddle.Cli.Commands;

/// <summary>The read-only user commands: status, nodes, instances, events, logs, info.</summary>
internal static class ClusterCommands
{
    public static IEnumerable<Command> Create(CliConsole console)
    {
        yield return Status(console);
        yield return Nodes(console);
        yield return Instances(console);
        yield return Events(console);
        yield return Logs(console);
        yield return Info(console);
    }

    private static Command Status(CliConsole console)
    {
        var service = new Argument<string?>("service") { Description = "A service (default: all)", Arity = ArgumentArity.ZeroOrOne };
        var slot = DeployCommands.SlotOption("Only this slot (with -o json: production unless given)");
        var format = CommonOptions.Format();
        var command = new Command("status", "Show services, or one service with its instances (both slots)") { service, slot, format };
        command.SetAction(async (parse, ct) =>
        {
            using var api = ClientConfig.Load().Connect();
            var name = parse.GetValue(service);
            if (name is null)
            {
                var all = await api.ListServicesAsync(ct);
                if (!Json(console, parse.GetValue(format), all))
                {
                    var table = new Table("SERVICE", "SLOT", "STATE", "REVISION", "READY", "VIP", "PACKAGE");
                    all.ForEach(s => table.Add(s.Name, s.Slot, s.State, s.Revision, $"{s.ReadyInstances}/{s.DesiredInstances}", s.Vip, s.PackageSha256[..12]));
                    table.Write(console.Out);
                }

                return ExitCodes.Ok;
            }

            if (parse.GetValue(format) == "json")
            {
                console.WriteJson(await api.GetServiceAsync(name, parse.GetValue(slot), ct));
                return ExitCodes.Ok;
            }

            // Text: every slot the service has (or the one asked for).
            var slots = (await api.ListServicesAsync(ct)).Where(s => s.Name == name && (parse.GetValue(slot) is not { } only || s.Slot == only)).OrderBy(s => s.Slot == "staging").ToList();
            if (slots.Count == 0)
            {
                slots.Add(await api.GetServiceAsync(name, parse.GetValue(slot), ct)); // says why there is none
            }

            foreach (var status in slots)
            {
                var vip = status.Vip is null ? string.Empty : $", VIP {status.Vip}";
                var upgrade = status.Upgrade is null or UpgradeStates.Completed ? string.Empty : $", upgrade {status.Upgrade}{(status.UpgradeReason is { } why ? $" ({why})" : string.Empty)}";
                var slotText = slots.Count > 1 || status.Slot != "production" ? $" [{status.Slot}: {status.DnsName}, deployment {status.Deployment}]" : string.Empty;
                console.Out.WriteLine($"service {status.Name}{slotText}: {status.State}, revision {status.Revision}, {status.ReadyInstances}/{status.DesiredInstances} Ready{vip}, package {status.PackageSha256[..12]}{upgrade}");
                if (status.VipProblem is { } problem)
                {
                    console.Out.WriteLine($"  VIP problem: {problem}");
                }

                WriteInstances(console, status.Instances);
            }

            return ExitCodes.Ok;
        });
        return command;
    }

    private static Command Nodes(CliConsole console)
    {
        var format = CommonOptions.Format();
        var command = new Command("nodes", "List the cluster's nodes (and 'heddle nodes remove NODE')") { format, TokenCommands.RemoveNode(console) };
        command.SetAction(async (parse, ct) =>
        {
            using var api = ClientConfig.Load().Connect();
            var nodes = await api.ListNodesAsync(ct);
            if (!Json(console, parse.GetValue(format), nodes))
            {
                var table = new Table("NODE", "CONDITION", "ADDRESS", "FAULT DOMAIN", "CPUS", "MEMORY", "INSTANCES", "DRIVERS", "HOST IMAGE", "LAST SEEN", "ISOLATION");
                foreach (var n in nodes)
                {
                    table.Add(n.Name, n.Condition, n.Address, n.FaultDomain, $"{n.AllocatedCpus}/{n.Cores.Sum(c => c.Count)}", $"{n.MemoryMiB} MiB", n.Instances, string.Join(',', n.Drivers), n.HostImage ?? "-", n.LastSeen.ToString("u"), n.Isolation);
                }

                table.Write(console.Out);
            }

            return ExitCodes.Ok;
        });
        return command;
    }

    private static Command Instances(CliConsole console)
    {
        var service = new Argument<string?>("service") { Description = "A service (default: all)", Arity = ArgumentArity.ZeroOrOne };
        var format = CommonOptions.Format();
        var command = new Command("instances", "List role instances: node, CPUs, state, ports") { service, format };
        command.SetAction(async (parse, ct) =>
        {
            using var api = ClientConfig.Load().Connect();
            var instances = await api.ListInstancesAsync(parse.GetValue(service), ct);
            if (!Json(console, parse.GetValue(format), instances))
            {
                WriteInstances(console, instances);
            }

            return ExitCodes.Ok;
        });
        return command;
    }

    private static Command Events(CliConsole console)
    {
        var follow = new Option<bool>("--follow", "-f") { Description = "Keep printing new events as they happen" };
        var format = CommonOptions.Format();
        var command = new Command("events", "Show the cluster's event log") { follow, format };
        command.SetAction(async (parse, ct) =>
        {
            using var api = ClientConfig.Load().Connect();
            var json = parse.GetValue(format) == "json";
            if (!parse.GetValue(follow))
            {
                var events = await api.ListEventsAsync(0, ct);
                if (json)
                {
                    console.WriteJson(events);
                }
                else
                {
                    events.ForEach(e => WriteEvent(console, e));
                }

                return ExitCodes.Ok;
            }

            try
            {
                await foreach (var e in api.FollowEventsAsync(0, ct))
                {
                    if (json)
                    {
                        console.Out.WriteLine(System.Text.Json.JsonSerializer.Serialize(e, HeddleApiClient.Json));
                    }
                    else
                    {
                        WriteEvent(console, e);
                    }
                }
            }
            catch (OperationCanceledException)
            {
            }

            return ExitCodes.Ok;
        });
        return command;
    }

    private static Command Logs(CliConsole console)
    {
        var target = new Argument<string>("instance") { Description = "service/role/index, as in hello/web/0" };
        var follow = new Option<bool>("--follow", "-f") { Description = "Keep printing new lines" };
        var stderr = new Option<bool>("--stderr") { Description = "Show stderr instead of stdout" };
        var tail = new Option<int>("--tail") { Description = "Lines from the end to start with (default 100)", DefaultValueFactory = _ => 100 };
        var format = CommonOptions.Format();
        var command = new Command("logs", "Show an instance's output (-o json: one object per line)") { target, follow, stderr, tail, format };
        command.SetAction(async (parse, ct) =>
        {
            var parts = parse.GetValue(target)!.Split('/');
            if (parts.Length != 3 || !int.TryParse(parts[2], out var index))
            {
                throw new UsageException($"'{parse.GetValue(target)}' is not an instance; use service/role/index, as in hello/web/0");
            }

            using var api = ClientConfig.Load().Connect();
            try
            {
                var name = parse.GetValue(stderr) ? "stderr" : "stdout";
                await using var stream = await api.LogsAsync(parts[0], parts[1], index, name, parse.GetValue(tail), parse.GetValue(follow), ct);
                if (parse.GetValue(format) == "json")
                {
                    using var reader = new StreamReader(stream);
                    while (await reader.ReadLineAsync(ct) is { } line)
                    {
                        console.Out.WriteLine(System.Text.Json.JsonSerializer.Serialize(new { instance = parse.GetValue(target), stream = name, line }));
                        console.Out.Flush();
                    }
                }
                else
                {
                    await using var stdout = Console.OpenStandardOutput();
                    await stream.CopyToAsync(stdout, ct);
                }
            }
            catch (OperationCanceledException)
            {
            }

            return ExitCodes.Ok;
        });
        return command;
    }

    private static Command Info(CliConsole console)
    {
        var format = CommonOptions.Format();
        var command = new Command("info", "Show the API URL, DNS address and zone of the configured cluster") { format };
        command.SetAction(async (parse, ct) =>
        {
            using var api = ClientConfig.Load().Connect();
            var info = await api.InfoAsync(ct);
            if (!Json(console, parse.GetValue(format), info))
            {
                console.Out.WriteLine($"API        {info.ApiUrl}");
                console.Out.WriteLine($"leader     {info.Leader ?? "-"}");
                console.Out.WriteLine($"controllers {string.Join(", ", info.Controllers)}");
                console.Out.WriteLine($"store      {info.Store ?? "-"}");
                console.Out.WriteLine($"agents     {info.AgentUrl}");
                console.Out.WriteLine($"DNS        {info.DnsAddress ?? "not served by the controller (started with --no-dns)"}");
                console.Out.WriteLine($"zone       {info.Zone ?? "-"}");
                console.Out.WriteLine($"state      {info.StateDirectory}");
                console.Out.WriteLine($"CA hash    {info.CaHash ?? "-"} (for 'heddle login --ca-hash')");
                console.Out.WriteLine($"config     {ClientConfig.FilePath}");
                console.Out.WriteLine();
                BalancerTable.Write(console.Out, info.Balancers);
            }

            return ExitCodes.Ok;
        });
        return command;
    }

    internal static void WriteInstances(CliConsole console, IEnumerable<InstanceStatus> instances)
    {
        var table = new Table("INSTANCE", "STATE", "REVISION", "UD", "NODE", "ADDRESS", "PORTS", "CPUS", "MEMORY", "DISK", "RESTARTS", "REASON");
        foreach (var i in instances)
        {
            // The revision it runs; "3→4" while it is being brought to another one.
            var revision = i.RunningRevision == i.Revision || i.RunningRevision == 0 ? $"{i.Revision}" : $"{i.RunningRevision}→{i.Revision}";
            table.Add(i.Id, i.Draining ? "Draining" : i.State, revision, i.UpgradeDomain, i.Node, i.NodeAddress, string.Join(',', i.Ports.Select(p => $"{p.Key}={p.Value}")),
                string.Join(',', i.Cpus), $"{i.MemoryMiB} MiB", i.DiskSizeMiB == 0 ? "-" : $"{i.DiskUsedMiB}/{i.DiskSizeMiB} MiB", i.Restarts, i.Reason);
        }

        table.Write(console.Out);
    }

    private static void WriteEvent(CliConsole console, EventRecord e) => console.Out.WriteLine($"{e.Time:HH:mm:ss.fff}  {e.Kind,-18} {e.Subject,-20} {e.Message}");

    internal static bool Json<T>(CliConsole console, string? format, T value)
    {
        if (format != "json")
        {
            return false;
        }

        console.WriteJson(value);
        return true;
    }
}
