using System.Runtime.InteropServices;

namespace Heddle.LoadBalancer.L4.Linux;

/// <summary>
/// The Linux system calls the L4 event loop makes directly: epoll, non-blocking sockets, eventfd. Values are the
/// kernel's (the same on x86-64 and arm64); <c>epoll_event</c> is packed to 12 bytes on x86-64 only, so it is read
/// and written at offsets (<see cref="EventSize"/>, <see cref="EventDataOffset"/>).
/// </summary>
internal static unsafe partial class Libc
{
    public const int EpollCloexec = 0x80000;
    public const int EpollCtlAdd = 1;
    public const int EpollCtlDel = 2;
    public const uint EpollIn = 0x001;
    public const uint EpollOut = 0x004;
    public const uint EpollErr = 0x008;
    public const uint EpollHup = 0x010;
    public const uint EpollRdHup = 0x2000;
    public const uint EpollEt = 1u << 31;

    public const int AfInet = 2;
    public const int AfInet6 = 10;
    public const int SockStream = 1;
    public const int SockNonBlock = 0x800;
    public const int SockCloexec = 0x80000;
    public const int SolSocket = 1;
    public const int SoError = 4;
    public const int SoLinger = 13;
    public const int SoReusePort = 15;
    public const int IpProtoTcp = 6;
    public const int TcpNoDelay = 1;
    public const int MsgNoSignal = 0x4000;
    public const int MsgPeek = 0x2;
    public const int MsgDontWait = 0x40;
    public const int ShutWrite = 1;
    public const int EfdNonBlock = 0x800;
    public const int EfdCloexec = 0x80000;

    public const int EIntr = 4;
    public const int EAgain = 11;
    public const int EInProgress = 115;
    public const int ENoMem = 12;
    public const int ENFile = 23;
    public const int EMFile = 24;
    public const int ENoBufs = 105;

    public static readonly int EventSize = RuntimeInformation.ProcessArchitecture == Architecture.X64 ? 12 : 16;
    public static readonly int EventDataOffset = RuntimeInformation.ProcessArchitecture == Architecture.X64 ? 4 : 8;

    [LibraryImport("libc", SetLastError = true)]
    public static partial int epoll_create1(int flags);

    [LibraryImport("libc", SetLastError = true)]
    public static partial int epoll_ctl(int epfd, int op, int fd, byte* ev);

    [LibraryImport("libc", SetLastError = true)]
    public static partial int epoll_wait(int epfd, byte* events, int maxEvents, int timeout);

    [LibraryImport("libc", SetLastError = true)]
    public static partial int eventfd(uint initval, int flags);

    [LibraryImport("libc", SetLastError = true)]
    public static partial int socket(int domain, int type, int protocol);

    [LibraryImport("libc", SetLastError = true)]
    public static partial int connect(int fd, byte* address, int length);

    [LibraryImport("libc", SetLastError = true)]
    public static partial int accept4(int fd, byte* address, int* length, int flags);

    [LibraryImport("libc", SetLastError = true)]
    public static partial nint recv(int fd, byte* buffer, nint length, int flags);

    [LibraryImport("libc", SetLastError = true)]
    public static partial nint send(int fd, byte* buffer, nint length, int flags);

    [LibraryImport("libc", SetLastError = true)]
    public static partial nint read(int fd, byte* buffer, nint length);

    [LibraryImport("libc", SetLastError = true)]
    public static partial nint write(int fd, byte* buffer, nint length);

    [LibraryImport("libc", SetLastError = true)]
    public static partial int shutdown(int fd, int how);

    [LibraryImport("libc", SetLastError = true)]
    public static partial int close(int fd);

    [LibraryImport("libc", SetLastError = true)]
    public static partial int setsockopt(int fd, int level, int name, void* value, int length);

    [LibraryImport("libc", SetLastError = true)]
    public static partial int getsockopt(int fd, int level, int name, void* value, int* length);

    public static int Errno => Marshal.GetLastPInvokeError();

    /// <summary>Adds <paramref name="fd"/> to the epoll set with <paramref name="events"/> and <paramref name="data"/>.</summary>
    public static int EpollAdd(int epoll, int fd, uint events, ulong data)
    {
        var ev = stackalloc byte[16];
        *(uint*)ev = events;
        *(ulong*)(ev + EventDataOffset) = data;
        return epoll_ctl(epoll, EpollCtlAdd, fd, ev);
    }

    /// <summary>How a non-blocking connect started (<see cref="StartConnect"/>).</summary>
    public enum ConnectStart
    {
        /// <summary>No socket could be made (out of descriptors).</summary>
        NoSocket,

        /// <summary>The connect failed at once; the socket is closed.</summary>
        Failed,

        InProgress,

        Connected,
    }

    /// <summary>Makes a non-blocking TCP socket with Nagle off and starts its connect to <paramref name="address"/> (a sockaddr).</summary>
    public static ConnectStart StartConnect(byte[] address, out int fd)
    {
        fd = socket(address[0], SockStream | SockNonBlock | SockCloexec, 0);
        if (fd < 0)
        {
            return ConnectStart.NoSocket;
        }

        SetNoDelay(fd);
        int result;
        fixed (byte* sockaddr = address)
        {
            result = connect(fd, sockaddr, address.Length);
        }

        if (result < 0 && Errno != EInProgress)
        {
            close(fd);
            fd = -1;
            return ConnectStart.Failed;
        }

        return result == 0 ? ConnectStart.Connected : ConnectStart.InProgress;
    }

    public static void SetNoDelay(int fd)
    {
        var on = 1;
        setsockopt(fd, IpProtoTcp, TcpNoDelay, &on, sizeof(int));
    }

    /// <summary>Closes a socket with a reset (linger on, zero seconds): the peer sees the connection refused or cut, not a hang.</summary>
    public static void CloseWithReset(int fd)
    {
        var linger = stackalloc int[2] { 1, 0 };
        setsockopt(fd, SolSocket, SoLinger, linger, 2 * sizeof(int));
        close(fd);
    }

    /// <summary>The pending error of a socket (SO_ERROR), which a non-blocking connect reports its outcome through.</summary>
    public static int SocketError(int fd)
    {
        int error = 0, length = sizeof(int);
        return getsockopt(fd, SolSocket, SoError, &error, &length) < 0 ? Errno : error;
    }

    /// <summary>The kernel's sockaddr_in or sockaddr_in6 for <paramref name="endpoint"/>.</summary>
    public static byte[] SocketAddress(System.Net.IPEndPoint endpoint)
    {
        var v6 = endpoint.AddressFamily == System.Net.Sockets.AddressFamily.InterNetworkV6;
        var address = new byte[v6 ? 28 : 16];
        address[0] = (byte)(v6 ? AfInet6 : AfInet); // sa_family is host order (little-endian on x86-64 and arm64)
        address[2] = (byte)(endpoint.Port >> 8);
        address[3] = (byte)endpoint.Port;
        endpoint.Address.TryWriteBytes(address.AsSpan(v6 ? 8 : 4), out _);
        if (v6)
        {
            System.Buffers.Binary.BinaryPrimitives.WriteUInt32LittleEndian(address.AsSpan(24), (uint)endpoint.Address.ScopeId);
        }

        return address;
    }
}
