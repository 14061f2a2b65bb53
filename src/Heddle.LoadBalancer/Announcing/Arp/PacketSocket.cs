using System.Runtime.InteropServices;
using System.Text;
using Microsoft.Win32.SafeHandles;

namespace Heddle.LoadBalancer.Announcing.Arp;

/// <summary>
/// An AF_PACKET datagram socket for ARP on one interface, through libc: the kernel strips and adds the Ethernet header,
/// this class sees only ARP payloads. The socket and everything asked through it (the interface's index, address and
/// flags, by ioctl) belong to the network namespace of the thread that opened it, whichever thread uses it later.
/// Descriptors are <see cref="SafeHandle"/>s, so a send racing <see cref="Dispose"/> never writes to a reused descriptor.
/// </summary>
internal sealed unsafe partial class PacketSocket : IDisposable
{
    private const int AfPacket = 17;
    private const int SockDgram = 2;
    private const int SockNonBlock = 0x800;
    private const int SockCloexec = 0x80000;
    private const ushort EthPArp = 0x0806;
    private const ulong SiocGifFlags = 0x8913;
    private const ulong SiocGifHwAddr = 0x8927;
    private const ulong SiocGifIndex = 0x8933;
    private const ushort ArpHrdEther = 1;
    private const short IffUp = 0x1;
    private const short IffRunning = 0x40;
    private const byte PacketOutgoing = 4;
    private const short PollIn = 0x1;
    private const int EIntr = 4;
    private const int ENxio = 6;
    private const int EBadF = 9;
    private const int EAgain = 11;
    private const int ENoDev = 19;
    private const int IfReqSize = 40;
    private const int IfNameSize = 16;
    private const int SockaddrLlSize = 20;

    private readonly Descriptor _socket;
    private readonly Descriptor _wake; // an eventfd: written once by Stop, it ends every Wait

    private PacketSocket(string interfaceName, Descriptor socket, Descriptor wake)
    {
        InterfaceName = interfaceName;
        _socket = socket;
        _wake = wake;
    }

    public string InterfaceName { get; }

    /// <summary>The index the socket is bound to.</summary>
    public int InterfaceIndex { get; private set; }

    public MacAddress Mac { get; private set; }

    public bool IsClosed => _socket.IsClosed;

    /// <summary>Opens a socket bound to the interface's ARP traffic; throws <see cref="AnnouncerException"/> saying what is wrong.</summary>
    public static PacketSocket Open(string interfaceName)
    {
        if (interfaceName.Length == 0 || Encoding.UTF8.GetByteCount(interfaceName) >= IfNameSize
            || interfaceName.IndexOfAny(['/', '\0', ' ']) >= 0 || interfaceName is "." or "..")
        {
            throw new AnnouncerException($"'{interfaceName}' is not an interface name (1 to 15 characters, no '/' or spaces)");
        }

        // Protocol 0 receives nothing until bind names ARP and the interface, so no other interface's frame slips in.
        var descriptor = new Descriptor(socket(AfPacket, SockDgram | SockNonBlock | SockCloexec, 0));
        if (descriptor.IsInvalid)
        {
            throw new AnnouncerException($"cannot open a packet socket for ARP on {interfaceName}: {LastError()} (heddle lb needs root, or CAP_NET_RAW, for --announce arp)");
        }

        var wake = new Descriptor(eventfd(0, SockNonBlock | SockCloexec));
        var packetSocket = new PacketSocket(interfaceName, descriptor, wake);
        try
        {
            if (wake.IsInvalid)
            {
                throw new AnnouncerException($"cannot make an eventfd for the ARP socket on {interfaceName}: {LastError()}");
            }

            packetSocket.Bind();
            return packetSocket;
        }
        catch
        {
            packetSocket.Dispose();
            throw;
        }
    }

