using System.Globalization;
using Heddle.Model.Diagnostics;
using Heddle.Model.Yaml;
using Heddle.Placement.Cluster;

namespace Heddle.Placement.Simulation;

/// <summary>
/// cluster.yaml for <c>heddle simulate</c>: explicit nodes, generated ones, or both.
/// <code>
/// nodes:
///   - { name: n1, faultDomain: rack1, cores: 16, threadsPerCore: 2, memoryMiB: 131072, labels: { ssd: "true" } }
/// generate:
///   - { count: 10000, prefix: g, faultDomains: 20, cores: 16, threadsPerCore: 2, memoryMiB: 131072 }
/// </code>
/// Generated nodes are named prefix1..prefixN and sit in fault domains prefix-fd1..prefix-fdF, round robin.
/// </summary>
public static class ClusterFile
{
    public const int MaxGeneratedNodes = 1_000_000;

    public static IReadOnlyList<NodeSpec>? Parse(string yaml, string file, DiagnosticBag diagnostics)
    {
        var root = YamlTreeLoader.Load(new StringReader(yaml), file, diagnostics);
        var reader = new SchemaReader(file, diagnostics);
        var fields = reader.Object(root, "the cluster file", "nodes", "generate");
        if (fields is null)
        {
            if (root is null && !diagnostics.HasErrors)
            {
                diagnostics.Add(SourceLocation.WholeFile(file), DiagnosticCodes.MissingField, "the cluster file is empty; give 'nodes' or 'generate'");
            }

            return null;
        }

        var nodes = new List<NodeSpec>();
        var names = new HashSet<string>(StringComparer.Ordinal);
        var explicitNodes = reader.List(fields["nodes"], "nodes");
        for (var i = 0; i < explicitNodes.Count; i++)
        {
            var subject = $"node {i + 1}";
            var node = reader.Object(explicitNodes[i], subject, "name", "faultDomain", "cores", "threadsPerCore", "memoryMiB", "labels");
            if (node is null)
            {
                continue;
            }

            var name = reader.String(node.Required("name"), $"{subject} name");
            var faultDomain = reader.String(node.Required("faultDomain"), $"{subject} faultDomain");
            var (cores, threads, memory) = ReadShape(reader, node, subject);
            var labels = ReadLabels(reader, node["labels"], subject);
            if (name is null || faultDomain is null || cores is null || threads is null || memory is null)
            {
                continue;
            }

            if (!names.Add(name))
            {
                reader.Report(node["name"]!, DiagnosticCodes.DuplicateNode, $"node '{name}' is named twice; give every node its own name");
                continue;
            }

            nodes.Add(Node(name, faultDomain, cores.Value, threads.Value, memory.Value, labels));
        }

        var generators = reader.List(fields["generate"], "generate");
        for (var i = 0; i < generators.Count; i++)
        {
            var subject = $"generate entry {i + 1}";
            var gen = reader.Object(generators[i], subject, "count", "prefix", "faultDomains", "cores", "threadsPerCore", "memoryMiB", "labels");
            if (gen is null)
            {
                continue;
            }

            var count = reader.Int(gen.Required("count"), $"{subject} count", 1, MaxGeneratedNodes);
            var prefix = reader.String(gen.Required("prefix"), $"{subject} prefix");
            var faultDomains = reader.Int(gen.Required("faultDomains"), $"{subject} faultDomains", 1, 10_000);
            var (cores, threads, memory) = ReadShape(reader, gen, subject);
            var labels = ReadLabels(reader, gen["labels"], subject);
            if (count is null || prefix is null || faultDomains is null || cores is null || threads is null || memory is null)
            {
                continue;
            }

            var topology = NodeSpec.UniformTopology(cores.Value, threads.Value);
            for (var n = 1; n <= count; n++)
            {
                var name = string.Create(CultureInfo.InvariantCulture, $"{prefix}{n}");
                if (!names.Add(name))
                {
                    reader.Report(gen["prefix"]!, DiagnosticCodes.DuplicateNode, $"{subject} generates node '{name}', which already exists; use another prefix");
                    break;
                }

                var faultDomain = string.Create(CultureInfo.InvariantCulture, $"{prefix}-fd{((n - 1) % faultDomains.Value) + 1}");
                nodes.Add(new NodeSpec { Name = name, FaultDomain = faultDomain, Cores = topology, MemoryMiB = memory.Value, Labels = labels });
            }
        }

        if (nodes.Count == 0 && !diagnostics.HasErrors)
        {
            reader.Report(root!, DiagnosticCodes.MissingField, "the cluster file describes no nodes; give 'nodes' or 'generate'");
        }

        return diagnostics.HasErrors ? null : nodes;
    }

    private static (int? Cores, int? Threads, int? Memory) ReadShape(SchemaReader reader, Fields fields, string subject) =>
        (reader.Int(fields.Required("cores"), $"{subject} cores", 1, 1024),
         reader.Int(fields["threadsPerCore"], $"{subject} threadsPerCore", 1, 8) ?? (fields["threadsPerCore"] is null ? 1 : null),
         reader.Int(fields.Required("memoryMiB"), $"{subject} memoryMiB", 1, int.MaxValue));

    private static Dictionary<string, string> ReadLabels(SchemaReader reader, YNode? node, string subject)
    {
        var labels = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var entry in reader.Map(node, $"{subject} labels"))
        {
            if (reader.String(entry.Value, $"{subject} label '{entry.Key.Value}'") is { } value)
            {
                labels[entry.Key.Value] = value;
            }
        }

        return labels;
    }

    private static NodeSpec Node(string name, string faultDomain, int cores, int threads, int memory, Dictionary<string, string> labels) =>
        new() { Name = name, FaultDomain = faultDomain, Cores = NodeSpec.UniformTopology(cores, threads), MemoryMiB = memory, Labels = labels };
}
