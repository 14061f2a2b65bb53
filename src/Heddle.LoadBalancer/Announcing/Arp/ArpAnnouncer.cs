using System.Collections.Frozen;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Runtime.InteropServices;

namespace Heddle.LoadBalancer.Announcing.Arp;

/// <summary>
/// ARP mode, as MetalLB's layer 2 mode: this balancer answers ARP requests for the VIPs it owns, itself, from user
/// space, with the interface's MAC. The VIPs are never addresses of the interface; the host takes their traffic through
/// local routes on lo (<see cref="LocalVipRoutes"/>), and the kernel is told not to answer for them (arp_ignore=1),
/// so that when this process dies (even by kill -9) its socket closes and nobody here answers any more: no second
/// owner. A VIP taken is announced by gratuitous ARP (<see cref="ArpAnnouncerOptions.GratuitousRounds"/>), which moves
/// the neighbours' caches without their asking; a VIP given up is simply no longer answered.
/// </summary>
public sealed class ArpAnnouncer : IVipAnnouncer
{
    private const int FramesPerWake = 64; // a flood of requests still lets the loop see Stop and the interface checks

    private readonly ArpAnnouncerOptions _options;
    private readonly TimeProvider _time;
    private readonly SemaphoreSlim _lock = new(1, 1);
    private readonly CancellationTokenSource _stopping = new();
    private readonly List<Task> _repeats = []; // under _lock
    private PacketSocket? _socket;
    private Thread? _receiver;
    private volatile Announced _announced = Announced.None;
    private volatile string? _problem; // the last send or receive failure, until the next success
    private volatile bool _receiverFailed;
    private int _disposed;

    public ArpAnnouncer(ArpAnnouncerOptions options, TimeProvider? time = null)
    {
        options.Validate();
        _options = options;
        _time = time ?? TimeProvider.System;
    }

    public string Mode => "arp";

    /// <summary>
    /// Synchronous, and on the calling thread: the socket and the sysctls take that thread's network namespace (a test
    /// enters a host's namespace on one thread and starts the announcer there; the receiver thread inherits it).
    /// </summary>
    public Task StartAsync(CancellationToken cancellationToken)
    {
        ObjectDisposedException.ThrowIf(_disposed != 0, this);
        if (_socket is not null)
        {
            throw new InvalidOperationException("the ARP announcer is started already");
        }

        cancellationToken.ThrowIfCancellationRequested();
        var socket = PacketSocket.Open(_options.Interface);
        try
        {
            KeepKernelQuiet(_options.Interface);
        }
        catch
        {
            socket.Dispose();
            throw;
        }

        _socket = socket;
        _receiver = new Thread(Receive) { IsBackground = true, Name = $"arp {_options.Interface}" };
        _receiver.Start();
        return Task.CompletedTask;
    }

    public async Task AnnounceAsync(IReadOnlySet<IPAddress> vips, CancellationToken cancellationToken)
    {
        ObjectDisposedException.ThrowIf(_disposed != 0, this);
        var socket = _socket ?? throw new InvalidOperationException("start the ARP announcer before announcing");
        var notIPv4 = vips.Where(v => v.AddressFamily != AddressFamily.InterNetwork).ToList();
        if (notIPv4.Count > 0)
        {
            throw new AnnouncerException($"ARP announces IPv4 addresses only; {string.Join(", ", notIPv4)} would need NDP, which heddle lb does not speak: announce them with --announce bgp");
        }

        await _lock.WaitAsync(cancellationToken);
        try
        {
            ObjectDisposedException.ThrowIf(_disposed != 0, this); // DisposeAsync waits only for the repeats started before it
            var before = _announced.Addresses;
            var addresses = vips.Select(ArpPacket.ToUInt32).ToFrozenSet();
            _announced = new Announced(addresses, [.. addresses.Order().Select(a => ArpPacket.ToAddress(a).ToString())]);
            var taken = addresses.Where(a => !before.Contains(a)).ToArray();
            if (taken.Length > 0)
            {
                Gratuitous(socket, taken);
                _repeats.RemoveAll(t => t.IsCompleted);
                _repeats.Add(RepeatAsync(socket, taken));
            }
        }
        finally
        {
            _lock.Release();
        }
    }

    public AnnouncerStatus Status
    {
        get
        {
            var socket = _socket;
            var announced = _announced.Vips;
            if (socket is null || _disposed != 0)
            {
                return new AnnouncerStatus(Mode, false, $"arp on {_options.Interface}: {(socket is null ? "not started" : "stopped")}", announced);
            }

            var (index, up) = socket.Probe();
            var trouble = index == 0 ? "the interface is gone"
                : index != socket.InterfaceIndex ? "the interface was made again; binding to it"
                : !up ? "the interface is down"
                : _receiverFailed ? $"not answering: {_problem}"
                : _problem;
            var where = $"arp on {_options.Interface} ({socket.Mac})";
            return new AnnouncerStatus(Mode, trouble is null, trouble is null ? where : $"{where}: {trouble}", announced);
        }
    }

    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
        {
            return;
        }

        await _stopping.CancelAsync();
        _socket?.Stop();
        _receiver?.Join(); // it ends at its next wait, which Stop has cut short
        Task[] repeats;
        await _lock.WaitAsync();
        try
        {
            repeats = [.. _repeats];
        }
        finally
        {
            _lock.Release();
        }

