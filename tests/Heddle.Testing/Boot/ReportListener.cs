using System.Collections.Concurrent;
using System.Net;
using System.Net.Sockets;
using System.Text;
using Heddle.Testing.Hosts;

namespace Heddle.Testing.Boot;

/// <summary>
/// Where a test machine's init reports what it was given: an HTTP listener on a port the OS chooses at a test host's
/// address (its socket made in the host's namespace), keeping the body of every POST. Just enough HTTP/1.x for busybox
/// wget: one request per connection, a Content-Length body of at most 64 KiB, answered 200 with no body.
/// </summary>
public sealed class ReportListener : IAsyncDisposable
{
    private readonly TcpListener _listener;
    private readonly CancellationTokenSource _stop = new();
    private readonly Task _accepting;

    private ReportListener(TcpListener listener, IPAddress address)
    {
        _listener = listener;
        Url = new Uri($"http://{address}:{((IPEndPoint)listener.LocalEndpoint).Port}/report");
        _accepting = AcceptAsync();
    }

    public Uri Url { get; }

    /// <summary>Every report so far, with when it came.</summary>
    public ConcurrentQueue<(DateTimeOffset Time, string Body)> Reports { get; } = new();

    public static async Task<ReportListener> StartAsync(TestHost host)
    {
        var listener = await host.InNamespaceAsync(() =>
        {
            var l = new TcpListener(host.Address, 0);
            l.Start();
            return l;
        });
        return new ReportListener(listener, host.Address);
    }

    private async Task AcceptAsync()
    {
        while (!_stop.IsCancellationRequested)
        {
            TcpClient client;
            try
            {
                client = await _listener.AcceptTcpClientAsync(_stop.Token);
            }
            catch (Exception e) when (e is OperationCanceledException or SocketException or ObjectDisposedException)
            {
                return;
            }

            _ = Task.Run(() => ServeAsync(client));
        }
    }

    private async Task ServeAsync(TcpClient client)
    {
        using (client)
        {
            try
            {
                using var deadline = CancellationTokenSource.CreateLinkedTokenSource(_stop.Token);
                deadline.CancelAfter(TimeSpan.FromSeconds(10));
                var stream = client.GetStream();
                var buffer = new byte[65536];
                var length = 0;
                int headerEnd;
                while ((headerEnd = Encoding.ASCII.GetString(buffer, 0, length).IndexOf("\r\n\r\n", StringComparison.Ordinal)) < 0)
                {
                    var read = await stream.ReadAsync(buffer.AsMemory(length), deadline.Token);
                    if (read == 0 || (length += read) == buffer.Length)
                    {
                        return;
                    }
                }

                var headers = Encoding.ASCII.GetString(buffer, 0, headerEnd);
                var contentLength = headers.Split("\r\n").Select(h => h.Split(':', 2)).Where(h => h.Length == 2 && h[0].Trim().Equals("Content-Length", StringComparison.OrdinalIgnoreCase))
                    .Select(h => int.Parse(h[1].Trim(), System.Globalization.CultureInfo.InvariantCulture)).FirstOrDefault();
                var bodyStart = headerEnd + 4;
                while (length - bodyStart < contentLength && length < buffer.Length)
                {
                    var read = await stream.ReadAsync(buffer.AsMemory(length), deadline.Token);
                    if (read == 0)
                    {
                        break;
                    }

                    length += read;
                }

                Reports.Enqueue((DateTimeOffset.UtcNow, Encoding.UTF8.GetString(buffer, bodyStart, Math.Min(contentLength, length - bodyStart))));
                await stream.WriteAsync("HTTP/1.0 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"u8.ToArray(), deadline.Token);
            }
            catch (Exception e) when (e is IOException or OperationCanceledException or SocketException or FormatException)
            {
            }
        }
    }

    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync();
        _listener.Stop();
        await _accepting;
        _stop.Dispose();
    }
}
