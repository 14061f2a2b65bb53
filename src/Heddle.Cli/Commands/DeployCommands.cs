using System.CommandLine;
using System.Diagnostics;
using Heddle.Cli.Client;
using Heddle.Contracts.Api;
using Heddle.Model.Diagnostics;
using Heddle.Model.Packages;

namespace Heddle.Cli.Commands;

/// <summary><c>heddle deploy</c> and <c>heddle delete</c>.</summary>
internal static class DeployCommands
{
    public static IEnumerable<Command> Create(CliConsole console)
    {
        yield return Deploy(console);
        yield return Delete(console);
        yield return Swap(console);
    }

    private static Command Swap(CliConsole console)
    {
        var service = new Argument<string>("service") { Description = "The service whose production and staging slots to exchange" };
        var format = CommonOptions.Format();
        var command = new Command("swap", "Make staging production and production staging: the VIPs and DNS names stay, the instances behind them change") { service, format };
        command.SetAction(async (parse, ct) =>
        {
            using var api = ClientConfig.Load().Connect();
            var done = await api.SwapAsync(parse.GetValue(service)!, ct);
            if (parse.GetValue(format) == "json")
            {
                console.WriteJson(done);
            }
            else
            {
                console.Out.WriteLine($"swapped {done.Service}: production is revision {done.ProductionRevision} ({done.Production}) on {done.ProductionVip ?? "no VIP"}; "
                    + $"staging is revision {done.StagingRevision} ({done.Staging}) on {done.StagingVip ?? "no VIP"}; 'heddle swap {done.Service}' again goes back");
            }

            return ExitCodes.Ok;
        });
        return command;
    }

    private static Command Deploy(CliConsole console)
    {
        var package = new Argument<string>("package") { Description = "The service package (.hpkg)" };
        var config = new Option<string>("--config", "-c") { Description = "The model configuration (<service>.config.yaml)", Required = true };
        var wait = new Option<bool>("--wait") { Description = "Show progress until every instance is Ready (exit 0) or one faults (exit 1)" };
        var timeout = Durations.Option("--timeout", "How long --wait waits", TimeSpan.FromMinutes(5));
        var slot = SlotOption("The slot to deploy into: production (default) or staging, which runs beside production on a VIP and DNS name of its own");
        var format = CommonOptions.Format();
        var command = new Command("deploy", "Deploy a service package with its model configuration") { package, config, slot, wait, timeout, format };
        command.SetAction(async (parse, ct) =>
        {
            var packagePath = CommonOptions.RequireExistingFile(parse.GetValue(package)!, "package");
            var configPath = CommonOptions.RequireExistingFile(parse.GetValue(config)!, "configuration");
            var configuration = CommonOptions.ReadSmallText(configPath, "configuration");
            CheckLocally(packagePath);
            using var api = ClientConfig.Load().Connect();
            var upload = await api.UploadPackageAsync(packagePath, ct);
            var accepted = await api.DeployAsync(new DeploymentRequest(upload.Sha256, configuration, Path.GetFileName(configPath), Slot: parse.GetValue(slot)), ct);
            return await ReportAcceptedAsync(console, api, accepted, parse.GetValue(wait), parse.GetValue(timeout), parse.GetValue(format) == "json", ct);
        });
        return command;
    }

