using System.Buffers;
using System.Net.Sockets;

namespace Heddle.LoadBalancer.L4;

/// <summary>
/// One client connection relayed to one backend: bytes copied both ways with pooled buffers; when one side ends
/// its sending, the other side's sending is shut down too (half-close); when either fails, both are closed, so a
/// backend that dies never leaves its client hanging.
/// </summary>
internal sealed class TcpRelay(Socket client, Socket backend, string backendId, int bufferSize)
{
    private int _closed;

    public string BackendId { get; } = backendId;

    public async Task RunAsync()
    {
        try
        {
            await Task.WhenAll(PumpAsync(client, backend), PumpAsync(backend, client));
        }
        finally
        {
            Close();
        }
    }

    /// <summary>Ends the relay now (drain timeout, shutdown): both sockets are closed.</summary>
    public void Close()
    {
        if (Interlocked.Exchange(ref _closed, 1) == 0)
        {
            client.Dispose();
            backend.Dispose();
        }
    }

    private async Task PumpAsync(Socket from, Socket to)
    {
        var buffer = ArrayPool<byte>.Shared.Rent(bufferSize);
        try
        {
            while (true)
            {
                var read = await from.ReceiveAsync(buffer.AsMemory(), SocketFlags.None);
                if (read == 0)
                {
                    to.Shutdown(SocketShutdown.Send);
                    return;
                }

                var sent = 0;
                while (sent < read)
                {
                    sent += await to.SendAsync(buffer.AsMemory(sent, read - sent), SocketFlags.None);
                }
            }
        }
        catch (Exception e) when (e is SocketException or ObjectDisposedException)
        {
            // One side failed: the whole connection ends, with a reset towards the client when it can be sent.
            Abort(client);
            Close();
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }
    }

    private static void Abort(Socket socket)
    {
        try
        {
            socket.LingerState = new LingerOption(true, 0);
        }
        catch (Exception e) when (e is SocketException or ObjectDisposedException)
        {
        }
    }
}
