using System.CommandLine;
using System.Diagnostics;
using System.Globalization;
using Heddle.Model.Diagnostics;
using Heddle.Placement;
using Heddle.Placement.Cluster;
using Heddle.Placement.Simulation;

namespace Heddle.Cli.Commands;

/// <summary><c>heddle simulate --cluster cluster.yaml --trace trace.csv [--seed N] [--plan plan.json] [-o json]</c>: the allocator without a cluster.</summary>
internal static class SimulateCommand
{
    public static Command Create(CliConsole console)
    {
        var cluster = new Option<string>("--cluster") { Description = "cluster.yaml: explicit nodes and/or generated ones", Required = true };
        var trace = new Option<string>("--trace") { Description = "trace.csv: op,tenant,service,role,instances,cores,memoryMiB,upgradeDomains[,constraints]", Required = true };
        var seed = new Option<int>("--seed") { Description = "Seed for the order equally good nodes are tried in (default 1)", DefaultValueFactory = _ => 1 };
        var plan = new Option<string?>("--plan") { Description = "Write the placements standing at the end of the trace to this JSON file" };
        var allocator = new Option<string>("--allocator") { Description = "indexed (default) or exhaustive (scores every node; the baseline)", DefaultValueFactory = _ => AllocatorNames.Indexed };
        allocator.AcceptOnlyFromAmong(AllocatorNames.Indexed, AllocatorNames.Exhaustive);
        var format = CommonOptions.Format();
        var command = new Command("simulate", "Replay a trace of deployments against a described cluster with the allocator") { cluster, trace, seed, plan, allocator, format };
        command.SetAction(parse => Run(
            console, parse.GetValue(cluster)!, parse.GetValue(trace)!, parse.GetValue(seed), parse.GetValue(plan), parse.GetValue(allocator)!, parse.GetValue(format)!));
        return command;
    }

    private static int Run(CliConsole console, string clusterPath, string tracePath, int seed, string? planPath, string allocatorName, string format)
    {
        CommonOptions.RequireExistingFile(clusterPath, "cluster file");
        CommonOptions.RequireExistingFile(tracePath, "trace");
        var diagnostics = new DiagnosticBag();
        var nodes = ClusterFile.Parse(File.ReadAllText(clusterPath), clusterPath, diagnostics);
        var ops = TraceParser.Parse(File.ReadAllText(tracePath), tracePath, diagnostics);
        if (nodes is null || ops is null)
        {
            console.WriteDiagnostics(diagnostics);
            console.Error.WriteLine($"not simulated: {diagnostics.Items.Count} error(s)");
            return ExitCodes.Invalid;
        }

        var state = new ClusterState(nodes, seed);
        var simulator = new Simulator(state, AllocatorNames.Create(allocatorName, state));
        var clock = Stopwatch.StartNew();
        foreach (var op in ops)
        {
            simulator.Apply(op);
        }

        var elapsed = clock.Elapsed;
        var report = simulator.Report();
        var perSecond = elapsed.TotalSeconds > 0 ? report.Placements / elapsed.TotalSeconds : 0;
        if (planPath is not null)
        {
            WritePlan(planPath, state);
        }

        if (format == "json")
        {
            console.WriteJson(new
            {
                nodes = state.NodeCount,
                faultDomains = state.FaultDomainCount,
                operations = report.Operations,
                placements = report.Placements,
                standingInstances = report.StandingInstances,
                unplaced = report.UnplacedCount,
                unplacedReasons = report.Unplaced.Select(u => new { count = u.Count, why = u.Why, example = u.Example }),
                cpuUtilisation = Math.Round(report.CpuUtilisation, 4),
                memoryUtilisation = Math.Round(report.MemoryUtilisation, 4),
                cpuUtilisationAtFirstFailure = report.CpuUtilisationAtFirstFailure is { } u ? Math.Round(u, 4) : (double?)null,
                maxFaultDomainSkew = report.MaxFaultDomainSkew,
                hardRuleViolations = report.Violations.Count,
                violations = report.Violations.Take(20),
                placementsPerSecond = Math.Round(perSecond),
                seconds = Math.Round(elapsed.TotalSeconds, 4),
                allocator = allocatorName,
                seed,
            });
        }
        else
        {
            WriteText(console.Out, state, report, elapsed, perSecond, allocatorName, seed);
        }

        if (report.Violations.Count > 0)
        {
            foreach (var violation in report.Violations.Take(20))
            {
                console.Error.WriteLine($"hard-rule violation (a bug in the allocator): {violation}");
            }

            return ExitCodes.Invalid;
        }

        return ExitCodes.Ok;
    }

    private static void WriteText(TextWriter o, ClusterState state, SimulationReport report, TimeSpan elapsed, double perSecond, string allocator, int seed)
    {
        var c = CultureInfo.InvariantCulture;
        o.WriteLine(string.Create(c, $"cluster      {state.NodeCount:N0} nodes in {state.FaultDomainCount:N0} fault domains, {state.TotalCpus:N0} logical CPUs"));
        o.WriteLine(string.Create(c, $"trace        {report.Operations:N0} operations"));
        o.WriteLine(string.Create(c, $"placed       {report.Placements:N0} instances, {report.StandingInstances:N0} standing at the end"));
        o.WriteLine(string.Create(c, $"unplaced     {report.UnplacedCount:N0} instances"));
        foreach (var group in report.Unplaced.Take(10))
        {
            o.WriteLine(string.Create(c, $"  {group.Count,8:N0} × {group.Why}  (e.g. {group.Example})"));
        }

        var atFailure = report.CpuUtilisationAtFirstFailure is { } u ? $"; cores at the first failure {Percent(u)}" : string.Empty;
        o.WriteLine($"utilisation  cores {Percent(report.CpuUtilisation)}, memory {Percent(report.MemoryUtilisation)}{atFailure}");
        o.WriteLine(string.Create(c, $"spread       largest fault-domain skew of any role: {report.MaxFaultDomainSkew}"));
        o.WriteLine(string.Create(c, $"hard rules   {report.Violations.Count} violations (independent checker)"));
        o.WriteLine(string.Create(c, $"speed        {perSecond:N0} placements/s ({report.Placements:N0} in {elapsed.TotalSeconds:0.000} s, allocator {allocator}, seed {seed})"));
    }

    private static string Percent(double fraction) => string.Create(CultureInfo.InvariantCulture, $"{fraction * 100:0.0}%");

    private static void WritePlan(string path, ClusterState state)
    {
        var plan = state.Placements
            .OrderBy(p => p.Role.Tenant, StringComparer.Ordinal).ThenBy(p => p.Role.Service, StringComparer.Ordinal)
            .ThenBy(p => p.Role.Role, StringComparer.Ordinal).ThenBy(p => p.Index)
            .Select(p => new
            {
                tenant = p.Role.Tenant,
                service = p.Role.Service,
                role = p.Role.Role,
                index = p.Index,
                upgradeDomain = p.UpgradeDomain,
                node = p.Node,
                faultDomain = p.FaultDomain,
                cpus = p.Cpus,
                memoryMiB = p.MemoryMiB,
            });
        var temporary = path + ".tmp";
        using (var stream = File.Create(temporary))
        {
            System.Text.Json.JsonSerializer.Serialize(stream, plan, CliConsole.Json);
        }

        File.Move(temporary, path, overwrite: true);
    }
}
