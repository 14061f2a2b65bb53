using System.CommandLine;
using Heddle.Cli.Client;
using Heddle.Contracts.Api;

namespace Heddle.Cli.Commands;

/// <summary>
/// `heddle machine add|list|set-image|remove` (admin): the machines that join by being switched on. A registered machine that
/// network-boots through `heddle boot` gets the host image and a join string that enrols its name, in its fault domain.
/// </summary>
internal static class MachineCommands
{
    public static Command Create(CliConsole console)
    {
        var mac = new Argument<string>("mac") { Description = "The MAC address of the network card it boots from, e.g. 52:54:00:12:34:56" };
        var name = new Option<string>("--name") { Description = "The node name it joins as", Required = true };
        var faultDomain = new Option<string>("--fault-domain") { Description = "The fault domain it is in (a rack, a power feed), e.g. rack-1", Required = true };
        var labels = new Option<string[]>("--labels", "--label") { Description = "A node label, key=value (repeatable, or comma-separated)" };
        var hostImage = new Option<string?>("--host-image") { Description = "The host image it boots ('heddle hostimage list'; default: the kernel and initramfs 'heddle boot' was given)" };
        var add = new Command("add", "Register a machine by its MAC address (admin)") { mac, name, faultDomain, labels, hostImage };
        add.SetAction(async (parse, ct) =>
        {
            var labelMap = new Dictionary<string, string>(StringComparer.Ordinal);
            foreach (var label in (parse.GetValue(labels) ?? []).SelectMany(l => l.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)))
            {
                var eq = label.IndexOf('=');
                if (eq <= 0)
                {
                    throw new UsageException($"--labels '{label}' is not key=value");
                }

                labelMap[label[..eq]] = label[(eq + 1)..];
            }

            using var api = ClientConfig.Load().Connect();
            var added = await api.AddMachineAsync(new MachineAddRequest(parse.GetValue(mac)!, parse.GetValue(name)!, parse.GetValue(faultDomain)!, labelMap, parse.GetValue(hostImage)), ct);
            console.Out.WriteLine($"machine {added.Name} registered: MAC {added.Mac}, fault domain {added.FaultDomain}, {(added.HostImage is { } image ? $"host image {image}" : "the boot service's kernel and initramfs")}; it joins when it network-boots from 'heddle boot'");
            return ExitCodes.Ok;
        });

        var format = CommonOptions.Format();
        var list = new Command("list", "List registered machines and how far each is on its way to being a node (admin)") { format };
        list.SetAction(async (parse, ct) =>
        {
            using var api = ClientConfig.Load().Connect();
            var machines = await api.ListMachinesAsync(ct);
            if (!ClusterCommands.Json(console, parse.GetValue(format), machines))
            {
                var table = new Table("NAME", "MAC", "FAULT DOMAIN", "LABELS", "HOST IMAGE", "STATE", "LAST BOOT");
                foreach (var m in machines)
                {
                    table.Add(m.Name, m.Mac, m.FaultDomain, m.Labels.Count == 0 ? "-" : string.Join(',', m.Labels.Select(l => $"{l.Key}={l.Value}")), m.HostImage ?? "-", m.State, m.LastBoot?.ToString("u"));
                }

                table.Write(console.Out);
            }

            return ExitCodes.Ok;
        });

        var removed = new Argument<string>("name") { Description = "The machine's name" };
        var remove = new Command("remove", "Forget a machine and revoke its join string not used yet; a node it became stays ('heddle nodes remove' it) (admin)") { removed };
        remove.SetAction(async (parse, ct) =>
        {
            using var api = ClientConfig.Load().Connect();
            var gone = await api.RemoveMachineAsync(parse.GetValue(removed)!, ct);
            console.Out.WriteLine($"machine {gone.Name} ({gone.Mac}) removed");
            return ExitCodes.Ok;
        });

        var changed = new Argument<string>("name") { Description = "The machine's name" };
        var image = new Argument<string>("host-image") { Description = "The host image it is to boot ('heddle hostimage list')" };
        var setImage = new Command("set-image", "Set the host image a machine boots, from its next boot on (admin)") { changed, image };
        setImage.SetAction(async (parse, ct) =>
        {
            using var api = ClientConfig.Load().Connect();
            var machine = await api.SetMachineHostImageAsync(parse.GetValue(changed)!, parse.GetValue(image)!, ct);
            console.Out.WriteLine($"machine {machine.Name} boots host image {machine.HostImage} from its next boot on"
                + (machine.State == MachineState.Enrolled ? $"; its node runs the image it booted until then ('heddle nodes' shows which)" : string.Empty));
            return ExitCodes.Ok;
        });

        return new Command("machine", "Machines that join the cluster by network boot (admin)") { add, list, setImage, remove };
    }
}
