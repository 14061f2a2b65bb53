using System.Net.Sockets;
using Heddle.Model.Definition;

namespace Heddle.Agent.Probes;

/// <summary>Is the instance healthy? One implementation per kind of probe the model names.</summary>
public interface IProbe
{
    string Description { get; }

    Task<bool> CheckAsync(CancellationToken cancellationToken);
}

/// <summary>GET on an endpoint: any 2xx or 3xx answer within the timeout is healthy.</summary>
public sealed class HttpProbe(HttpClient http, string address, int port, string path, TimeSpan timeout) : IProbe
{
    public string Description => $"http://{address}:{port}{path}";

    public async Task<bool> CheckAsync(CancellationToken cancellationToken)
    {
        using var deadline = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        deadline.CancelAfter(timeout);
        try
        {
            using var response = await http.GetAsync(Description, HttpCompletionOption.ResponseHeadersRead, deadline.Token);
            return (int)response.StatusCode is >= 200 and < 400;
        }
        catch (Exception e) when (e is HttpRequestException or OperationCanceledException && !cancellationToken.IsCancellationRequested)
        {
            return false;
        }
    }
}

/// <summary>A TCP connection to an endpoint is accepted within the timeout.</summary>
public sealed class TcpProbe(string address, int port, TimeSpan timeout) : IProbe
{
    public string Description => $"tcp {address}:{port}";

    public async Task<bool> CheckAsync(CancellationToken cancellationToken)
    {
        using var deadline = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        deadline.CancelAfter(timeout);
        try
        {
            using var client = new TcpClient();
            await client.ConnectAsync(address, port, deadline.Token);
            return true;
        }
        catch (Exception e) when (e is SocketException or OperationCanceledException && !cancellationToken.IsCancellationRequested)
        {
            return false;
        }
    }
}

/// <summary>For a role with no endpoints and no probe: healthy while it runs.</summary>
public sealed class RunningProbe : IProbe
{
    public string Description => "the process is running";

    public Task<bool> CheckAsync(CancellationToken cancellationToken) => Task.FromResult(true);
}

/// <summary>Chooses the probe of an instance of <paramref name="role"/> listening on <paramref name="ports"/> at <paramref name="address"/>, how often it runs and after how many failures in a row it counts.</summary>
public delegate (IProbe Probe, TimeSpan Interval, int Threshold) ProbeChoice(RoleDefinition role, string address, IReadOnlyDictionary<string, int> ports, HttpClient http);

public static class ProbeFactory
{
    /// <summary>The role's probe, or the default: the first endpoint accepts a TCP connection, or the process runs.</summary>
    public static (IProbe Probe, TimeSpan Interval, int Threshold) For(RoleDefinition role, string address, IReadOnlyDictionary<string, int> ports, HttpClient http)
    {
        if (role.Probe is { } p)
        {
            var port = ports[p.Endpoint];
            var timeout = TimeSpan.FromSeconds(p.TimeoutSeconds);
            IProbe probe = p.Kind == ProbeKind.Http ? new HttpProbe(http, address, port, p.Path!, timeout) : new TcpProbe(address, port, timeout);
            return (probe, TimeSpan.FromSeconds(p.IntervalSeconds), p.UnhealthyThreshold);
        }

        var interval = TimeSpan.FromSeconds(ProbeDefinition.DefaultIntervalSeconds);
        return role.Endpoints.Count > 0
            ? (new TcpProbe(address, ports[role.Endpoints[0].Name], TimeSpan.FromSeconds(ProbeDefinition.DefaultTimeoutSeconds)), interval, ProbeDefinition.DefaultUnhealthyThreshold)
            : (new RunningProbe(), interval, ProbeDefinition.DefaultUnhealthyThreshold);
    }
}
