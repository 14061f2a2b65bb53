using Google.Protobuf;
using Heddle.Agent.Connection;
using Heddle.Contracts.Agents;

namespace Heddle.Agent.Tests.Connection;

/// <summary>
/// Heartbeats go as datagrams alone only while the controller says it hears them; an offer that makes no sense is not
/// taken; the log says once each time the datagrams stop being heard.
/// </summary>
public sealed class DatagramHeartbeatsTests
{
    private static HeartbeatDatagramOffer Offer(int keyLength = HeartbeatDatagram.KeyLength, string address = "127.0.0.1", int port = 9) =>
        new() { Stream = (ulong)Random.Shared.NextInt64(), Key = ByteString.CopyFrom(new byte[keyLength]), Address = address, Port = port };

    private static readonly Uri Controller = new("https://127.0.0.1:7001/");
    private static readonly TimeSpan Window = TimeSpan.FromSeconds(3);

    [Fact]
    public void TheWindow_IsAThirdOfTheFenceTime_AtMost3s_AtLeastTwoHeartbeats()
    {
        var second = TimeSpan.FromSeconds(1);
        Assert.Equal(TimeSpan.FromSeconds(3), DatagramHeartbeats.WindowFor(TimeSpan.FromSeconds(10), second));
        Assert.Equal(TimeSpan.FromSeconds(3), DatagramHeartbeats.WindowFor(TimeSpan.FromMinutes(5), second));
        Assert.Equal(TimeSpan.FromSeconds(1), DatagramHeartbeats.WindowFor(TimeSpan.FromSeconds(3), TimeSpan.FromMilliseconds(250)));
        Assert.Equal(TimeSpan.FromSeconds(2), DatagramHeartbeats.WindowFor(TimeSpan.FromSeconds(3), second));
    }

    [Fact]
    public void TheDatagramsGo_ToTheControllersAddressAsGiven_OrWhereItSaysItWasReached_WhenGivenAName()
    {
        using var byAddress = DatagramHeartbeats.Open(Offer(address: "127.0.0.9", port: 7002), Controller, Window, () => 0)!;
        Assert.Equal(new System.Net.IPEndPoint(System.Net.IPAddress.Loopback, 7002), byAddress.To);
        using var byName = DatagramHeartbeats.Open(Offer(address: "127.0.0.9", port: 7002), new Uri("https://controller.example:7001/"), Window, () => 0)!;
        Assert.Equal(System.Net.IPEndPoint.Parse("127.0.0.9:7002"), byName.To);
    }

    [Fact]
    public void AnOfferThatMakesNoSense_IsNotTaken()
    {
        var offer = Offer();
        using var taken = DatagramHeartbeats.Open(offer, Controller, Window, () => 0);
        Assert.NotNull(taken);
        Assert.Null(DatagramHeartbeats.Open(offer, Controller, Window, () => 0)); // its stream id is another session's in this process
        Assert.Null(DatagramHeartbeats.Open(Offer(keyLength: 16), Controller, Window, () => 0));
        Assert.Null(DatagramHeartbeats.Open(Offer(address: "controller.example"), new Uri("https://controller.example:7001/"), Window, () => 0));
        Assert.Null(DatagramHeartbeats.Open(Offer(port: 0), Controller, Window, () => 0));
        Assert.Null(DatagramHeartbeats.Open(Offer(port: 70000), Controller, Window, () => 0));
    }

    [Fact]
    public void TheDatagramsCarry_OnlyWhileTheControllerSaysItHeardANewOne_WithinTheWindow()
    {
        using var beats = DatagramHeartbeats.Open(Offer(), Controller, Window, () => 0)!;
        var window = (long)Window.TotalMilliseconds;
        beats.Send(1, now: 0);
        Assert.False(beats.Carry(0)); // not heard yet: the stream carries them too

        beats.Heard(1, now: 800);
        Assert.True(beats.Carry(800));
        Assert.True(beats.Carry(800 + window));
        beats.Heard(1, now: 2000); // the same sequence said again is not news
        Assert.False(beats.Carry(801 + window));

        beats.Heard(5, now: 10_000);
        Assert.True(beats.Carry(10_000));
    }

    [Fact]
    public void DatagramsUnheard_AreToldOnce_EachTimeTheyStop()
    {
        using var beats = DatagramHeartbeats.Open(Offer(), Controller, Window, () => 0)!;
        var window = (long)Window.TotalMilliseconds;
        Assert.False(beats.NewlyUnheard(10 * window)); // none sent yet

        beats.Send(1, now: 0);
        Assert.False(beats.NewlyUnheard(window));
        Assert.True(beats.NewlyUnheard(window + 1)); // never heard, a window after the first
        Assert.False(beats.NewlyUnheard(window + 2));

        beats.Heard(3, now: 5 * window);
        Assert.False(beats.NewlyUnheard(6 * window));
        Assert.True(beats.NewlyUnheard(6 * window + 1)); // heard, then not
        Assert.False(beats.NewlyUnheard(7 * window));
    }
}