        await Task.WhenAll(repeats);
        _socket?.Dispose();
        _announced = Announced.None;
        _stopping.Dispose();
    }

    /// <summary>
    /// arp_ignore=1: the kernel answers only for addresses on the interface itself, not for the VIPs routed to lo (it
    /// would otherwise, as a second owner, and go on after this process died); arp_announce=2: its own requests never
    /// give a VIP as their source. A value already stricter is left as it is.
    /// </summary>
    private static void KeepKernelQuiet(string interfaceName)
    {
        AtLeast(interfaceName, "arp_ignore", 1);
        AtLeast(interfaceName, "arp_announce", 2);
    }

    private static void AtLeast(string interfaceName, string setting, int wanted)
    {
        var path = $"/proc/sys/net/ipv4/conf/{interfaceName}/{setting}";
        try
        {
            if (int.TryParse(File.ReadAllText(path).Trim(), NumberStyles.Integer, CultureInfo.InvariantCulture, out var now) && now >= wanted)
            {
                return;
            }

            File.WriteAllText(path, wanted.ToString(CultureInfo.InvariantCulture));
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new AnnouncerException($"cannot set {setting}={wanted} for {interfaceName} ({path}: {e.Message}); without it the kernel would answer ARP for the VIPs too", e);
        }
    }

    private async Task RepeatAsync(PacketSocket socket, uint[] taken)
    {
        try
        {
            for (var round = 1; round < _options.GratuitousRounds; round++)
            {
                await Task.Delay(_options.GratuitousInterval, _time, _stopping.Token);
                var still = _announced.Addresses;
                Gratuitous(socket, [.. taken.Where(still.Contains)]);
            }
        }
        catch (OperationCanceledException)
        {
            // Stopped: nothing more to announce.
        }
    }

    /// <summary>Both forms, broadcast: some hosts heed only requests, some only replies.</summary>
    private void Gratuitous(PacketSocket socket, ReadOnlySpan<uint> addresses)
    {
        Span<byte> payload = stackalloc byte[ArpPacket.Length];
        foreach (var ip in addresses)
        {
            var mac = socket.Mac;
            ArpPacket.GratuitousRequest(mac, ip).Write(payload);
            var error = socket.Send(payload, MacAddress.Broadcast);
            if (error == 0)
            {
                ArpPacket.GratuitousReply(mac, ip).Write(payload);
                error = socket.Send(payload, MacAddress.Broadcast);
            }

            if (error == 0)
            {
                _problem = null;
            }
            else
            {
                Fail(error, $"cannot send gratuitous ARP for {ArpPacket.ToAddress(ip)}");
            }
        }
    }

    private void Receive()
    {
        var socket = _socket!;
        Span<byte> frame = stackalloc byte[64]; // 28 bytes of ARP and Ethernet's padding; anything longer is cut
        Span<byte> reply = stackalloc byte[ArpPacket.Length];
        var lastCheck = _time.GetTimestamp();
        try
        {
            while (socket.Wait(_options.InterfaceCheckInterval))
            {
                for (var i = 0; i < FramesPerWake; i++)
                {
                    var length = socket.TryReceive(frame, out var outgoing);
                    if (length == 0)
                    {
                        break;
                    }

                    if (length < 0)
                    {
                        Fail(-length, $"receiving on {socket.InterfaceName}");
                        break;
                    }

                    _problem = null;
                    if (!outgoing)
                    {
                        Answer(socket, frame[..length], reply);
                    }
                }

                if (_time.GetElapsedTime(lastCheck) >= _options.InterfaceCheckInterval)
                {
                    lastCheck = _time.GetTimestamp();
                    FollowInterface(socket);
                }
            }
        }
        catch (Exception e)
        {
            // A bug, or poll itself failing: say so in the status rather than end the process.
            _problem = $"the receiver stopped ({e.GetType().Name}: {e.Message})";
            _receiverFailed = true;
        }
    }

    /// <summary>Answers a question for an announced VIP; nothing else (replies, gratuitous ARP from an owner announcing, garbage).</summary>
    private void Answer(PacketSocket socket, ReadOnlySpan<byte> frame, Span<byte> reply)
    {
        if (!ArpPacket.TryParse(frame, out var request)
            || request.Operation != ArpOperation.Request
            || request.IsGratuitous
            || request.SenderMac.IsGroup
            || request.SenderMac == MacAddress.Zero
            || !_announced.Addresses.Contains(request.TargetIp))
        {
            return;
        }

        request.ReplyFrom(socket.Mac).Write(reply);
        var error = socket.Send(reply, request.SenderMac);
        if (error != 0)
        {
            Fail(error, $"cannot answer {ArpPacket.ToAddress(request.SenderIp)} for {ArpPacket.ToAddress(request.TargetIp)}");
        }
    }

    /// <summary>
    /// Keeps a failure for the status until the next success. The link going down or away is not kept: the kernel
    /// reports it once (ENETDOWN, perhaps only after the interface is back), and the status reads the link's state itself.
    /// </summary>
    private void Fail(int errno, string what)
    {
        if (errno is not (ENxio or ENoDev or ENetDown))
        {
            _problem = $"{what}: {Marshal.GetPInvokeErrorMessage(errno)}";
        }
    }

    private const int ENxio = 6;
    private const int ENoDev = 19;
    private const int ENetDown = 100;

    /// <summary>An interface deleted and made again has a new index (and perhaps address): bind to it and announce again.</summary>
    private void FollowInterface(PacketSocket socket)
    {
        var (index, _) = socket.Probe();
        if (index == 0 || index == socket.InterfaceIndex)
        {
            return;
        }

        try
        {
            socket.Bind();
            KeepKernelQuiet(socket.InterfaceName);
            _problem = null;
            Gratuitous(socket, [.. _announced.Addresses]);
        }
        catch (AnnouncerException e)
        {
            _problem = e.Message;
        }
    }

    private sealed record Announced(FrozenSet<uint> Addresses, IReadOnlyList<string> Vips)
    {
        public static readonly Announced None = new(FrozenSet<uint>.Empty, []);
    }
}
