using System.CommandLine;
using Heddle.Cli.Client;
using Heddle.Contracts.Api;

namespace Heddle.Cli.Commands;

/// <summary>
/// `heddle token create|list|revoke` (admin) and `heddle nodes remove`. A token is printed once, when made: the
/// controller keeps only its hash.
/// </summary>
internal static class TokenCommands
{
    public static Command Create(CliConsole console)
    {
        var join = new Option<bool>("--join") { Description = "A join token for agents (printed as the join string 'heddle agent --join' takes)" };
        var tenant = new Option<string?>("--tenant") { Description = "An API token for one tenant: it sees and changes only that tenant's services and images (default: admin)" };
        var metrics = new Option<bool>("--metrics") { Description = "A token that reads /metrics and nothing else (for Prometheus)" };
        var boot = new Option<bool>("--boot") { Description = "A token that asks for boot decisions and nothing else (for 'heddle boot' on a provisioning host)" };
        var ttl = new Option<string?>("--ttl") { Description = "How long the token is valid, e.g. 1h, 30d (default: a join token 24h, an API token until revoked)" };
        var uses = new Option<int?>("--uses") { Description = "How many agents a join token may enrol (default: any number until it expires)" };
        var description = new Option<string?>("--description") { Description = "A note shown by 'heddle token list'" };
        var format = CommonOptions.Format();
        var create = new Command("create", "Make an API token (admin, or --tenant T), a join token (--join), a metrics token (--metrics) or a boot token (--boot); it is shown this once") { join, metrics, boot, tenant, ttl, uses, description, format };
        create.SetAction(async (parse, ct) =>
        {
            long? seconds = null;
            if (parse.GetValue(ttl) is { } text)
            {
                if (!Heddle.Model.Validation.DurationText.TryParse(text, out var span) || span <= TimeSpan.Zero)
                {
                    throw new UsageException($"--ttl '{text}' is not a duration like 30m, 1h or 30d");
                }

                seconds = (long)span.TotalSeconds;
            }

            using var api = ClientConfig.Load().Connect();
            var made = await api.CreateTokenAsync(new TokenCreateRequest(parse.GetValue(join), parse.GetValue(tenant), seconds, parse.GetValue(uses), parse.GetValue(description), parse.GetValue(metrics), parse.GetValue(boot)), ct);
            if (parse.GetValue(format) == "json")
            {
                console.WriteJson(new { token = made.JoinString ?? made.Token, id = made.Id, kind = made.Kind, tenant = made.Tenant, expires = made.Expires, uses = made.Uses });
            }
            else
            {
                console.Out.WriteLine(made.JoinString ?? made.Token);
                var scope = made.Kind == "join" ? "join string" : made.Kind == "metrics" ? "metrics token (reads /metrics only)" : made.Kind == "boot" ? "boot token (asks for boot decisions only)" : made.Tenant is null ? "admin token" : $"token of tenant {made.Tenant}";
                console.Error.WriteLine($"{scope} {made.Id}{(made.Expires is { } e ? $", expires {e:u}" : string.Empty)}{(made.Uses is { } u ? $", {u} use(s)" : string.Empty)}; it is not shown again");
            }

            return ExitCodes.Ok;
        });

        var listFormat = CommonOptions.Format();
        var list = new Command("list", "List tokens (never their secrets)") { listFormat };
        list.SetAction(async (parse, ct) =>
        {
            using var api = ClientConfig.Load().Connect();
            var tokens = await api.ListTokensAsync(ct);
            if (!ClusterCommands.Json(console, parse.GetValue(listFormat), tokens))
            {
                var table = new Table("ID", "SCOPE", "CREATED", "EXPIRES", "USES LEFT", "STATE", "DESCRIPTION");
                foreach (var t in tokens)
                {
                    var state = t.Revoked ? "revoked" : t.Expires < DateTimeOffset.UtcNow ? "expired" : t.UsesLeft == 0 ? "used up" : "valid";
                    table.Add(t.Id, t.Scope, t.Created.ToString("u"), t.Expires?.ToString("u") ?? "never", t.UsesLeft?.ToString() ?? "-", state, t.Description);
                }

                table.Write(console.Out);
            }

            return ExitCodes.Ok;
        });

        var id = new Argument<string>("id") { Description = "The token's id (or its first characters, at least 4), from 'heddle token list'" };
        var revoke = new Command("revoke", "Revoke a token: refused from now on") { id };
        revoke.SetAction(async (parse, ct) =>
        {
            using var api = ClientConfig.Load().Connect();
            var revoked = await api.RevokeTokenAsync(parse.GetValue(id)!, ct);
            console.Out.WriteLine($"revoked {revoked.Scope} token {revoked.Id}");
            return ExitCodes.Ok;
        });

        return new Command("token", "Make, list and revoke API and join tokens (admin)") { create, list, revoke };
    }

    public static Command RemoveNode(CliConsole console)
    {
        var node = new Argument<string>("node") { Description = "The node to remove" };
        var command = new Command("remove", "Revoke a node's certificate (it is cut off at once), forget it, and place its instances elsewhere") { node };
        command.SetAction(async (parse, ct) =>
        {
            using var api = ClientConfig.Load().Connect();
            await api.RemoveNodeAsync(parse.GetValue(node)!, ct);
            console.Out.WriteLine($"node {parse.GetValue(node)} removed: its certificate is revoked; its instances are being placed on other nodes. To bring the machine back, enrol it again with a new join string");
            return ExitCodes.Ok;
        });
        return command;
    }
}
