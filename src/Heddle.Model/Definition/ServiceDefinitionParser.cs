using Heddle.Model.Diagnostics;
using Heddle.Model.Validation;
using Heddle.Model.Yaml;

namespace Heddle.Model.Definition;

/// <summary>
/// Turns service.yaml into a <see cref="ServiceDefinition"/>, reporting every problem at once. The result
/// is best-effort when there are errors (parts that could not be read are left out) so that cross-checks
/// against the configuration can still run and report too.
/// </summary>
public static class ServiceDefinitionParser
{
    public const string FileName = "service.yaml";

    private static readonly Dictionary<string, RoleDriver> Drivers = new() { [DriverNames.Process] = RoleDriver.Process, [DriverNames.Container] = RoleDriver.Container };
    private static readonly Dictionary<string, SettingsChangeAction> SettingsChangeActions = new() { ["restart"] = SettingsChangeAction.Restart, ["signal"] = SettingsChangeAction.Signal };
    private static readonly Dictionary<string, EndpointKind> Kinds = new() { ["input"] = EndpointKind.Input, ["internal"] = EndpointKind.Internal };
    private static readonly Dictionary<string, EndpointProtocol> Protocols = new()
    {
        ["http"] = EndpointProtocol.Http, ["tcp"] = EndpointProtocol.Tcp, ["udp"] = EndpointProtocol.Udp,
    };

    private static readonly Dictionary<string, StartupTaskType> TaskTypes = new() { ["simple"] = StartupTaskType.Simple, ["background"] = StartupTaskType.Background };

    public static ServiceDefinition? Parse(string yaml, DiagnosticBag diagnostics, string file = FileName) =>
        Parse(new StringReader(yaml), diagnostics, file);

    public static ServiceDefinition? Parse(TextReader yaml, DiagnosticBag diagnostics, string file = FileName)
    {
        var root = YamlTreeLoader.Load(yaml, file, diagnostics);
        var reader = new SchemaReader(file, diagnostics);
        if (root is null)
        {
            if (!diagnostics.HasErrors)
            {
                diagnostics.Add(SourceLocation.WholeFile(file), DiagnosticCodes.MissingField, "the service definition is empty; it needs 'name' and 'roles'");
            }

            return null;
        }

        var fields = reader.Object(root, "the service definition", "name", "upgradeDomains", "roles");
        if (fields is null)
        {
            return null;
        }

        var name = ReadServiceName(reader, fields);
        var upgradeDomains = reader.Int(fields["upgradeDomains"], "upgradeDomains", 1, 20) ?? ServiceDefinition.DefaultUpgradeDomains;

        var roles = new List<RoleDefinition>();
        if (fields.Required("roles", " with at least one role") is { } rolesNode)
        {
            var entries = reader.Map(rolesNode, "roles");
            if (entries.Count == 0 && rolesNode is YMapping)
            {
                reader.Report(rolesNode, DiagnosticCodes.NoRoles, "roles is empty; declare at least one role");
            }

            foreach (var entry in entries)
            {
                if (ReadRole(reader, entry) is { } role)
                {
                    roles.Add(role);
                }
            }
        }

        var definition = new ServiceDefinition { Name = name ?? string.Empty, UpgradeDomains = upgradeDomains, Roles = roles };
        CheckPublicPorts(reader, definition, rolesNode: fields["roles"]);
        return definition;
    }

    /// <summary>How base images are named (`heddle image build NAME`): lower-case letters, digits, '.', '_', '-'.</summary>
    public static bool IsImageName(string name) =>
        name.Length is > 0 and <= 63 && char.IsAsciiLetterLower(name[0]) | char.IsAsciiDigit(name[0]) && name.All(c => char.IsAsciiLetterLower(c) || char.IsAsciiDigit(c) || c is '.' or '_' or '-');