    private static Command Delete(CliConsole console)
    {
        var service = new Argument<string>("service") { Description = "The service to delete" };
        var wait = new Option<bool>("--wait") { Description = "Wait until every instance has stopped and the service is gone" };
        var timeout = Durations.Option("--timeout", "How long --wait waits", TimeSpan.FromMinutes(2));
        var slot = SlotOption("Delete only this slot (staging); without it, every slot of the service goes");
        var format = CommonOptions.Format();
        var command = new Command("delete", "Delete a service: stop its instances and forget it") { service, slot, wait, timeout, format };
        command.SetAction(async (parse, ct) =>
        {
            var name = parse.GetValue(service)!;
            using var api = ClientConfig.Load().Connect();
            await api.DeleteServiceAsync(name, parse.GetValue(slot), ct);
            if (parse.GetValue(slot) is { } only)
            {
                name = (await api.ListServicesAsync(ct)).FirstOrDefault(s => s.Name == name && s.Slot == only)?.Deployment ?? name;
            }

            if (parse.GetValue(format) == "json")
            {
                // Quiet progress; one object at the end.
                var gone = !parse.GetValue(wait) || await WaitUntilGoneAsync(api, name, parse.GetValue(timeout), ct);
                console.WriteJson(new { service = name, deleted = parse.GetValue(wait) && gone, deleting = !parse.GetValue(wait) });
                return gone ? ExitCodes.Ok : ExitCodes.Invalid;
            }

            console.Out.WriteLine($"deleting {name}");
            if (!parse.GetValue(wait))
            {
                return ExitCodes.Ok;
            }

            var clock = Stopwatch.StartNew();
            var last = -1;
            while (clock.Elapsed < parse.GetValue(timeout))
            {
                try
                {
                    var status = await api.GetServiceAsync(name, ct);
                    if (status.Instances.Count != last)
                    {
                        last = status.Instances.Count;
                        console.Out.WriteLine($"  {clock.Elapsed.TotalSeconds,5:0.0}s  {last} instance(s) still stopping");
                    }
                }
                catch (HeddleApiException e) when (e.Status == System.Net.HttpStatusCode.NotFound)
                {
                    console.Out.WriteLine($"deleted {name}");
                    return ExitCodes.Ok;
                }

                await Task.Delay(250, ct);
            }

            throw new CliException($"{name} was not gone after {Durations.Format(parse.GetValue(timeout))}; see 'heddle status {name}' and 'heddle events'");
        });
        return command;
    }

    /// <summary>
    /// Says what was accepted and, with --wait, follows it: an upgrade walk until it ends (exit 0 when it completes,
    /// 1 when it rolled back or paused), otherwise until every instance is Ready at the new revision.
    /// </summary>
    /// <summary>What to follow a deployment by: its slot's own key (the API takes it where a service name goes).</summary>
    private static string Followed(DeploymentAccepted accepted) => accepted.Deployment.Length > 0 ? accepted.Deployment : accepted.Service;

    internal static Option<string?> SlotOption(string description)
    {
        var option = new Option<string?>("--slot") { Description = description };
        option.AcceptOnlyFromAmong("production", "staging");
        return option;
    }

    internal static async Task<int> ReportAcceptedAsync(CliConsole console, HeddleApiClient api, DeploymentAccepted accepted, bool wait, TimeSpan timeout, bool json, CancellationToken ct)
    {
        if (!json)
        {
            var inSlot = accepted.Slot == "production" ? string.Empty : $" ({accepted.Slot} slot)";
            console.Out.WriteLine($"deployment accepted: service {accepted.Service}{inSlot}, revision {accepted.Revision}, package {accepted.PackageSha256[..12]}");
            if (accepted.Changes.Length > 0)
            {
                console.Out.WriteLine($"  changes: {accepted.Changes}{(accepted.Upgrade ? "; upgrading one upgrade domain at a time" : string.Empty)}");
            }
        }

        if (!wait)
        {
            if (json)
            {
                console.WriteJson(accepted);
            }

            return ExitCodes.Ok;
        }

        if (accepted.Upgrade)
        {
            var (exit, upgrade) = await UpgradeWatcher.FollowAsync(console, api, Followed(accepted), accepted.Revision, timeout, quiet: json, stopWhenWaiting: false, ct);
            if (json)
            {
                console.WriteJson(upgrade);
            }

            return exit;
        }

        var (ok, status) = await WaitForReadyAsync(console, api, Followed(accepted), accepted.Revision, timeout, quiet: json, ct);
        if (json)
        {
            console.WriteJson(status);
        }

        return ok ? ExitCodes.Ok : ExitCodes.Invalid;
    }

