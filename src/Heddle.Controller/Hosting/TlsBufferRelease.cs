using System.Net.Security;
using System.Reflection;
using System.Runtime.InteropServices;

namespace Heddle.Controller.Hosting;

/// <summary>
/// Lets OpenSSL free a TLS connection's record buffers while it has nothing to read or write
/// (<c>SSL_MODE_RELEASE_BUFFERS</c>). .NET does not set that mode, so each connection keeps a read and a write buffer of
/// about 17 KB each for as long as it lives. An agent's stream is idle nearly all its life (its heartbeats go as
/// datagrams), and the controller holds one per node: at 5,000 nodes OpenSSL held 360 MB, 72 KB a connection
/// (glibc's <c>malloc_stats</c> of an idle controller, 2026-12-07).
/// <para>
/// SslStream does not expose its OpenSSL handle. It is read from the stream's private <c>_securityContext</c> (a
/// SafeHandle over the <c>SSL*</c>, .NET 8 to 10); a runtime without that field leaves connections as they were, and
/// <see cref="Supported"/> says so (the controller logs it once, and a test fails, so a runtime upgrade cannot lose this
/// silently). The mode is only a memory policy: a connection behaves the same with it or without it.
/// </para>
/// </summary>
internal static class TlsBufferRelease
{
    private const int SslCtrlMode = 33; // SSL_CTRL_MODE: ORs the argument into the connection's mode, returns the mode
    private const long SslModeReleaseBuffers = 0x10;

    private static readonly FieldInfo? SecurityContext =
        typeof(SslStream).GetField("_securityContext", BindingFlags.NonPublic | BindingFlags.Instance) is { } field
        && typeof(SafeHandle).IsAssignableFrom(field.FieldType)
            ? field
            : null;

    /// <summary>Whether this runtime's SslStream is one whose OpenSSL handle can be reached (Linux, the field present).</summary>
    public static bool Supported => SecurityContext is not null && OperatingSystem.IsLinux();

    /// <summary>
    /// Sets the mode on an authenticated stream, before anything reads or writes it. False when it cannot be reached
    /// (see <see cref="Supported"/>) or OpenSSL could not be called.
    /// </summary>
    public static bool TryApply(SslStream stream) => Mode(stream, SslModeReleaseBuffers) is { } mode && (mode & SslModeReleaseBuffers) != 0;

    /// <summary>The connection's OpenSSL mode after ORing <paramref name="add"/> into it (0 adds nothing); null when unreachable.</summary>
    internal static long? Mode(SslStream stream, long add)
    {
        if (!Supported || SecurityContext!.GetValue(stream) is not SafeHandle { IsInvalid: false, IsClosed: false } handle)
        {
            return null;
        }

        var added = false;
        try
        {
            handle.DangerousAddRef(ref added);
            return SslCtrl(handle.DangerousGetHandle(), SslCtrlMode, add, IntPtr.Zero);
        }
        catch (Exception e) when (e is DllNotFoundException or EntryPointNotFoundException or ObjectDisposedException)
        {
            return null;
        }
        finally
        {
            if (added)
            {
                handle.DangerousRelease();
            }
        }
    }

    // The libssl the runtime itself loaded (the same soname resolves to the same library in the process).
    [DllImport("libssl.so.3", EntryPoint = "SSL_ctrl")]
    private static extern long SslCtrl(IntPtr ssl, int command, long argument, IntPtr pointer);
}
