using System.Net;
using System.Net.Sockets;

namespace Heddle.Controller.Agents;

/// <summary>
/// Whether the controller can reach a node at the address it says it has: a TCP connect, with a deadline, to a port
/// its agent listens on there (the log port). A node that joined as an address nobody can reach (127.0.0.1 on another
/// host, a private address behind NAT) would be given instances that nobody can reach either; it is refused instead,
/// with a sentence its agent prints.
/// </summary>
public sealed class NodeReachability(ControllerOptions options)
{
    /// <summary>Null when <paramref name="address"/>:<paramref name="port"/> answers a TCP connect within the deadline, else why not, as a sentence.</summary>
    /// <param name="controller">This controller's own address as the node sees it (the local end of the node's connection), for the sentence.</param>
    public async Task<string?> RefusalAsync(string node, string address, int port, IPAddress? controller, CancellationToken cancellationToken)
    {
        if (!IPAddress.TryParse(address, out var ip))
        {
            return $"node {Printable.Of(node)} says its address is {Printable.Of(address)}, which is not an IP address: give --address an IP address the controller can reach";
        }

        if (port is < 1 or > 65535)
        {
            return $"node {Printable.Of(node)} says it serves logs on port {port}, which is not a port";
        }

        var timeout = options.NodeReachTimeout;
        using var deadline = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        deadline.CancelAfter(timeout);
        using var socket = new Socket(ip.AddressFamily, SocketType.Stream, ProtocolType.Tcp);
        string why;
        try
        {
            await socket.ConnectAsync(new IPEndPoint(ip, port), deadline.Token);
            return null;
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            why = $"no answer within {timeout.TotalSeconds:0.###} s";
        }
        catch (SocketException e)
        {
            why = e.SocketErrorCode switch
            {
                SocketError.ConnectionRefused => "connection refused: nothing listens there",
                SocketError.NetworkUnreachable or SocketError.HostUnreachable => "no route to it",
                _ => e.Message,
            };
        }

        return Sentence(node, address, port, controller, why);
    }

    /// <summary>The refusal, in the words the agent prints.</summary>
    public static string Sentence(string node, string address, int port, IPAddress? controller, string why)
    {
        var endpoint = IPAddress.TryParse(address, out var ip) ? new IPEndPoint(ip, port).ToString() : $"{Printable.Of(address)}:{port}";
        var at = controller is null ? string.Empty : $" at {(controller.IsIPv4MappedToIPv6 ? controller.MapToIPv4() : controller)}";
        return $"node {Printable.Of(node)} says its address is {Printable.Of(address)}, but the controller{at} cannot reach {endpoint} ({why}): "
            + "give --address an address the controller can reach (and let it reach the agent's --log-port there)";
    }
}
