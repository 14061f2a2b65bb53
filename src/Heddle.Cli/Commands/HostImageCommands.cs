using System.CommandLine;
using System.Diagnostics;
using Heddle.Cli.Client;
using Heddle.Contracts.Api;
using Heddle.Controller.HostImages;
using Heddle.Packaging.HostImages;

namespace Heddle.Cli.Commands;

/// <summary>
/// `heddle hostimage build|list|delete|rollout` (admin): what machines network-boot into. A host image is this machine's Debian cloud
/// kernel and an initramfs holding busybox, the kernel's virtio network modules and the self-contained heddle, whose init
/// starts the agent with what the boot service's kernel command line says (see Heddle.Packaging's HostImageLayout).
/// </summary>
internal static class HostImageCommands
{
    public static Command Create(CliConsole console) =>
        new("hostimage", "Host images: the kernel and initramfs registered machines network-boot into, to run the agent (admin)") { Build(console), List(console), Delete(console), Rollout(console) };

    private static Command Build(CliConsole console)
    {
        var name = new Argument<string>("name") { Description = "The host image's name (for example bookworm-1); 'heddle machine add --host-image NAME' sets a machine to boot it" };
        var heddle = new Option<string?>("--heddle") { Description = "The self-contained heddle executable to put in it (default: this one, when it is the single-file build scripts/build.sh makes)" };
        var release = new Option<string?>("--kernel-release") { Description = "The kernel release (default: the newest installed *-cloud-amd64, from linux-image-cloud-amd64)" };
        var busybox = new Option<string>("--busybox") { Description = "A static busybox (busybox-static)", DefaultValueFactory = _ => HostImageSources.DefaultBusybox };
        var output = new Option<string?>("--output-dir") { Description = "Write the kernel (vmlinuz) and initramfs (initrd.img) to this folder instead of adding them to the cluster (for 'heddle boot --kernel --initrd')" };
        var uncompressed = new Option<bool>("--uncompressed") { Description = "Leave the initramfs a plain cpio: larger to send, nothing for the booting kernel to inflate" };
        var command = new Command("build", "Build a host image from this machine's Debian cloud kernel, busybox and heddle, and add it to the cluster (admin)")
        {
            name, heddle, release, busybox, output, uncompressed,
        };
        command.SetAction(async (parse, ct) =>
        {
            var imageName = parse.GetValue(name)!;
            if (HostImageRules.NameError(imageName) is { } nameError)
            {
                throw new UsageException(nameError);
            }

            var executable = parse.GetValue(heddle) ?? RunningSingleFile()
                ?? throw new UsageException("this heddle is not the single-file build (it runs from its assemblies): give --heddle artifacts/heddle/heddle (scripts/build.sh makes it)");
            var folder = parse.GetValue(output);
            if (folder is not null && File.Exists(folder))
            {
                throw new UsageException($"--output-dir '{folder}' is a file, not a folder");
            }

            using var api = folder is null ? ClientConfig.Load().Connect() : null; // the cluster, checked before the work
            HostImageSources sources;
            try
            {
                sources = HostImageSources.Find(executable, parse.GetValue(release), parse.GetValue(busybox)!);
            }
            catch (HostImageException e)
            {
                throw new UsageException(e.Message);
            }

            var temporary = Directory.CreateTempSubdirectory("heddle-hostimage-");
            try
            {
                var started = Stopwatch.StartNew();
                var initrd = Path.Combine(folder ?? temporary.FullName, "initrd.img");
                if (folder is not null)
                {
                    Directory.CreateDirectory(folder);
                }

                HostImageBuilder.WriteInitramfs(initrd, imageName, sources, parse.GetValue(uncompressed) ? InitramfsCompression.None : InitramfsCompression.Gzip);
                console.Error.WriteLine($"built {imageName} in {started.Elapsed.TotalSeconds:0.0} s: kernel {sources.KernelRelease}, initramfs {CommonOptions.FormatBytes(new FileInfo(initrd).Length)} "
                    + $"(busybox, {HostImageLayout.Modules.Count} modules, {sources.Libraries.Count} libraries, heddle {CommonOptions.FormatBytes(new FileInfo(sources.Heddle).Length)})");
                if (api is null)
                {
                    File.Copy(sources.Kernel, Path.Combine(folder!, "vmlinuz"), overwrite: true);
                    console.Out.WriteLine($"host image {imageName} written to {Path.GetFullPath(folder!)}: vmlinuz, initrd.img (not added to a cluster)");
                    return ExitCodes.Ok;
                }

                var kernel = await api.UploadHostImagePartAsync(sources.Kernel, HostImagePart.Kernel, ct);
                var initramfs = await api.UploadHostImagePartAsync(initrd, HostImagePart.Initrd, ct);
                var added = await api.AddHostImageAsync(new HostImageAddRequest(imageName, kernel.Sha256, initramfs.Sha256, sources.KernelRelease), ct);
                console.Out.WriteLine(added.AlreadyPresent
                    ? $"host image {imageName} is already present, with the same kernel and initramfs"
                    : $"host image {imageName} added: kernel {kernel.Sha256[..12]} ({sources.KernelRelease}), initramfs {initramfs.Sha256[..12]} ({CommonOptions.FormatBytes(initramfs.Bytes)})");
                return ExitCodes.Ok;
            }
            finally
            {
                temporary.Delete(recursive: true);
            }
        });
        return command;
    }

