using System.Collections.Concurrent;
using System.Diagnostics;
using System.Runtime.InteropServices;
using Microsoft.Win32.SafeHandles;

namespace Heddle.Testing.Hosts;

/// <summary>
/// A wire in user space between two Ethernet interfaces of this namespace: every frame that arrives on one is sent out
/// of the other after a fixed delay for its direction, in order. It stands in for tc netem on kernels without it (this
/// machine's has none, nor NFQUEUE). Frames are read and written whole through AF_PACKET sockets, so both interfaces
/// (and whoever sends to them) must hand over finished frames: checksum, segmentation and receive offloads off
/// (<see cref="TestHost.DegradeAsync"/> does that). Meant for control traffic (heartbeats, etcd, API calls), not for
/// throughput: a frame costs two copies and a queue slot.
/// </summary>
internal sealed partial class DelayWire : IDisposable
{
    private const int AfPacket = 17;
    private const int SockRaw = 3;
    private const int SockCloexec = 0x80000;
    private const ushort EthPAllNetworkOrder = 0x0300; // htons(ETH_P_ALL)
    private const int SolSocket = 1;
    private const int SoRcvTimeo = 20;
    private const int SolPacket = 263;
    private const int PacketIgnoreOutgoing = 23;
    private const int EAgain = 11;
    private const int EIntr = 4;

    private readonly Descriptor _a;
    private readonly Descriptor _b;
    private readonly CancellationTokenSource _stop = new();
    private readonly List<Thread> _threads = [];
    private long _sent;
    private long _failed;

    private DelayWire(Descriptor a, Descriptor b)
    {
        _a = a;
        _b = b;
    }

    /// <summary>Frames carried so far, both ways.</summary>
    public long Sent => Interlocked.Read(ref _sent);

    /// <summary>Frames the kernel refused to send (too large: an offload is still on somewhere).</summary>
    public long Failed => Interlocked.Read(ref _failed);

    /// <summary>Starts carrying frames between <paramref name="a"/> and <paramref name="b"/>.</summary>
    public static DelayWire Start(string a, string b, TimeSpan aToB, TimeSpan bToA)
    {
        var socketA = Open(a);
        var socketB = Open(b);
        var wire = new DelayWire(socketA, socketB);
        wire.Carry($"{a}->{b}", socketA, socketB, aToB);
        wire.Carry($"{b}->{a}", socketB, socketA, bToA);
        return wire;
    }

    private void Carry(string name, Descriptor from, Descriptor to, TimeSpan delay)
    {
        var queue = new BlockingCollection<(long Due, byte[] Frame)>();
        var hold = (long)(delay.TotalSeconds * Stopwatch.Frequency);
        var receive = new Thread(() => Receive(from, queue, hold)) { IsBackground = true, Name = $"wire {name} in" };
        var send = new Thread(() => Send(to, queue)) { IsBackground = true, Name = $"wire {name} out" };
        _threads.Add(receive);
        _threads.Add(send);
        receive.Start();
        send.Start();
    }

    private void Receive(Descriptor from, BlockingCollection<(long, byte[])> queue, long hold)
    {
        var buffer = new byte[65_536];
        while (!_stop.IsCancellationRequested)
        {
            var n = recv(from, buffer, buffer.Length, 0);
            if (n < 0)
            {
                var error = Marshal.GetLastPInvokeError();
                if (error is EAgain or EIntr)
                {
                    continue; // the receive timeout: look at the stop flag again
                }

                break; // the socket is closed
            }

            queue.Add((Stopwatch.GetTimestamp() + hold, buffer.AsSpan(0, (int)n).ToArray()));
        }

        queue.CompleteAdding();
    }

