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
        new() { Stream = 42, Key = ByteString.CopyFrom(new byte[keyLength]), Address = address, Port = port };

    [Fact]
    public void AnOfferThatMakesNoSense_IsNotTaken()
    {
        Assert.NotNull(DatagramHeartbeats.From(Offer()));
        Assert.Null(DatagramHeartbeats.From(Offer(keyLength: 16)));
        Assert.Null(DatagramHeartbeats.From(Offer(address: "controller.example")));
        Assert.Null(DatagramHeartbeats.From(Offer(port: 0)));
        Assert.Null(DatagramHeartbeats.From(Offer(port: 70000)));
    }

    [Fact]
    public void TheDatagramsCarry_OnlyWhileTheControllerSaysItHeardANewOne_WithinTheWindow()
    {
        var beats = DatagramHeartbeats.From(Offer())!;
        var window = (long)DatagramHeartbeats.Window.TotalMilliseconds;
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
        var beats = DatagramHeartbeats.From(Offer())!;
        var window = (long)DatagramHeartbeats.Window.TotalMilliseconds;
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