    private static Command List(CliConsole console)
    {
        var format = CommonOptions.Format();
        var command = new Command("list", "List host images, the machines set to boot each and the nodes that run it (admin)") { format };
        command.SetAction(async (parse, ct) =>
        {
            using var api = ClientConfig.Load().Connect();
            var images = await api.ListHostImagesAsync(ct);
            if (!ClusterCommands.Json(console, parse.GetValue(format), images))
            {
                var table = new Table("HOST IMAGE", "KERNEL", "RELEASE", "INITRAMFS", "SIZE", "ADDED", "MACHINES", "NODES");
                foreach (var i in images)
                {
                    table.Add(i.Name, i.KernelSha256[..12], i.KernelRelease ?? "-", i.InitrdSha256[..12], CommonOptions.FormatBytes(i.KernelBytes + i.InitrdBytes), i.Added.ToString("u"),
                        i.Machines.Count == 0 ? "-" : string.Join(',', i.Machines), i.Nodes.Count == 0 ? "-" : string.Join(',', i.Nodes));
                }

                table.Write(console.Out);
            }

            return ExitCodes.Ok;
        });
        return command;
    }

    private static Command Delete(CliConsole console)
    {
        var name = new Argument<string>("name") { Description = "The host image" };
        var command = new Command("delete", "Delete a host image no machine is set to boot (admin)") { name };
        command.SetAction(async (parse, ct) =>
        {
            using var api = ClientConfig.Load().Connect();
            await api.DeleteHostImageAsync(parse.GetValue(name)!, ct);
            console.Out.WriteLine($"host image {parse.GetValue(name)} deleted");
            return ExitCodes.Ok;
        });
        return command;
    }

    private static Command Rollout(CliConsole console)
    {
        var name = new Argument<string?>("name") { Description = "The host image to bring every machine on a host image to", Arity = ArgumentArity.ZeroOrOne };
        var maxParallel = new Option<int>("--max-parallel") { Description = "At most this many nodes at a time, all of one upgrade domain", DefaultValueFactory = _ => 1 };
        var command = new Command("rollout", "Update the hosts to a host image, node by node in upgrade-domain order: drain, reboot into it, rejoin, health gate (admin); "
            + "'rollout status|pause|resume|rollback' read and steer it")
        {
            name, maxParallel, RolloutStatus(console), RolloutAction(console, "pause", "Let the nodes being walked finish and start no other (admin)"),
            RolloutAction(console, "resume", "Carry on after a pause (admin)"),
            RolloutAction(console, "rollback", "Walk the nodes touched back to their previous host image (admin)"),
        };
        command.SetAction(async (parse, ct) =>
        {
            var image = parse.GetValue(name) ?? throw new UsageException("give the host image to roll out ('heddle hostimage list' shows them), or status, pause, resume or rollback");
            using var api = ClientConfig.Load().Connect();
            var status = await api.StartHostRolloutAsync(new HostRolloutRequest(image, parse.GetValue(maxParallel)), ct);
            console.Out.WriteLine($"host rollout to {status.Image} started: {status.Nodes.Count} node(s), at most {status.MaxParallel} at a time; 'heddle hostimage rollout status' follows it");
            WriteNodes(console, status);
            return ExitCodes.Ok;
        });
        return command;
    }

    private static Command RolloutStatus(CliConsole console)
    {
        var format = CommonOptions.Format();
        var command = new Command("status", "Show the host rollout: its phase and where each node is (admin)") { format };
        command.SetAction(async (parse, ct) =>
        {
            using var api = ClientConfig.Load().Connect();
            var status = await api.GetHostRolloutAsync(ct);
            if (!ClusterCommands.Json(console, parse.GetValue(format), status))
            {
                console.Out.WriteLine($"host rollout to {status.Image}: {status.Phase}{(status.RollingBack && status.Phase != "RollingBack" ? " (rolling back)" : string.Empty)}"
                    + $"{(status.Reason is { } reason ? $": {reason}" : string.Empty)}; started {status.Started:u}{(status.Finished is { } f ? $", ended {f:u}" : string.Empty)}");
                WriteNodes(console, status);
            }

            return ExitCodes.Ok;
        });
        return command;
    }

    private static Command RolloutAction(CliConsole console, string action, string description)
    {
        var command = new Command(action, description);
        command.SetAction(async (parse, ct) =>
        {
            using var api = ClientConfig.Load().Connect();
            var status = await api.HostRolloutActionAsync(action, ct);
            console.Out.WriteLine($"host rollout to {status.Image}: {status.Phase}");
            return ExitCodes.Ok;
        });
        return command;
    }

    private static void WriteNodes(CliConsole console, HostRolloutStatus status)
    {
        var table = new Table("NODE", "MACHINE", "UPGRADE DOMAIN", "STAGE", "RUNS", "CONDITION");
        foreach (var n in status.Nodes)
        {
            table.Add(n.Node, n.Machine, n.UpgradeDomain, n.Stage, n.RunsImage ?? "-", n.NodeCondition ?? "-");
        }

        table.Write(console.Out);
    }

    /// <summary>This process's executable when it is the single-file build (not `dotnet heddle.dll`, not a heddle beside its assemblies), else null.</summary>
    private static string? RunningSingleFile()
    {
        if (Environment.ProcessPath is not { } path)
        {
            return null;
        }

        try
        {
            HostImageSources.CheckSingleFile(path);
            return path;
        }
        catch (HostImageException)
        {
            return null;
        }
    }
}
