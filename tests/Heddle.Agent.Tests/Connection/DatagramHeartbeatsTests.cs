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
    public void TheDatagramsCarry_OnlyWhileTheControllerAnswersANewOne_WithinTheWindow()
    {
        using var beats = DatagramHeartbeats.Open(Offer(), Controller, Window, () => 0)!;
        var window = (long)Window.TotalMilliseconds;
        beats.Send(1, now: 0);
        Assert.False(beats.Carry(0)); // not answered yet: the stream carries them too

        beats.Answered(1, now: 800);
        Assert.True(beats.Carry(800));
        Assert.True(beats.Carry(800 + window));
        beats.Answered(1, now: 2000); // the same answer again (replayed) is not news
        Assert.False(beats.Carry(801 + window));
        beats.KeepaliveSaid(9, now: 802 + window); // a keepalive saying the controller heard them is not an answer
        Assert.False(beats.Carry(802 + window));

        beats.Answered(5, now: 10_000);
        Assert.True(beats.Carry(10_000));
    }

    [Fact]
    public void DatagramsUnanswered_AreToldOnce_EachTimeTheyStop_WithWhichWayTheyAreLost()
    {
        using var beats = DatagramHeartbeats.Open(Offer(), Controller, Window, () => 0)!;
        var window = (long)Window.TotalMilliseconds;
        Assert.Null(beats.Unheard(10 * window)); // none sent yet

        beats.Send(1, now: 0);
        Assert.Null(beats.Unheard(2 * window)); // a collection's pause on the controller is silence this long
        Assert.Equal("the controller does not hear them", beats.Unheard((2 * window) + 1)); // never answered, two windows after the first
        Assert.Null(beats.Unheard((2 * window) + 2));

        beats.Answered(3, now: 5 * window);
        Assert.Null(beats.Unheard(6 * window));
        beats.KeepaliveSaid(3, now: 6 * window); // no more than was answered: says nothing
        Assert.Equal("the controller does not hear them", beats.Unheard((7 * window) + 1));
        beats.Answered(4, now: 8 * window);
        beats.KeepaliveSaid(5, now: 9 * window); // one it heard and whose answer did not come: its answers are what is lost
        Assert.Equal("the controller hears them, but its answers do not come back", beats.Unheard((10 * window) + 1));
        Assert.Null(beats.Unheard(11 * window));
    }
}