    private static string? ReadServiceName(SchemaReader reader, Fields fields)
    {
        if (fields.Required("name") is not { } node || reader.String(node, "name") is not { } name)
        {
            return null;
        }

        if (!reader.CheckName((YScalar)node, "service name", Names.IsDnsLabel, Names.DnsLabelRule))
        {
            return null;
        }

        if (ZoneLabels.IsReserved(name))
        {
            // A service's records are <service>.<zone> and below: one named like a label the zone uses itself would add its records beside the zone's own.
            reader.Report(node, DiagnosticCodes.ReservedServiceName, $"'{name}' is reserved ({ZoneLabels.UseOf(name)}); choose another service name");
            return null;
        }

        return name;
    }

    private static RoleDefinition? ReadRole(SchemaReader reader, YEntry entry)
    {
        var roleName = entry.Key.Value;
        var subject = $"role '{roleName}'";
        reader.CheckName(entry.Key, "role name", Names.IsDnsLabel, Names.DnsLabelRule);
        var fields = reader.Object(entry.Value, subject,
            "driver", "image", "entryPoint", "size", "endpoints", "probe", "settings", "environment", "startup", "constraints", "onSettingsChange", "network");
        if (fields is null)
        {
            return null;
        }

        var driver = reader.Choice(fields["driver"], $"{subject} driver", Drivers) ?? RoleDriver.Process;
        var image = reader.String(fields["image"], $"{subject} image");
        if (driver == RoleDriver.Container && image is null && fields["image"] is null)
        {
            reader.Report(fields.KeyOf("driver") ?? (YNode)fields.Mapping, DiagnosticCodes.ContainerWithoutImage,
                $"{subject} uses driver 'container' but names no image; add 'image:' (for example image: debian-12)");
        }
        else if (driver == RoleDriver.Process && image is not null)
        {
            reader.Report(fields.KeyOf("image")!, DiagnosticCodes.ImageOnProcessRole,
                $"{subject} names an image but runs with driver 'process'; remove 'image' or set driver: container");
        }

        if (image is not null && fields["image"] is YScalar imageNode)
        {
            reader.CheckName(imageNode, "image name", IsImageName, "1 to 63 lower-case letters, digits, '.', '_' or '-', starting with a letter or digit");
        }

        if (reader.String(fields["network"], $"{subject} network") is { } network && network != "host")
        {
            reader.Report(fields["network"]!, DiagnosticCodes.NetworkNotSupported,
                $"{subject} asks for network '{network}', which Heddle does not offer yet: instances of both drivers use the node's network, with ports the agent assigns (network: host)");
        }

        var entryPoint = ReadEntryPoint(reader, fields.Required("entryPoint", " (command and args to start the role)"), $"{subject} entryPoint");
        var size = ReadSize(reader, fields["size"], subject);
        var endpoints = ReadEndpoints(reader, fields["endpoints"], subject);
        var probe = ReadProbe(reader, fields["probe"], subject, endpoints);
        var settings = ReadSettings(reader, fields["settings"], subject);
        var environment = ReadStringMap(reader, fields["environment"], $"{subject} environment", "environment variable", Names.IsEnvironmentName, Names.EnvironmentNameRule);
        ReportReservedEnvironment(reader, fields["environment"], subject);
        var constraints = ReadStringMap(reader, fields["constraints"], $"{subject} constraints", "label", Names.IsLabelKey, Names.LabelKeyRule);
        var startup = ReadStartup(reader, fields["startup"], subject);
        var onSettingsChange = reader.Choice(fields["onSettingsChange"], $"{subject} onSettingsChange", SettingsChangeActions) ?? SettingsChangeAction.Restart;

        // A role with errors is still returned (the caller sees the diagnostics and will not use it) so that
        // the configuration's reference to it is not reported as a second, false problem.
        return new RoleDefinition
        {
            Name = roleName,
            Driver = driver,
            Image = driver == RoleDriver.Container ? image : null,
            EntryPoint = entryPoint ?? new EntryPoint(string.Empty, []),
            Size = size,
            Endpoints = endpoints,
            Probe = probe,
            Settings = settings,
            Environment = environment,
            Constraints = constraints,
            Startup = startup,
            OnSettingsChange = onSettingsChange,
            Location = reader.At(entry.Key),
        };
    }

