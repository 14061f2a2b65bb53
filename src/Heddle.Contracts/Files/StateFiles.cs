using System.Text.Json;
using System.Text.Json.Serialization;

namespace Heddle.Contracts.Files;

/// <summary>What `heddle controller` writes to &lt;state&gt;/controller.json once it listens: where, and which process.</summary>
public sealed record ControllerEndpoints(Uri ApiUrl, Uri AgentUrl, string? DnsAddress, int Pid);

/// <summary>What `heddle up` writes to $HEDDLE_HOME/up.json while it runs: its cluster's processes and where they answer.</summary>
public sealed record UpState(int Pid, string State, Uri ApiUrl, string AgentUrl, string? DnsAddress, IReadOnlyList<UpProcess> Processes, UpEtcd? Etcd);

/// <param name="Metrics">Where it serves /metrics: a controller on its API (with an admin or metrics token), the others on loopback without one.</param>
public sealed record UpProcess(string Name, int Pid, string? Address, string? FaultDomain, string Log, string? Metrics = null);

/// <param name="Store">The --store option the controllers were given.</param>
/// <param name="Ca">The first controller's etcd client certificate (CA, certificate, key), for etcdctl.</param>
public sealed record UpEtcd(string Store, IReadOnlyList<int> Pids, string Data, string? Ca, string? Cert, string? Key);

/// <summary>
/// Reads and writes those files: whole, replaced atomically (a reader never sees half of one). Shared by the processes
/// that write them and those that read them (`heddle up`, the benchmarks, the end-to-end tests).
/// </summary>
public static class StateFiles
{
    /// <summary>The files' JSON: camelCase names, indented, enums as camelCase strings, nulls left out.</summary>
    public static readonly JsonSerializerOptions Json = new()
    {
        PropertyNamingPolicy = JsonNamingPolicy.CamelCase,
        WriteIndented = true,
        Converters = { new JsonStringEnumConverter(JsonNamingPolicy.CamelCase) },
        DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
    };

    public static void Write<T>(string path, T content)
    {
        File.WriteAllText(path + ".tmp", JsonSerializer.Serialize(content, Json));
        File.Move(path + ".tmp", path, overwrite: true);
    }

    /// <summary>The file's content, or null when it is missing or not (yet) whole.</summary>
    public static T? Read<T>(string path)
        where T : class
    {
        try
        {
            return File.Exists(path) ? JsonSerializer.Deserialize<T>(File.ReadAllText(path), Json) : null;
        }
        catch (Exception e) when (e is JsonException or IOException)
        {
            return null;
        }
    }
}
