using System.Text;

namespace Heddle.LoadBalancer.L7;

/// <summary>
/// The responses the proxy makes itself, encoded once per listener: 503 with its problem body when no instance is
/// Ready, 502 when every send failed unanswered, 504 when the instance stayed silent, 400 and 431 for heads it cannot
/// pass on, 408 for a head that did not arrive whole in time. Each in two forms: keeping the connection, and closing it.
/// </summary>
internal sealed class HttpAnswers
{
    public HttpAnswers(string service, int port)
    {
        var problem = $$"""{"type":"https://heddle.dev/problems/no-healthy-instance","title":"Service Unavailable","status":503,"detail":"service '{{service}}' has no Ready instance for port {{port}}"}""";
        NoBackend = Make("503 Service Unavailable", "application/problem+json", problem);
        BadGateway = Make("502 Bad Gateway", null, string.Empty);
        GatewayTimeout = Make("504 Gateway Timeout", null, string.Empty);
        BadRequest = Make("400 Bad Request", null, string.Empty);
        HeadTooLarge = Make("431 Request Header Fields Too Large", null, string.Empty);
        RequestTimeout = Make("408 Request Timeout", null, string.Empty);
    }

    public (byte[] Open, byte[] Close) NoBackend { get; }

    public (byte[] Open, byte[] Close) BadGateway { get; }

    public (byte[] Open, byte[] Close) GatewayTimeout { get; }

    public (byte[] Open, byte[] Close) BadRequest { get; }

    public (byte[] Open, byte[] Close) HeadTooLarge { get; }

    public (byte[] Open, byte[] Close) RequestTimeout { get; }

    private static (byte[], byte[]) Make(string status, string? contentType, string body)
    {
        var type = contentType is null ? string.Empty : $"Content-Type: {contentType}\r\n";
        var length = Encoding.UTF8.GetByteCount(body);
        return (Encoding.UTF8.GetBytes($"HTTP/1.1 {status}\r\n{type}Content-Length: {length}\r\n\r\n{body}"),
            Encoding.UTF8.GetBytes($"HTTP/1.1 {status}\r\n{type}Content-Length: {length}\r\nConnection: close\r\n\r\n{body}"));
    }
}