    private static EntryPoint? ReadEntryPoint(SchemaReader reader, YNode? node, string subject)
    {
        var fields = reader.Object(node, subject, "command", "args");
        if (fields is null)
        {
            return null;
        }

        var command = reader.String(fields.Required("command"), $"{subject} command");
        var args = reader.StringList(fields["args"], $"{subject} args");
        return command is null ? null : new EntryPoint(command, args);
    }

    private static RoleSize ReadSize(SchemaReader reader, YNode? node, string subject)
    {
        switch (node)
        {
            case null:
                return RoleSize.Default;
            case YScalar { IsNull: false } scalar:
                if (RoleSize.Named.TryGetValue(scalar.Value, out var named))
                {
                    return named;
                }

                var nearest = Suggestions.Nearest(scalar.Value, RoleSize.Named.Keys);
                var hint = nearest is null ? string.Empty : $"; did you mean '{nearest}'?";
                reader.Report(node, DiagnosticCodes.NotAllowedValue,
                    $"{subject} size '{scalar.Value}' is not one of {string.Join(", ", RoleSize.Named.Keys)} or {{ cores, memoryMiB }}{hint}");
                return RoleSize.Default;
        }

        var fields = reader.Object(node, $"{subject} size", "cores", "memoryMiB", "maxProcesses", "diskMiB");
        if (fields is null)
        {
            return RoleSize.Default;
        }

        var cores = reader.Int(fields.Required("cores"), $"{subject} size cores", 1, RoleSize.MaxCores);
        var memory = reader.Int(fields.Required("memoryMiB"), $"{subject} size memoryMiB", RoleSize.MinMemoryMiB, RoleSize.MaxMemoryMiB);
        var processes = reader.Int(fields["maxProcesses"], $"{subject} size maxProcesses", RoleSize.MinMaxProcesses, RoleSize.MaxMaxProcesses) ?? RoleSize.DefaultMaxProcesses;
        var disk = reader.Int(fields["diskMiB"], $"{subject} size diskMiB", RoleSize.MinDiskMiB, RoleSize.MaxDiskMiB) ?? RoleSize.DefaultDiskMiB;
        return cores is null || memory is null ? RoleSize.Default : new RoleSize(cores.Value, memory.Value) { MaxProcesses = processes, DiskMiB = disk };
    }

    private static IReadOnlyList<EndpointDefinition> ReadEndpoints(SchemaReader reader, YNode? node, string subject)
    {
        var result = new List<EndpointDefinition>();
        foreach (var entry in reader.Map(node, $"{subject} endpoints"))
        {
            var endpointSubject = $"{subject} endpoint '{entry.Key.Value}'";
            var nameOk = reader.CheckName(entry.Key, "endpoint name", Names.IsDnsLabel, Names.DnsLabelRule);
            var fields = reader.Object(entry.Value, endpointSubject, "kind", "protocol", "port");
            if (fields is null)
            {
                continue;
            }

            var kind = reader.Choice(fields.Required("kind"), $"{endpointSubject} kind", Kinds);
            var protocol = reader.Choice(fields.Required("protocol"), $"{endpointSubject} protocol", Protocols);
            var port = reader.Int(fields["port"], $"{endpointSubject} port", 1, 65535);
            if (kind == EndpointKind.Input && fields["port"] is null)
            {
                reader.Report(fields.Mapping, DiagnosticCodes.InputEndpointInvalid,
                    $"{endpointSubject} is an input endpoint and needs 'port', the public port on the service VIP");
            }

            if (kind == EndpointKind.Input && protocol == EndpointProtocol.Udp)
            {
                reader.Report(fields["protocol"]!, DiagnosticCodes.InputEndpointInvalid,
                    $"{endpointSubject} is an input endpoint with protocol 'udp'; the load balancer carries http and tcp only");
            }

            if (nameOk && kind is { } k && protocol is { } p)
            {
                result.Add(new EndpointDefinition(entry.Key.Value, k, p, port));
            }
        }

        return result;
    }