    private static async Task<bool> WaitUntilGoneAsync(HeddleApiClient api, string name, TimeSpan timeout, CancellationToken ct)
    {
        var clock = Stopwatch.StartNew();
        while (clock.Elapsed < timeout)
        {
            try
            {
                await api.GetServiceAsync(name, ct);
            }
            catch (HeddleApiException e) when (e.Status == System.Net.HttpStatusCode.NotFound)
            {
                return true;
            }

            await Task.Delay(250, ct);
        }

        return false;
    }

    /// <summary>A package that is invalid here is refused before anything is uploaded.</summary>
    private static void CheckLocally(string path)
    {
        var diagnostics = new DiagnosticBag();
        using var stream = File.OpenRead(path);
        using var package = PackageArchive.Open(stream, Path.GetFileName(path), PackageLimits.Default, diagnostics);
        if (package is null || !package.VerifyContent(diagnostics))
        {
            throw new CliException($"{path} is not a valid package", ExitCodes.Invalid, [.. diagnostics.Sorted().Select(d => d.ToString())]);
        }
    }

    /// <summary>Live progress: one line whenever the picture changes; true when all are Ready, false when one faults.</summary>
    internal static async Task<(bool Ok, ServiceStatus Status)> WaitForReadyAsync(CliConsole console, HeddleApiClient api, string service, long revision, TimeSpan timeout, bool quiet, CancellationToken ct)
    {
        var clock = Stopwatch.StartNew();
        var last = string.Empty;
        var unreachableSince = (TimeSpan?)null;
        while (true)
        {
            ServiceStatus status;
            try
            {
                status = await api.GetServiceAsync(service, ct);
                unreachableSince = null;
            }
            catch (HeddleApiException e) when (e.Status is null && clock.Elapsed < timeout && clock.Elapsed - (unreachableSince ??= clock.Elapsed) < UpgradeWatcher.UnreachableLimit)
            {
                // The controller is restarting (what it accepted is stored and carries on): keep waiting for a while.
                await Task.Delay(250, ct);
                continue;
            }

            var byState = status.Instances.GroupBy(i => i.State).OrderBy(g => g.Key).Select(g => $"{g.Count()} {g.Key}");
            var line = $"  {clock.Elapsed.TotalSeconds,5:0.0}s  {status.ReadyInstances}/{status.DesiredInstances} Ready  ({string.Join(", ", byState)})";
            if (!quiet && line[10..] != last)
            {
                console.Out.WriteLine(line);
                last = line[10..];
            }

            var faulted = status.Instances.FirstOrDefault(i => i.State == InstanceStates.Faulted && i.Revision >= revision);
            if (faulted is not null)
            {
                if (!quiet)
                {
                    console.Error.WriteLine($"heddle: {faulted.Id} faulted on node {faulted.Node}: {faulted.Reason}; see 'heddle logs {faulted.Id} --stderr'");
                }

                return (false, status);
            }

            if (status.DesiredInstances > 0 && status.ReadyInstances == status.DesiredInstances && status.Instances.Count == status.DesiredInstances
                && status.Instances.All(i => i.RunningRevision >= revision))
            {
                if (status.VipUnserved)
                {
                    if (!quiet)
                    {
                        console.Error.WriteLine($"heddle: {service}: every instance is Ready, but {status.VipProblem}; see 'heddle lb list'");
                    }

                    return (false, status);
                }

                if (!quiet && status.VipProblem is { } partly)
                {
                    console.Error.WriteLine($"heddle: warning: {service}'s VIP is {partly}");
                }

                if (!quiet)
                {
                    console.Out.WriteLine($"{service}: all {status.ReadyInstances} instances Ready in {clock.Elapsed.TotalSeconds:0.0}s");
                }

                return (true, status);
            }

            if (clock.Elapsed > timeout)
            {
                if (!quiet)
                {
                    console.Error.WriteLine($"heddle: {service} was not Ready after {Durations.Format(timeout)}; see 'heddle events'");
                }

                return (false, status);
            }

            await Task.Delay(100, ct);
        }
    }
}