    private void Send(Descriptor to, BlockingCollection<(long Due, byte[] Frame)> queue)
    {
        try
        {
            foreach (var (due, frame) in queue.GetConsumingEnumerable(_stop.Token))
            {
                var wait = Stopwatch.GetElapsedTime(Stopwatch.GetTimestamp(), due);
                if (wait > TimeSpan.Zero && _stop.Token.WaitHandle.WaitOne(wait))
                {
                    return;
                }

                if (send(to, frame, frame.Length, 0) < 0)
                {
                    Interlocked.Increment(ref _failed);
                }
                else
                {
                    Interlocked.Increment(ref _sent);
                }
            }
        }
        catch (OperationCanceledException)
        {
        }
    }

    private static Descriptor Open(string interfaceName)
    {
        var index = if_nametoindex(interfaceName);
        if (index == 0)
        {
            throw new InvalidOperationException($"a delay wire: there is no interface {interfaceName}");
        }

        // Protocol 0 receives nothing until bind names the interface, so no other interface's frame slips in.
        var socket = new Descriptor(socket_(AfPacket, SockRaw | SockCloexec, 0));
        try
        {
            if (socket.IsInvalid)
            {
                throw new InvalidOperationException($"a delay wire: cannot open a packet socket ({Marshal.GetLastPInvokeErrorMessage()}; needs root)");
            }

            // What this socket sends is not read back by it, nor by taps of the same interface that are ours.
            SetOption(socket, SolPacket, PacketIgnoreOutgoing, BitConverter.GetBytes(1), interfaceName);
            var timeout = new byte[16];
            BitConverter.TryWriteBytes(timeout.AsSpan(8), 100_000L); // struct timeval { 0 s, 100,000 µs }
            SetOption(socket, SolSocket, SoRcvTimeo, timeout, interfaceName);
            var address = new byte[20]; // struct sockaddr_ll
            BitConverter.TryWriteBytes(address.AsSpan(0), (ushort)AfPacket);
            BitConverter.TryWriteBytes(address.AsSpan(2), EthPAllNetworkOrder);
            BitConverter.TryWriteBytes(address.AsSpan(4), (int)index);
            if (bind(socket, address, address.Length) != 0)
            {
                throw new InvalidOperationException($"a delay wire: cannot bind to {interfaceName}: {Marshal.GetLastPInvokeErrorMessage()}");
            }

            return socket;
        }
        catch
        {
            socket.Dispose();
            throw;
        }
    }

    private static void SetOption(Descriptor socket, int level, int name, byte[] value, string interfaceName)
    {
        if (setsockopt(socket, level, name, value, value.Length) != 0)
        {
            throw new InvalidOperationException($"a delay wire on {interfaceName}: setsockopt({level}, {name}): {Marshal.GetLastPInvokeErrorMessage()}");
        }
    }

    public void Dispose()
    {
        _stop.Cancel();
        foreach (var thread in _threads)
        {
            thread.Join();
        }

        _a.Dispose();
        _b.Dispose();
        _stop.Dispose();
    }

    private sealed class Descriptor : SafeHandleMinusOneIsInvalid
    {
        public Descriptor()
            : base(ownsHandle: true)
        {
        }

        public Descriptor(int fd)
            : this() => SetHandle(fd);

        protected override bool ReleaseHandle() => close((int)handle) == 0;
    }

    [LibraryImport("libc", EntryPoint = "socket", SetLastError = true)]
    private static partial int socket_(int domain, int type, int protocol);

    [LibraryImport("libc", SetLastError = true)]
    private static partial int bind(SafeHandle fd, byte[] address, int length);

    [LibraryImport("libc", SetLastError = true)]
    private static partial int setsockopt(SafeHandle fd, int level, int name, byte[] value, int length);

    [LibraryImport("libc", SetLastError = true)]
    private static partial nint recv(SafeHandle fd, byte[] buffer, nint length, int flags);

    [LibraryImport("libc", SetLastError = true)]
    private static partial nint send(SafeHandle fd, byte[] buffer, nint length, int flags);

    [LibraryImport("libc", EntryPoint = "if_nametoindex", StringMarshalling = StringMarshalling.Utf8)]
    private static partial uint if_nametoindex(string name);

    [LibraryImport("libc")]
    private static partial int close(int fd);
}