    private static ProbeDefinition? ReadProbe(SchemaReader reader, YNode? node, string subject, IReadOnlyList<EndpointDefinition> endpoints)
    {
        var probeSubject = $"{subject} probe";
        var fields = reader.Object(node, probeSubject, "http", "tcp", "intervalSeconds", "timeoutSeconds", "unhealthyThreshold");
        if (fields is null)
        {
            return null;
        }

        var interval = reader.Int(fields["intervalSeconds"], $"{probeSubject} intervalSeconds", 1, 3600) ?? ProbeDefinition.DefaultIntervalSeconds;
        var timeout = reader.Int(fields["timeoutSeconds"], $"{probeSubject} timeoutSeconds", 1, 3600) ?? ProbeDefinition.DefaultTimeoutSeconds;
        var threshold = reader.Int(fields["unhealthyThreshold"], $"{probeSubject} unhealthyThreshold", 1, 100) ?? ProbeDefinition.DefaultUnhealthyThreshold;
        if (timeout > interval)
        {
            reader.Report(fields["timeoutSeconds"] ?? fields.Mapping, DiagnosticCodes.ProbeTimeoutTooLong,
                $"{probeSubject} timeoutSeconds {timeout} is longer than intervalSeconds {interval}; make the timeout at most the interval");
        }

        var http = fields["http"];
        var tcp = fields["tcp"];
        if ((http is null) == (tcp is null))
        {
            reader.Report(fields.Mapping, DiagnosticCodes.ProbeKindAmbiguous,
                $"{probeSubject} needs exactly one of 'http' (endpoint and path) or 'tcp' (endpoint)");
            return null;
        }

        var kind = http is not null ? ProbeKind.Http : ProbeKind.Tcp;
        var target = kind == ProbeKind.Http
            ? reader.Object(http, $"{probeSubject} http", "endpoint", "path")
            : reader.Object(tcp, $"{probeSubject} tcp", "endpoint");
        if (target is null)
        {
            return null;
        }

        var endpointNode = target.Required("endpoint");
        var endpoint = reader.String(endpointNode, $"{probeSubject} endpoint");
        string? path = null;
        if (kind == ProbeKind.Http)
        {
            path = reader.String(target.Required("path", " (for example /health)"), $"{probeSubject} path");
            if (path is not null && !path.StartsWith('/'))
            {
                reader.Report(target["path"]!, DiagnosticCodes.NotAllowedValue, $"{probeSubject} path '{path}' must start with '/'");
            }
        }

        if (endpoint is null)
        {
            return null;
        }

        var named = endpoints.FirstOrDefault(e => e.Name == endpoint);
        if (named is null)
        {
            var nearest = Suggestions.Nearest(endpoint, endpoints.Select(e => e.Name));
            var hint = endpoints.Count == 0
                ? "the role declares no endpoints"
                : nearest is null ? $"the role's endpoints are {string.Join(", ", endpoints.Select(e => e.Name))}" : $"did you mean '{nearest}'?";
            reader.Report(endpointNode!, DiagnosticCodes.ProbeEndpointMissing, $"{probeSubject} names endpoint '{endpoint}', which the role does not declare; {hint}");
            return null;
        }

        if (named.Protocol == EndpointProtocol.Udp)
        {
            reader.Report(endpointNode!, DiagnosticCodes.NotAllowedValue, $"{probeSubject} cannot probe endpoint '{endpoint}': it is a udp endpoint");
            return null;
        }

        return new ProbeDefinition
        {
            Kind = kind, Endpoint = endpoint, Path = path, IntervalSeconds = interval, TimeoutSeconds = timeout, UnhealthyThreshold = threshold,
        };
    }

    private static IReadOnlyList<SettingDeclaration> ReadSettings(SchemaReader reader, YNode? node, string subject)
    {
        var result = new List<SettingDeclaration>();
        foreach (var item in reader.List(node, $"{subject} settings"))
        {
            if (reader.String(item, $"a setting of {subject}") is not { } name)
            {
                continue;
            }

            if (!reader.CheckName((YScalar)item, $"{subject} setting", Names.IsSettingName, Names.SettingNameRule))
            {
                continue;
            }

            if (result.Any(s => s.Name == name))
            {
                reader.Report(item, DiagnosticCodes.DuplicateSetting, $"{subject} declares setting '{name}' twice; keep one");
                continue;
            }

            result.Add(new SettingDeclaration(name, reader.At(item)));
        }

        return result;
    }

