using System.Buffers.Text;
using System.Text;

namespace Heddle.LoadBalancer.L7;

/// <summary>What <see cref="HttpHead.TryParse"/> made of the bytes so far.</summary>
internal enum HeadParse
{
    Complete,
    Incomplete,
    Invalid,
    TooLarge,

    /// <summary>The HTTP/2 connection preface ("PRI * HTTP/2.0"): not HTTP/1.x, handed to the full proxy.</summary>
    Http2,
}

/// <summary>
/// What routing and framing need from one HTTP/1.x request or response head, and nothing more: where the head ends,
/// how the body is framed (Content-Length, chunked, or until close), whether the connection stays open, and whether the
/// request may be sent twice. Header values are not copied; the head is parsed in place, in the buffer it was read
/// into. What is ambiguous is refused (both Content-Length and Transfer-Encoding, two different lengths, a request
/// coding other than chunked last, a header name with space before its colon), as request smuggling hides there.
/// </summary>
internal struct HttpHead
{
    /// <summary>Kestrel's default bound on a request head (MaxRequestHeadersTotalSize, 32 KiB), used for both directions.</summary>
    public const int MaxLength = 32 * 1024;

    /// <summary>Bytes of the head, the empty line included.</summary>
    public int Length;

    /// <summary>Response status (0 for a request).</summary>
    public int Status;

    /// <summary>Content-Length, or -1 when none was given.</summary>
    public long ContentLength;

    public bool Chunked;

    /// <summary>HTTP/1.0 (else 1.1).</summary>
    public bool Http10;

    /// <summary>The sender will close after this message (Connection: close, or HTTP/1.0 without keep-alive).</summary>
    public bool Close;

    /// <summary>Request: it asks to switch protocols (Upgrade) or is CONNECT; the exchange may become a tunnel.</summary>
    public bool Upgrade;

    /// <summary>Request: HEAD, whose response has no body whatever its headers say.</summary>
    public bool IsHead;

    /// <summary>Request: GET, HEAD, OPTIONS, TRACE, PUT or DELETE, which may be sent again when a send fails unanswered.</summary>
    public bool Idempotent;

    /// <summary>Header lines not to be passed on (hop-by-hop, and X-Forwarded-For/Proto, which the proxy sets itself).</summary>
    public bool HasStrippedHeaders;

    /// <summary>The request has a body (a length above zero, or chunked).</summary>
    public readonly bool HasBody => ContentLength > 0 || Chunked;

    private static ReadOnlySpan<byte> Crlf => "\r\n"u8;

    private static ReadOnlySpan<byte> Preface => "PRI * HTTP/2.0"u8;

    /// <summary>Parses a request (<paramref name="request"/>) or response head at the start of <paramref name="data"/>.</summary>
    public static HeadParse TryParse(ReadOnlySpan<byte> data, bool request, out HttpHead head)
    {
        head = default;
        head.ContentLength = -1;
        if (request && data.Length >= 3 && data[..Math.Min(data.Length, Preface.Length)].SequenceEqual(Preface[..Math.Min(data.Length, Preface.Length)]))
        {
            return data.Length >= Preface.Length ? HeadParse.Http2 : HeadParse.Incomplete;
        }

        var end = data.IndexOf("\r\n\r\n"u8);
        if (end < 0)
        {
            return data.Length >= MaxLength ? HeadParse.TooLarge : HeadParse.Incomplete;
        }

        if (end + 4 > MaxLength)
        {
            return HeadParse.TooLarge;
        }

        head.Length = end + 4;
        var lines = data[..(end + 2)];
        var first = lines.IndexOf(Crlf);
        if (!(request ? StartLine(lines[..first], ref head) : StatusLine(lines[..first], ref head)))
        {
            return HeadParse.Invalid;
        }

        var keepAlive = false;
        var transferEncoding = false;
        for (var rest = lines[(first + 2)..]; rest.Length > 0;)
        {
            var eol = rest.IndexOf(Crlf);
            var line = rest[..eol];
            rest = rest[(eol + 2)..];
            var colon = line.IndexOf((byte)':');
            if (colon <= 0 || line[colon - 1] is (byte)' ' or (byte)'\t' || line[0] is (byte)' ' or (byte)'\t')
            {
                return HeadParse.Invalid; // no name, space before the colon, or an obsolete folded line
            }

            var name = line[..colon];
            var value = line[(colon + 1)..].Trim(" \t"u8);
            if (Ascii.EqualsIgnoreCase(name, "content-length"u8))
            {
                if (!Utf8Parser.TryParse(value, out long length, out var used) || used != value.Length || length < 0
                    || (head.ContentLength >= 0 && head.ContentLength != length))
                {
                    return HeadParse.Invalid;
                }

                head.ContentLength = length;
            }
            else if (Ascii.EqualsIgnoreCase(name, "transfer-encoding"u8))
            {
                transferEncoding = true;
                var last = value.LastIndexOf((byte)',');
                head.Chunked = Ascii.EqualsIgnoreCase(value[(last + 1)..].Trim(" \t"u8), "chunked"u8);
            }
            else if (Ascii.EqualsIgnoreCase(name, "connection"u8))
            {
                head.HasStrippedHeaders = true;
                foreach (var token in value.Split((byte)','))
                {
                    var option = value[token].Trim(" \t"u8);
                    head.Close |= Ascii.EqualsIgnoreCase(option, "close"u8);
                    keepAlive |= Ascii.EqualsIgnoreCase(option, "keep-alive"u8);
                    head.Upgrade |= request && Ascii.EqualsIgnoreCase(option, "upgrade"u8);
                }
            }
            else if (Stripped(name, request))
            {
                head.HasStrippedHeaders = true;
            }
        }

        if (transferEncoding)
        {
            if (request && (!head.Chunked || head.ContentLength >= 0))
            {
                return HeadParse.Invalid; // a request body must be framed one way, ending chunked
            }

            head.ContentLength = -1; // a response with both: Transfer-Encoding wins (RFC 9112 6.3)
        }

        head.Close |= head.Http10 && !keepAlive;
        return HeadParse.Complete;
    }

