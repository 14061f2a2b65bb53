using System.Diagnostics.Metrics;
using System.Net;
using System.Net.Sockets;
using Heddle.Contracts.Agents;
using Heddle.Controller.Agents;
using Heddle.Controller.Reconciliation;
using Heddle.Controller.Store;
using Heddle.Testing;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Time.Testing;

namespace Heddle.Controller.Tests.Agents;

/// <summary>
/// A heartbeat datagram counts as its node heard only with its stream's key and a sequence above the last heard:
/// anyone can send UDP to the controller, and a datagram seen on the wire can be sent again.
/// </summary>
public sealed class HeartbeatDatagramsTests : IDisposable
{
    private readonly FakeTimeProvider _time = new(DateTimeOffset.Parse("2026-12-07T12:00:00Z", System.Globalization.CultureInfo.InvariantCulture));
    private readonly ServiceProvider _meters = new ServiceCollection().AddMetrics().BuildServiceProvider();
    private readonly IClusterStore _store;
    private readonly NodeHealthMonitor _health;
    private readonly HeartbeatDatagrams _datagrams;

    public HeartbeatDatagramsTests()
    {
        _store = KvStores.Over(new InMemoryKeyValueStore(), _time);
        _health = new NodeHealthMonitor(_store, new ControllerOptions { StateDirectory = "/nonexistent" }, _time);
        _datagrams = new HeartbeatDatagrams(_health, new Metrics.ControllerMetrics(_meters.GetRequiredService<IMeterFactory>(), _store), _time);
    }

    public void Dispose()
    {
        _datagrams.Dispose();
        (_store as IDisposable)?.Dispose();
        _meters.Dispose();
    }

    private static byte[] Beat(HeartbeatDatagrams.Registration stream, long sequence, byte[]? key = null)
    {
        var datagram = new byte[HeartbeatDatagram.Length];
        using var mac = HeartbeatDatagram.Mac(key ?? stream.Key);
        HeartbeatDatagram.Write(datagram, answer: false, stream.Id, sequence, mac);
        return datagram;
    }

    private readonly byte[] _answer = new byte[HeartbeatDatagram.Length];

    private bool Take(ReadOnlySpan<byte> datagram) => _datagrams.Take(datagram, _answer);

    /// <summary>Whether the node was heard at the fake clock's present (it is moved on before each datagram).</summary>
    private bool HeardNow(string node) => _health.LastSeen(node) == _time.GetUtcNow();

    [Fact]
    public void ADatagramWithItsStreamsKey_IsTheNodeHeard_AndItsSequenceIsSaid()
    {
        using var stream = _datagrams.Register("n1");
        Assert.Equal(0, stream.Heard);

        Assert.True(Take(Beat(stream, 1)));
        Assert.True(HeardNow("n1"));
        _time.Advance(TimeSpan.FromSeconds(1));
        Assert.True(Take(Beat(stream, 7)));
        Assert.True(HeardNow("n1"));
        Assert.Equal(7, stream.Heard);
    }

    [Fact]
    public void AHeardDatagram_IsAnsweredWithItsSequence_AndTheAnswerIsNoHeartbeat()
    {
        using var stream = _datagrams.Register("n1");
        Assert.True(Take(Beat(stream, 3)));

        Assert.True(HeartbeatDatagram.TryRead(_answer, answer: true, out var id, out var sequence));
        Assert.Equal((stream.Id, 3L), (id, sequence));
        using var mac = HeartbeatDatagram.Mac(stream.Key);
        Assert.True(HeartbeatDatagram.Verify(_answer, mac));
        Assert.False(HeartbeatDatagram.TryRead(_answer, answer: false, out _, out _));
        var answer = _answer.ToArray();
        Assert.False(Take(answer)); // an answer sent back to the controller is not the node heard
    }

    [Fact]
    public void AStream_GetsKeepalives_UntilItsDatagramsAreHeard_AndAgainWhenTheyAreNot_OrWhenItHeartBeatsOnTheStream()
    {
        using var stream = _datagrams.Register("n1");
        Assert.True(stream.NeedsKeepalive());

        Assert.True(Take(Beat(stream, 1)));
        Assert.False(stream.NeedsKeepalive()); // the answers are its keepalives
        _time.Advance(HeartbeatDatagrams.Registration.Unheard + TimeSpan.FromMilliseconds(1));
        Assert.True(stream.NeedsKeepalive());

        Assert.True(Take(Beat(stream, 2)));
        stream.StreamHeartbeat(); // its agent does not hear the answers
        Assert.True(stream.NeedsKeepalive());
        _time.Advance(HeartbeatDatagrams.Registration.FallenBack - TimeSpan.FromMilliseconds(500));
        Assert.True(Take(Beat(stream, 3)));
        Assert.True(stream.NeedsKeepalive());
        _time.Advance(TimeSpan.FromMilliseconds(501));
        Assert.True(Take(Beat(stream, 4)));
        Assert.False(stream.NeedsKeepalive());
    }

