namespace Heddle.Contracts.Api;

/// <summary>
/// How long a client of the API waits (every wait has a bound). The CLI sets both from its global --request-timeout
/// (default 10 s). Streaming calls (events and logs followed, the data plane's feeds) are bounded until their answer
/// starts; what follows is a stream that may be quiet for as long as nothing happens.
/// </summary>
public sealed record ApiTimeouts
{
    public static readonly ApiTimeouts Default = new();

    /// <summary>
    /// The TCP handshake with one controller. A host that has not answered a SYN within this is taken as gone and the
    /// next controller is tried: the kernel of a live host answers at once however busy its controller is (that is
    /// what <see cref="Connect"/> is for), while a host dropped from the network never answers. Default 0.5 s (a
    /// SYN lost on a bad link is sent again only after 1 s, and by then the next controller has been tried).
    /// </summary>
    public TimeSpan TcpConnect { get; init; } = TimeSpan.FromMilliseconds(500);

    /// <summary>
    /// The head start of one controller in a read (GET): when its TCP handshake has not been answered within this, the
    /// next controller is asked as well and the first answer is taken, so a read costs a host that is gone this rather
    /// than <see cref="TcpConnect"/>. Default 250 ms (RFC 8305's connection attempt delay; a live host answers a SYN in
    /// a round trip).
    /// </summary>
    public TimeSpan NextAfter { get; init; } = TimeSpan.FromMilliseconds(250);

    /// <summary>Connecting to one controller: TCP and the TLS handshake. Default 10 s.</summary>
    public TimeSpan Connect { get; init; } = TimeSpan.FromSeconds(10);

    /// <summary>
    /// Waiting for one controller's answer: the request sent and the answer's headers read, then (for an answer read
    /// whole) its body. An upload is bounded by this while its body is sent (between two blocks) and, after its last
    /// byte, by this plus one second per 8 MiB (the controller checks the hash and copies it to a second controller
    /// before it answers). Default 10 s.
    /// </summary>
    public TimeSpan Answer { get; init; } = TimeSpan.FromSeconds(10);

    /// <summary>Both bounds set to <paramref name="timeout"/> (and the TCP handshake's to 0.5 s, or less when that is less).</summary>
    public static ApiTimeouts Of(TimeSpan timeout) => new() { Connect = timeout, Answer = timeout, TcpConnect = timeout < TimeSpan.FromMilliseconds(500) ? timeout : TimeSpan.FromMilliseconds(500),
        NextAfter = timeout < TimeSpan.FromMilliseconds(250) ? timeout : TimeSpan.FromMilliseconds(250) };

    internal static string Format(TimeSpan value) => value.TotalSeconds >= 1 ? $"{value.TotalSeconds:0.#} s" : $"{value.TotalMilliseconds:0} ms";
}

/// <summary>
/// The answer deadline of one request whose body takes a while to send (an upload): <see cref="ControllerFailover"/> arms
/// it for each attempt, and the body's stream pushes it back at each block it hands over.
/// </summary>
internal sealed class AnswerDeadline(TimeSpan whileSending, TimeSpan afterBody)
{
    public static readonly HttpRequestOptionsKey<AnswerDeadline> Key = new("heddle.answer-deadline");

    private CancellationTokenSource? _attempt;

    public TimeSpan AfterBody => afterBody;

    public void Arm(CancellationTokenSource attempt)
    {
        Volatile.Write(ref _attempt, attempt);
        Touch();
    }

    public void Touch() => TryCancelAfter(whileSending);

    public void BodySent() => TryCancelAfter(afterBody);

    private void TryCancelAfter(TimeSpan delay)
    {
        try
        {
            Volatile.Read(ref _attempt)?.CancelAfter(delay);
        }
        catch (ObjectDisposedException)
        {
            // The attempt is over; nothing to push back.
        }
    }
}

/// <summary>A read-only stream over an upload's file that pushes its request's answer deadline back at each block read.</summary>
internal sealed class DeadlineStream(Stream inner, AnswerDeadline deadline) : Stream
{
    public override bool CanRead => true;

    public override bool CanSeek => inner.CanSeek;

    public override bool CanWrite => false;

    public override long Length => inner.Length;

    public override long Position { get => inner.Position; set => inner.Position = value; }

    public override int Read(byte[] buffer, int offset, int count) => After(inner.Read(buffer, offset, count));

    public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default) =>
        After(await inner.ReadAsync(buffer, cancellationToken));

    public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
        ReadAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

    private int After(int read)
    {
        if (read > 0)
        {
            deadline.Touch();
        }
        else
        {
            deadline.BodySent();
        }

        return read;
    }

    public override long Seek(long offset, SeekOrigin origin) => inner.Seek(offset, origin);

    public override void Flush()
    {
    }

    public override void SetLength(long value) => throw new NotSupportedException();

    public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();

    protected override void Dispose(bool disposing)
    {
        if (disposing)
        {
            inner.Dispose();
        }

        base.Dispose(disposing);
    }
}