    /// <summary>Connection (checked apart), Keep-Alive, Proxy-Connection, Upgrade's partner TE, and what the proxy sets.</summary>
    private static bool Stripped(ReadOnlySpan<byte> name, bool request) =>
        Ascii.EqualsIgnoreCase(name, "keep-alive"u8) || Ascii.EqualsIgnoreCase(name, "proxy-connection"u8)
        || (request && (Ascii.EqualsIgnoreCase(name, "x-forwarded-for"u8) || Ascii.EqualsIgnoreCase(name, "x-forwarded-proto"u8)));

    /// <summary>True for a header line <see cref="Stripped"/> or Connection, which are not passed on.</summary>
    public static bool IsStripped(ReadOnlySpan<byte> line, bool request)
    {
        var colon = line.IndexOf((byte)':');
        return colon > 0 && (Ascii.EqualsIgnoreCase(line[..colon], "connection"u8) || Stripped(line[..colon], request));
    }

    private static bool StartLine(ReadOnlySpan<byte> line, ref HttpHead head)
    {
        var space = line.IndexOf((byte)' ');
        var last = line.LastIndexOf((byte)' ');
        if (space <= 0 || last <= space + 1 || !Version(line[(last + 1)..], ref head))
        {
            return false;
        }

        var method = line[..space];
        head.IsHead = method.SequenceEqual("HEAD"u8);
        head.Idempotent = head.IsHead || method.SequenceEqual("GET"u8) || method.SequenceEqual("OPTIONS"u8) || method.SequenceEqual("TRACE"u8)
            || method.SequenceEqual("PUT"u8) || method.SequenceEqual("DELETE"u8);
        head.Upgrade = method.SequenceEqual("CONNECT"u8);
        return true;
    }

    private static bool StatusLine(ReadOnlySpan<byte> line, ref HttpHead head)
    {
        if (line.Length < 12 || line[8] != (byte)' ' || !Version(line[..8], ref head)
            || !Utf8Parser.TryParse(line.Slice(9, 3), out int status, out var used) || used != 3 || status < 100)
        {
            return false;
        }

        head.Status = status;
        return true;
    }

    private static bool Version(ReadOnlySpan<byte> version, ref HttpHead head)
    {
        head.Http10 = version.SequenceEqual("HTTP/1.0"u8);
        return head.Http10 || version.SequenceEqual("HTTP/1.1"u8);
    }

    /// <summary>
    /// Writes the request head to pass on: the same lines without the stripped ones, then X-Forwarded-For (the client's
    /// address) and X-Forwarded-Proto, as YARP set them. Returns the length written, or -1 if <paramref name="output"/> is short.
    /// </summary>
    public static int WriteRequest(ReadOnlySpan<byte> head, bool strip, ReadOnlySpan<byte> forwardedFor, Span<byte> output)
    {
        var body = head[..^2]; // every line, each with its CRLF, without the empty line
        var written = 0;
        if (!strip)
        {
            if (!body.TryCopyTo(output))
            {
                return -1;
            }

            written = body.Length;
        }
        else
        {
            var first = true;
            for (var rest = body; rest.Length > 0;)
            {
                var eol = rest.IndexOf(Crlf) + 2;
                var line = rest[..eol];
                rest = rest[eol..];
                if (!first && IsStripped(line[..^2], request: true))
                {
                    continue;
                }

                first = false;
                if (!line.TryCopyTo(output[written..]))
                {
                    return -1;
                }

                written += line.Length;
            }
        }

        ReadOnlySpan<byte> tail = "X-Forwarded-Proto: http\r\n\r\n"u8;
        ReadOnlySpan<byte> xff = "X-Forwarded-For: "u8;
        if (output.Length - written < xff.Length + forwardedFor.Length + 2 + tail.Length)
        {
            return -1;
        }

        xff.CopyTo(output[written..]);
        written += xff.Length;
        forwardedFor.CopyTo(output[written..]);
        written += forwardedFor.Length;
        Crlf.CopyTo(output[written..]);
        written += 2;
        tail.CopyTo(output[written..]);
        return written + tail.Length;
    }
}