    /// <summary>Binds (again) to the interface of that name as it is now: after it was deleted and made again, its index and address are new.</summary>
    public void Bind()
    {
        var ifreq = stackalloc byte[IfReqSize];
        if (!TryIoctl(SiocGifIndex, ifreq, out var error))
        {
            throw new AnnouncerException(error is ENoDev or ENxio
                ? $"there is no interface {InterfaceName} on this host (ip link lists them): ARP is answered on the interface facing the clients"
                : $"cannot find interface {InterfaceName}: {Marshal.GetPInvokeErrorMessage(error)}");
        }

        var index = *(int*)(ifreq + IfNameSize);
        if (!TryIoctl(SiocGifHwAddr, ifreq, out error))
        {
            throw new AnnouncerException($"cannot read the hardware address of {InterfaceName}: {Marshal.GetPInvokeErrorMessage(error)}");
        }

        var type = *(ushort*)(ifreq + IfNameSize);
        var mac = MacAddress.Read(new ReadOnlySpan<byte>(ifreq + IfNameSize + 2, 6));
        if (type != ArpHrdEther || mac == MacAddress.Zero)
        {
            throw new AnnouncerException($"interface {InterfaceName} has no Ethernet address (link type {type}): ARP announcing needs an Ethernet interface");
        }

        var address = stackalloc byte[SockaddrLlSize];
        Address(address, index, MacAddress.Zero);
        if (bind(_socket, address, SockaddrLlSize) != 0)
        {
            throw new AnnouncerException($"cannot bind the ARP socket to {InterfaceName}: {LastError()}");
        }

        InterfaceIndex = index;
        Mac = mac;
    }

    /// <summary>The interface's index now (0 when there is none of that name) and whether it is up with a carrier.</summary>
    public (int Index, bool Up) Probe()
    {
        var ifreq = stackalloc byte[IfReqSize];
        if (_socket.IsClosed || !TryIoctl(SiocGifIndex, ifreq, out _))
        {
            return (0, false);
        }

        var index = *(int*)(ifreq + IfNameSize);
        var flags = TryIoctl(SiocGifFlags, ifreq, out _) ? *(short*)(ifreq + IfNameSize) : (short)0;
        return (index, (flags & IffUp) != 0 && (flags & IffRunning) != 0);
    }

    /// <summary>Sends an ARP payload to <paramref name="destination"/>; 0, or the errno.</summary>
    public int Send(ReadOnlySpan<byte> payload, MacAddress destination)
    {
        var address = stackalloc byte[SockaddrLlSize];
        Address(address, InterfaceIndex, destination);
        fixed (byte* bytes = payload)
        {
            try
            {
                return sendto(_socket, bytes, payload.Length, 0, address, SockaddrLlSize) >= 0 ? 0 : Marshal.GetLastPInvokeError();
            }
            catch (ObjectDisposedException)
            {
                return EBadF;
            }
        }
    }

    /// <summary>
    /// Takes one payload waiting on the socket: its length (the frame is cut to the buffer), or 0 when none waits (or it
    /// was empty), or a negative errno. <paramref name="outgoing"/> says it is a frame this host sent (a packet socket sees those too).
    /// </summary>
    public int TryReceive(Span<byte> buffer, out bool outgoing)
    {
        var address = stackalloc byte[SockaddrLlSize];
        var length = SockaddrLlSize;
        fixed (byte* bytes = buffer)
        {
            var received = recvfrom(_socket, bytes, buffer.Length, 0, address, &length);
            outgoing = received >= 0 && address[10] == PacketOutgoing;
            if (received >= 0)
            {
                return (int)Math.Min(received, buffer.Length);
            }

            var error = Marshal.GetLastPInvokeError();
            return error is EAgain or EIntr ? 0 : -error;
        }
    }