    [Fact]
    public void ADatagramSentAgain_OrAnOlderOne_IsNotTheNodeHeard()
    {
        using var stream = _datagrams.Register("n1");
        var fifth = Beat(stream, 5);
        Assert.True(Take(fifth));

        _time.Advance(TimeSpan.FromSeconds(1));
        Assert.False(Take(fifth));
        Assert.False(Take(Beat(stream, 4)));
        Assert.False(HeardNow("n1"));
        Assert.Equal(5, stream.Heard);
    }

    [Fact]
    public void ADatagramOfAnotherKey_OrChangedInAnyByte_OrOfAnotherSize_IsDropped()
    {
        using var stream = _datagrams.Register("n1");
        using var other = _datagrams.Register("n2");
        _time.Advance(TimeSpan.FromSeconds(1));

        Assert.False(Take(Beat(stream, 1, other.Key))); // another node's key, this node's stream id
        var good = Beat(stream, 2);
        for (var i = 0; i < good.Length; i++)
        {
            var changed = (byte[])good.Clone();
            changed[i] ^= 0x01;
            Assert.False(Take(changed));
        }

        Assert.False(Take(good.AsSpan(0, good.Length - 1)));
        Assert.False(Take([.. good, 0]));
        Assert.False(Take([]));
        Assert.False(HeardNow("n1"));
        Assert.Equal(1 + good.Length + 3, _datagrams.Dropped);

        Assert.True(Take(good)); // none of those spent the sequence
        Assert.True(HeardNow("n1"));
    }

    [Fact]
    public void ADatagramOfAStreamThatEnded_IsDropped()
    {
        var stream = _datagrams.Register("n1");
        var beat = Beat(stream, 1);
        stream.Dispose();
        _time.Advance(TimeSpan.FromSeconds(1));

        Assert.False(Take(beat));
        Assert.Null(_health.LastSeen("n1"));
    }

    [Fact]
    public async Task OverUdp_AHeartbeatAfterAFloodOfJunk_IsStillTheNodeHeard()
    {
        _datagrams.Start(IPAddress.Loopback, 0);
        Assert.NotNull(_datagrams.EndPoint);
        using var stream = _datagrams.Register("n1");
        using var udp = new Socket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp);
        var junk = new byte[HeartbeatDatagram.Length];
        for (var i = 0; i < 20_000; i++)
        {
            Random.Shared.NextBytes(junk);
            udp.SendTo(i % 2 == 0 ? junk : junk.AsSpan(0, i % 37), SocketFlags.None, _datagrams.EndPoint!);
        }

        var sequence = 0L;
        await Poll.UntilAsync(() =>
        {
            udp.SendTo(Beat(stream, ++sequence), SocketFlags.None, _datagrams.EndPoint!); // UDP may drop one under the flood: each try is a new heartbeat
            return Task.FromResult(stream.Heard);
        }, heard => heard > 0, TimeSpan.FromSeconds(10), "a heartbeat datagram heard after 20,000 of junk", TimeSpan.FromMilliseconds(50));
        Assert.True(HeardNow("n1"));
        Assert.True(_datagrams.Dropped > 0);

        // Answered to where it came from.
        var answer = new byte[64];
        using var wait = new CancellationTokenSource(TimeSpan.FromSeconds(10));
        var received = await udp.ReceiveAsync(answer, wait.Token);
        Assert.True(HeartbeatDatagram.TryRead(answer.AsSpan(0, received), answer: true, out var id, out _));
        Assert.Equal(stream.Id, id);
    }

    [Fact]
    public void AStreamsMac_IsHmacSha256OfTheSignedBytesUnderItsKey_CutToTheDatagramsLength()
    {
        var key = System.Security.Cryptography.RandomNumberGenerator.GetBytes(HeartbeatDatagram.KeyLength);
        var datagram = new byte[HeartbeatDatagram.Length];
        using var mac = HeartbeatDatagram.Mac(key);

        HeartbeatDatagram.Write(datagram, answer: false, stream: 42, sequence: 7, mac);

        const int macLength = 16; // the datagram's last 16 bytes: the first 16 of the HMAC of the 20 before them
        var expected = System.Security.Cryptography.HMACSHA256.HashData(key, datagram.AsSpan(0, HeartbeatDatagram.Length - macLength));
        Assert.Equal(expected[..macLength], datagram[^macLength..]);
        Assert.True(HeartbeatDatagram.Verify(datagram, mac));
        datagram[5] ^= 1;
        Assert.False(HeartbeatDatagram.Verify(datagram, mac)); // a bit changed on the way
        Assert.Throws<ArgumentException>(() => HeartbeatDatagram.Mac(key.AsSpan(1))); // a key of the wrong length
    }
}
