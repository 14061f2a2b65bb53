using System.Net;
using System.Net.Sockets;

namespace Heddle.Agent.Node;

/// <summary>
/// The address a node says it is at: the one given (`--address`), or by default the local address of this host's
/// route to the controller — the source address the kernel picks for a UDP socket connected to it (connecting a
/// UDP socket sends nothing). A loopback address is for a cluster on one host only: it is refused unless every
/// controller is on loopback too.
/// </summary>
public static class NodeAddress
{
    /// <summary>How one controller's address was looked up: its addresses (empty when its name did not resolve) and why not.</summary>
    public sealed record ControllerAddresses(Uri Controller, IReadOnlyList<IPAddress> Addresses, string? Problem = null);

    /// <summary>An address chosen by default, with the controller whose route gave it.</summary>
    public sealed record Choice(IPAddress Address, Uri Controller, IPAddress ControllerAddress)
    {
        public string Why => $"the local address of this host's route to the controller at {Controller} ({ControllerAddress}); give --address to choose another";
    }

    /// <summary>The controller's host as addresses: an IP literal as it is, a name resolved (within <paramref name="timeout"/>).</summary>
    public static async Task<ControllerAddresses> ResolveAsync(Uri controller, TimeSpan timeout, CancellationToken cancellationToken)
    {
        if (IPAddress.TryParse(controller.DnsSafeHost, out var literal))
        {
            return new ControllerAddresses(controller, [Normal(literal)]);
        }

        using var deadline = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        deadline.CancelAfter(timeout);
        try
        {
            var addresses = await Dns.GetHostAddressesAsync(controller.DnsSafeHost, deadline.Token);
            return new ControllerAddresses(controller, [.. addresses.Select(Normal)], addresses.Length == 0 ? $"{controller.DnsSafeHost} has no address" : null);
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            return new ControllerAddresses(controller, [], $"{controller.DnsSafeHost} did not resolve within {timeout.TotalSeconds:0.#} s");
        }
        catch (SocketException e)
        {
            return new ControllerAddresses(controller, [], $"{controller.DnsSafeHost} does not resolve: {e.Message}");
        }
    }

    /// <summary>The source address the kernel would give a packet to <paramref name="destination"/>, or null and why when there is no route.</summary>
    public static IPAddress? RouteSource(IPAddress destination, int port, out string? problem)
    {
        try
        {
            using var socket = new Socket(destination.AddressFamily, SocketType.Dgram, ProtocolType.Udp);
            socket.Connect(new IPEndPoint(destination, port is > 0 and <= 65535 ? port : 9)); // a route lookup only: UDP sends nothing on connect
            problem = null;
            return Normal(((IPEndPoint)socket.LocalEndPoint!).Address);
        }
        catch (SocketException e)
        {
            problem = $"no route to {destination}: {e.Message}";
            return null;
        }
    }

    /// <summary>
    /// The default address: the route source toward the first controller (in the order given) that has a route; null
    /// and each controller's problem when none has.
    /// </summary>
    public static Choice? Choose(IReadOnlyList<ControllerAddresses> controllers, out IReadOnlyList<string> problems)
    {
        var found = new List<string>();
        foreach (var controller in controllers)
        {
            if (controller.Problem is { } unresolved && controller.Addresses.Count == 0)
            {
                found.Add($"{controller.Controller}: {unresolved}");
                continue;
            }

            foreach (var address in controller.Addresses)
            {
                if (RouteSource(address, controller.Controller.Port, out var problem) is { } source)
                {
                    problems = found;
                    return new Choice(source, controller.Controller, address);
                }

                found.Add($"{controller.Controller}: {problem}");
            }
        }

        problems = found;
        return null;
    }

    /// <summary>
    /// The rule for loopback: a node at a loopback address (127.0.0.0/8, ::1) can be reached from its own host only, so
    /// it may say so only when every controller is on loopback too (`heddle up`, tests: a cluster on one host). Null when
    /// <paramref name="address"/> is fine, else why not, as a sentence. A controller whose name did not resolve counts as
    /// not on loopback.
    /// </summary>
    public static string? LoopbackRefusal(IPAddress address, IReadOnlyList<ControllerAddresses> controllers)
    {
        if (!IPAddress.IsLoopback(Normal(address)))
        {
            return null;
        }

        var remote = controllers.FirstOrDefault(c => c.Addresses.Count == 0 || c.Addresses.Any(a => !IPAddress.IsLoopback(a)));
        if (remote is null)
        {
            return null;
        }

        var where = remote.Addresses.Count == 0 ? $"could not be looked up ({remote.Problem})" : $"is at {string.Join(", ", remote.Addresses)}";
        return $"the node's address {address} is a loopback address, which only this host can reach, but the controller {remote.Controller} {where}: "
            + "give --address an address of this host that the controller can reach (or leave it out: the default is the local address of the route to the controller)";
    }

    private static IPAddress Normal(IPAddress address) => address.IsIPv4MappedToIPv6 ? address.MapToIPv4() : address;
}