    /// <summary>Waits until a payload may be waiting (true), the timeout passes (true) or <see cref="Stop"/> was called (false).</summary>
    public bool Wait(TimeSpan timeout)
    {
        var socketAdded = false;
        var wakeAdded = false;
        try
        {
            _socket.DangerousAddRef(ref socketAdded);
            _wake.DangerousAddRef(ref wakeAdded);
            var fds = stackalloc PollFd[2];
            fds[0] = new PollFd { Fd = (int)_socket.DangerousGetHandle(), Events = PollIn };
            fds[1] = new PollFd { Fd = (int)_wake.DangerousGetHandle(), Events = PollIn };
            if (poll(fds, 2, (int)timeout.TotalMilliseconds) < 0 && Marshal.GetLastPInvokeError() != EIntr)
            {
                throw new InvalidOperationException($"poll on the ARP socket of {InterfaceName}: {LastError()}");
            }

            return fds[1].Revents == 0;
        }
        catch (ObjectDisposedException)
        {
            return false;
        }
        finally
        {
            if (socketAdded)
            {
                _socket.DangerousRelease();
            }

            if (wakeAdded)
            {
                _wake.DangerousRelease();
            }
        }
    }

    /// <summary>Ends the current and every later <see cref="Wait"/>.</summary>
    public void Stop()
    {
        ulong one = 1;
        try
        {
            _ = write(_wake, &one, sizeof(ulong));
        }
        catch (ObjectDisposedException)
        {
            // Already closed: nothing waits any more.
        }
    }

    public void Dispose()
    {
        Stop();
        _socket.Dispose();
        _wake.Dispose();
    }

    private bool TryIoctl(ulong request, byte* ifreq, out int error)
    {
        new Span<byte>(ifreq, IfReqSize).Clear();
        Encoding.UTF8.GetBytes(InterfaceName, new Span<byte>(ifreq, IfNameSize - 1));
        error = 0;
        try
        {
            if (ioctl(_socket, request, ifreq) == 0)
            {
                return true;
            }

            error = Marshal.GetLastPInvokeError();
        }
        catch (ObjectDisposedException)
        {
            error = EBadF;
        }

        return false;
    }

    /// <summary>Fills a struct sockaddr_ll: ARP on this interface, to this hardware address.</summary>
    private static void Address(byte* address, int index, MacAddress destination)
    {
        new Span<byte>(address, SockaddrLlSize).Clear();
        *(ushort*)address = AfPacket;
        *(ushort*)(address + 2) = (ushort)System.Net.IPAddress.HostToNetworkOrder((short)EthPArp);
        *(int*)(address + 4) = index;
        address[11] = 6; // sll_halen
        destination.Write(new Span<byte>(address + 12, 6));
    }

    private static string LastError() => Marshal.GetPInvokeErrorMessage(Marshal.GetLastPInvokeError());

    [StructLayout(LayoutKind.Sequential)]
    private struct PollFd
    {
        public int Fd;
        public short Events;
        public short Revents;
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

    [LibraryImport("libc", SetLastError = true)]
    private static partial int socket(int domain, int type, int protocol);

    [LibraryImport("libc", SetLastError = true)]
    private static partial int eventfd(uint initval, int flags);

    [LibraryImport("libc", SetLastError = true)]
    private static partial int bind(SafeHandle fd, byte* address, int length);

    [LibraryImport("libc", SetLastError = true)]
    private static partial int ioctl(SafeHandle fd, ulong request, byte* argument);

    [LibraryImport("libc", SetLastError = true)]
    private static partial nint sendto(SafeHandle fd, byte* buffer, nint length, int flags, byte* address, int addressLength);

    [LibraryImport("libc", SetLastError = true)]
    private static partial nint recvfrom(SafeHandle fd, byte* buffer, nint length, int flags, byte* address, int* addressLength);

    [LibraryImport("libc", SetLastError = true)]
    private static partial nint write(SafeHandle fd, void* buffer, nint length);

    [LibraryImport("libc", SetLastError = true)]
    private static partial int poll(PollFd* fds, ulong count, int timeout);

    [LibraryImport("libc")]
    private static partial int close(int fd);
}
