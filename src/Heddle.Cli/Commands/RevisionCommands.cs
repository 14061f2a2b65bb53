using System.CommandLine;
using System.Diagnostics;
using System.Text.Json;
using Heddle.Cli.Client;
using Heddle.Contracts.Api;

namespace Heddle.Cli.Commands;

/// <summary>Changing a running service: `history`, `scale`, `rollback` and `upgrade status|pause|resume|rollback`.</summary>
internal static class RevisionCommands
{
    public static IEnumerable<Command> Create(CliConsole console)
    {
        yield return History(console);
        yield return Scale(console);
        yield return Rollback(console);
        yield return Upgrade(console);
    }

    private static Command History(CliConsole console)
    {
        var service = new Argument<string>("service") { Description = "The service" };
        var format = CommonOptions.Format();
        var command = new Command("history", "List a service's kept revisions: when, package, what changed, how it ended") { service, format };
        command.SetAction(async (parse, ct) =>
        {
            using var api = ClientConfig.Load().Connect();
            var revisions = await api.ListRevisionsAsync(parse.GetValue(service)!, ct);
            if (parse.GetValue(format) == "json")
            {
                console.WriteJson(revisions);
                return ExitCodes.Ok;
            }

            var table = new Table("REVISION", "CREATED", "PACKAGE", "OUTCOME", "CHANGES");
            foreach (var r in revisions)
            {
                table.Add(r.Current ? $"{r.Number} *" : r.Number, r.Created.ToString("u"), r.PackageSha256[..12], r.Outcome, r.Changes);
            }

            table.Write(console.Out);
            return ExitCodes.Ok;
        });
        return command;
    }

    private static Command Scale(CliConsole console)
    {
        var service = new Argument<string>("service") { Description = "The service" };
        var role = new Argument<string>("role") { Description = "The role to scale" };
        var count = new Argument<int>("instances") { Description = "How many instances the role should have" };
        var wait = new Option<bool>("--wait") { Description = "Wait until every instance is Ready" };
        var timeout = Durations.Option("--timeout", "How long --wait waits", TimeSpan.FromMinutes(5));
        var format = CommonOptions.Format();
        var command = new Command("scale", "Change a role's instance count; instances that stay are not restarted") { service, role, count, wait, timeout, format };
        command.SetAction(async (parse, ct) =>
        {
            using var api = ClientConfig.Load().Connect();
            var accepted = await api.ScaleAsync(parse.GetValue(service)!, parse.GetValue(role)!, parse.GetValue(count), ct);
            return await DeployCommands.ReportAcceptedAsync(console, api, accepted, parse.GetValue(wait), parse.GetValue(timeout), parse.GetValue(format) == "json", ct);
        });
        return command;
    }

    private static Command Rollback(CliConsole console)
    {
        var service = new Argument<string>("service") { Description = "The service" };
        var to = new Option<long?>("--to") { Description = "The revision to go back to (default: the one before the current; see 'heddle history')" };
        var wait = new Option<bool>("--wait") { Description = "Follow the walk back until it ends (exit 0 when it completes)" };
        var timeout = Durations.Option("--timeout", "How long --wait waits", TimeSpan.FromMinutes(30));
        var format = CommonOptions.Format();
        var command = new Command("rollback", "Walk a service back to an earlier revision, one upgrade domain at a time (during an upgrade: roll it back)") { service, to, wait, timeout, format };
        command.SetAction(async (parse, ct) =>
        {
            using var api = ClientConfig.Load().Connect();
            var name = parse.GetValue(service)!;
            var answer = await api.RollbackAsync(name, parse.GetValue(to), ct);
            var json = parse.GetValue(format) == "json";
            return answer switch
            {
                RollbackResult.WalkTurnedBack turned => await FollowOrPrintAsync(console, api, turned.Walk, parse.GetValue(wait), parse.GetValue(timeout), json, ct),
                RollbackResult.NewRevision accepted => await DeployCommands.ReportAcceptedAsync(console, api, accepted.Accepted, parse.GetValue(wait), parse.GetValue(timeout), json, ct),
                _ => throw new UnreachableException(),
            };
        });
        return command;
    }

    private static Command Upgrade(CliConsole console)
    {
        var command = new Command("upgrade", "See or steer a service's upgrade walk");
        var statusService = new Argument<string>("service") { Description = "The service" };
        var follow = new Option<bool>("--follow", "-f") { Description = "Keep showing the walk until it ends (exit 0 when it completes)" };
        var timeout = Durations.Option("--timeout", "How long --follow follows", TimeSpan.FromHours(1));
        var format = CommonOptions.Format();
        var status = new Command("status", "Show the current or last upgrade: each upgrade domain, its instances, the gate") { statusService, follow, timeout, format };
        status.SetAction(async (parse, ct) =>
        {
            using var api = ClientConfig.Load().Connect();
            var name = parse.GetValue(statusService)!;
            var json = parse.GetValue(format) == "json";
            if (parse.GetValue(follow))
            {
                // Whatever walk is current, riding out a controller restart from the first call on.
                return await FollowAsync(console, api, name, revision: null, parse.GetValue(timeout), json, ct);
            }

            return await FollowOrPrintAsync(console, api, await api.GetUpgradeAsync(name, ct), follow: false, parse.GetValue(timeout), json, ct);
        });
        command.Subcommands.Add(status);
        foreach (var (name, description) in new[]
        {
            ("pause", "Hold the walk where it is"),
            ("resume", "Carry on: after a pause, after a domain in manual mode, or retry a failed domain"),
            ("rollback", "Walk the upgraded domains back to the previous revision, in reverse order"),
        })
        {
            var service = new Argument<string>("service") { Description = "The service" };
            var actionFormat = CommonOptions.Format();
            var action = new Command(name, description) { service, actionFormat };
            action.SetAction(async (parse, ct) =>
            {
                using var api = ClientConfig.Load().Connect();
                var after = await api.UpgradeActionAsync(parse.GetValue(service)!, name, ct);
                if (parse.GetValue(actionFormat) == "json")
                {
                    console.WriteJson(after);
                }
                else
                {
                    console.Out.WriteLine(UpgradeWatcher.Render(after));
                }

                return ExitCodes.Ok;
            });
            command.Subcommands.Add(action);
        }

        return command;
    }

    private static async Task<int> FollowAsync(CliConsole console, HeddleApiClient api, string service, long? revision, TimeSpan timeout, bool json, CancellationToken ct)
    {
        var (exit, last) = await UpgradeWatcher.FollowAsync(console, api, service, revision, timeout, quiet: json, stopWhenWaiting: false, ct);
        if (json)
        {
            console.WriteJson(last);
        }

        return exit;
    }

    private static async Task<int> FollowOrPrintAsync(CliConsole console, HeddleApiClient api, UpgradeStatus status, bool follow, TimeSpan timeout, bool json, CancellationToken ct)
    {
        if (follow)
        {
            return await FollowAsync(console, api, status.Service, status.Revision, timeout, json, ct);
        }

        if (json)
        {
            console.WriteJson(status);
        }
        else
        {
            console.Out.WriteLine(UpgradeWatcher.Render(status));
            if (status.Reason is not null)
            {
                console.Out.WriteLine($"reason: {status.Reason}");
            }
        }

        return ExitCodes.Ok;
    }
}
