using System.CommandLine;
using System.Globalization;
using Heddle.Cli.Client;
using Heddle.Contracts.Api;

namespace Heddle.Cli.Commands;

/// <summary>
/// `heddle quota set|show|reset`: what each tenant's services may hold at once. An admin sets and resets; a tenant's
/// token shows its own quota only.
/// </summary>
internal static class QuotaCommands
{
    public static Command Create(CliConsole console)
    {
        var tenant = new Argument<string>("tenant") { Description = "The tenant (as in 'heddle token create --tenant')" };
        var limits = QuotaLimits.Names.Select(n => new Option<string?>($"--{n}") { Description = $"At most this many {Noun(n)} at once, or none for no limit" }).ToList();
        var set = new Command("set", "Set a tenant's quota (admin); a limit not given keeps its value") { tenant };
        foreach (var option in limits)
        {
            set.Options.Add(option);
        }

        set.SetAction(async (parse, ct) =>
        {
            var given = limits.Select((o, i) => (Name: QuotaLimits.Names[i], Text: parse.GetValue(o))).Where(g => g.Text is not null).ToList();
            if (given.Count == 0)
            {
                throw new UsageException($"give at least one of {string.Join(", ", QuotaLimits.Names.Select(n => $"--{n}"))} (a number, or none for no limit)");
            }

            var name = parse.GetValue(tenant)!;
            using var api = ClientConfig.Load().Connect();
            var next = (await api.GetQuotaAsync(name, ct)).Limits;
            foreach (var (limit, text) in given)
            {
                if (!QuotaLimits.TryParseLimit(text!, out var value))
                {
                    throw new UsageException($"--{limit} {text}: write a whole number from 0 to {QuotaLimits.MaxLimit}, or none");
                }

                next = next.With(limit, value);
            }

            var status = await api.SetQuotaAsync(name, next, ct);
            console.Out.WriteLine($"tenant {status.Tenant}'s quota: {Describe(status)}");
            return ExitCodes.Ok;
        });

        var shown = new Argument<string?>("tenant") { Description = "One tenant (default: every tenant an admin's token knows, or a tenant's own)", Arity = ArgumentArity.ZeroOrOne };
        var format = CommonOptions.Format();
        var show = new Command("show", "Show quotas and what is in use (a tenant's token shows its own)") { shown, format };
        show.SetAction(async (parse, ct) =>
        {
            using var api = ClientConfig.Load().Connect();
            var quotas = parse.GetValue(shown) is { } one ? [await api.GetQuotaAsync(one, ct)] : await api.ListQuotasAsync(ct);
            if (!ClusterCommands.Json(console, parse.GetValue(format), quotas))
            {
                var table = new Table("TENANT", "CORES", "INSTANCES", "VIPS", "DISK MIB", "QUOTA");
                foreach (var q in quotas)
                {
                    table.Add(q.Tenant, Cell(q, "cores"), Cell(q, "instances"), Cell(q, "vips"), Cell(q, "disk-mib"), q.Source);
                }

                table.Write(console.Out);
            }

            return ExitCodes.Ok;
        });

        var reset = new Command("reset", "Forget the quota set for a tenant: it has the controller's default again (admin)") { tenant };
        reset.SetAction(async (parse, ct) =>
        {
            using var api = ClientConfig.Load().Connect();
            var status = await api.ResetQuotaAsync(parse.GetValue(tenant)!, ct);
            console.Out.WriteLine($"tenant {status.Tenant}'s quota: {Describe(status)}");
            return ExitCodes.Ok;
        });

        return new Command("quota", "Tenants' quotas: cores, instances, VIPs and disk their services may hold at once") { set, show, reset };
    }

    /// <summary>"6/8" (in use / limit), or "6/none".</summary>
    private static string Cell(QuotaStatus q, string name) =>
        $"{q.Used[name].ToString(CultureInfo.InvariantCulture)}/{q.Limits[name]?.ToString(CultureInfo.InvariantCulture) ?? "none"}";

    private static string Describe(QuotaStatus q) =>
        string.Join(", ", QuotaLimits.Names.Select(n => $"{n} {Cell(q, n)}")) + $" (in use/limit; {q.Source})";

    private static string Noun(string name) => name == "disk-mib" ? "MiB of disk (each instance has its role's size.diskMiB)" : name == "vips" ? "VIPs (one per slot with an input endpoint)" : name;
}