    /// <summary>
    /// LD_* steers the dynamic linker of every program started with it, and HEDDLE_* is the agent's to set: a role may
    /// not set either (its own PATH and the rest it may, for its own process).
    /// </summary>
    private static void ReportReservedEnvironment(SchemaReader reader, YNode? node, string subject)
    {
        if (node is not YMapping map)
        {
            return;
        }

        foreach (var entry in map.Entries)
        {
            if (Names.ReservedEnvironmentPrefix(entry.Key.Value) is { } prefix)
            {
                reader.Report(entry.Key, DiagnosticCodes.ReservedEnvironmentName,
                    $"{subject} environment sets '{entry.Key.Value}', but variables starting with {prefix} are reserved " +
                    (prefix == "LD_" ? "(they steer the dynamic linker); remove it" : "(Heddle sets them for every instance); remove it or use a setting"));
            }
        }
    }

    private static IReadOnlyDictionary<string, string> ReadStringMap(
        SchemaReader reader, YNode? node, string subject, string keyWord, Func<string, bool> isValidKey, string rule)
    {
        var result = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var entry in reader.Map(node, subject))
        {
            var keyOk = reader.CheckName(entry.Key, $"{subject} {keyWord}", isValidKey, rule);
            var value = entry.Value is YScalar { IsNull: true } ? string.Empty : reader.String(entry.Value, $"{subject} '{entry.Key.Value}'");
            if (keyOk && value is not null)
            {
                result[entry.Key.Value] = value;
            }
        }

        return result;
    }

    private static IReadOnlyList<StartupTask> ReadStartup(SchemaReader reader, YNode? node, string subject)
    {
        var result = new List<StartupTask>();
        var items = reader.List(node, $"{subject} startup");
        for (var i = 0; i < items.Count; i++)
        {
            var taskSubject = $"{subject} startup task {i + 1}";
            var fields = reader.Object(items[i], taskSubject, "command", "args", "type");
            if (fields is null)
            {
                continue;
            }

            var command = reader.String(fields.Required("command"), $"{taskSubject} command");
            var args = reader.StringList(fields["args"], $"{taskSubject} args");
            var type = reader.Choice(fields["type"], $"{taskSubject} type", TaskTypes) ?? StartupTaskType.Simple;
            if (command is not null)
            {
                result.Add(new StartupTask(command, args, type));
            }
        }

        return result;
    }

    /// <summary>Two input endpoints of one service cannot share a public port: they share the service's VIP.</summary>
    private static void CheckPublicPorts(SchemaReader reader, ServiceDefinition definition, YNode? rolesNode)
    {
        var owners = new Dictionary<int, (string Role, string Endpoint)>();
        var seen = new HashSet<string>(StringComparer.Ordinal);
        foreach (var entry in (rolesNode as YMapping)?.Entries ?? [])
        {
            if (!seen.Add(entry.Key.Value))
            {
                continue; // already reported as a duplicate key
            }

            var role = definition.FindRole(entry.Key.Value);
            if (role is null || entry.Value is not YMapping roleMap)
            {
                continue;
            }

            var endpointsNode = roleMap.Entries.FirstOrDefault(e => e.Key.Value == "endpoints")?.Value as YMapping;
            foreach (var endpoint in role.Endpoints.Where(e => e.Kind == EndpointKind.Input && e.Port is not null))
            {
                var port = endpoint.Port!.Value;
                if (owners.TryGetValue(port, out var owner))
                {
                    var at = endpointsNode?.Entries.FirstOrDefault(e => e.Key.Value == endpoint.Name)?.Key ?? (YNode)entry.Key;
                    reader.Report(at, DiagnosticCodes.DuplicatePublicPort,
                        $"role '{role.Name}' endpoint '{endpoint.Name}' uses public port {port}, already used by role '{owner.Role}' endpoint '{owner.Endpoint}'; public ports must differ across the service");
                }
                else
                {
                    owners[port] = (role.Name, endpoint.Name);
                }
            }
        }
    }
}
