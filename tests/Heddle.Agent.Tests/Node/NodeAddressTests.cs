using System.Net;
using Heddle.Agent.Node;

namespace Heddle.Agent.Tests.Node;

/// <summary>The address a node says it is at: by default the route's source toward the controller; loopback only beside a controller on loopback.</summary>
public sealed class NodeAddressTests
{
    private static readonly Uri LoopbackController = new("https://127.0.0.1:7001");
    private static readonly Uri RemoteController = new("https://198.18.0.1:7001");

    private static NodeAddress.ControllerAddresses At(Uri controller, params string[] addresses) => new(controller, [.. addresses.Select(IPAddress.Parse)]);

    [Fact]
    public void RouteSource_ToALoopbackAddress_IsALoopbackAddress()
    {
        var source = NodeAddress.RouteSource(IPAddress.Loopback, 7001, out var problem);

        Assert.Null(problem);
        Assert.NotNull(source);
        Assert.True(IPAddress.IsLoopback(source), $"{source}");
    }

    [Fact]
    public async Task Choose_ForAControllerOn127001_IsALoopbackAddress_AndAccepted()
    {
        var controllers = new[] { await NodeAddress.ResolveAsync(LoopbackController, TimeSpan.FromSeconds(5), CancellationToken.None) };

        var choice = NodeAddress.Choose(controllers, out var problems);

        Assert.Empty(problems);
        Assert.NotNull(choice);
        Assert.True(IPAddress.IsLoopback(choice.Address), $"{choice.Address}");
        Assert.Equal(LoopbackController, choice.Controller);
        Assert.Contains("route to the controller at https://127.0.0.1:7001/ (127.0.0.1)", choice.Why);
        Assert.Null(NodeAddress.LoopbackRefusal(choice.Address, controllers));
    }

    [Fact]
    public async Task Choose_ForAControllerNamedLocalhost_ResolvesTheNameFirst()
    {
        var controllers = new[] { await NodeAddress.ResolveAsync(new Uri("https://localhost:7001"), TimeSpan.FromSeconds(5), CancellationToken.None) };

        var choice = NodeAddress.Choose(controllers, out _);

        Assert.NotNull(choice);
        Assert.True(IPAddress.IsLoopback(choice.ControllerAddress) && IPAddress.IsLoopback(choice.Address), $"{choice.ControllerAddress} {choice.Address}");
    }

    [Fact]
    public void Choose_SkipsAControllerWhoseNameDoesNotResolve_AndTakesTheNextOne()
    {
        var unresolved = new NodeAddress.ControllerAddresses(new Uri("https://nowhere.invalid:7001"), [], "nowhere.invalid does not resolve");

        var choice = NodeAddress.Choose([unresolved, At(LoopbackController, "127.0.0.1")], out var problems);

        Assert.Equal(LoopbackController, choice?.Controller);
        Assert.Contains(problems, p => p.Contains("nowhere.invalid does not resolve"));
    }

    [Theory]
    [InlineData("127.0.0.1")]
    [InlineData("127.0.1.5")]
    [InlineData("::1")]
    public void LoopbackRefusal_ALoopbackAddressWithAControllerOnLoopback_IsFine(string address)
    {
        Assert.Null(NodeAddress.LoopbackRefusal(IPAddress.Parse(address), [At(LoopbackController, "127.0.0.1"), At(new Uri("https://[::1]:7001"), "::1")]));
    }

    [Theory]
    [InlineData("127.0.0.1")]
    [InlineData("127.255.0.9")]
    [InlineData("::1")]
    public void LoopbackRefusal_ALoopbackAddressWithAControllerElsewhere_IsRefusedWithASentence(string address)
    {
        var refusal = NodeAddress.LoopbackRefusal(IPAddress.Parse(address), [At(LoopbackController, "127.0.0.1"), At(RemoteController, "198.18.0.1")]);

        Assert.Equal($"the node's address {address} is a loopback address, which only this host can reach, but the controller https://198.18.0.1:7001/ is at 198.18.0.1: "
            + "give --address an address of this host that the controller can reach (or leave it out: the default is the local address of the route to the controller)", refusal);
    }

    [Fact]
    public void LoopbackRefusal_ALoopbackAddressWithAControllerWhoseNameDidNotResolve_IsRefused()
    {
        var refusal = NodeAddress.LoopbackRefusal(IPAddress.Loopback, [new NodeAddress.ControllerAddresses(new Uri("https://ctl.invalid:7001"), [], "ctl.invalid does not resolve")]);

        Assert.Contains("could not be looked up (ctl.invalid does not resolve)", refusal);
    }

    [Theory]
    [InlineData("198.18.0.7")]
    [InlineData("10.0.0.5")]
    [InlineData("fd00::5")]
    public void LoopbackRefusal_AnAddressThatIsNotLoopback_IsFineWhereverTheControllerIs(string address)
    {
        Assert.Null(NodeAddress.LoopbackRefusal(IPAddress.Parse(address), [At(RemoteController, "198.18.0.1")]));
        Assert.Null(NodeAddress.LoopbackRefusal(IPAddress.Parse(address), [At(LoopbackController, "127.0.0.1")]));
    }
}
