using System.Buffers;
using Heddle.LoadBalancer.L4.Linux;

namespace Heddle.LoadBalancer.L7;

/// <summary>
/// Bytes waiting in a pooled buffer, rented when the first arrive and returned when the last have gone: what a side
/// could not take yet, a head still arriving, the next request already read. A connection at rest holds none.
/// </summary>
internal unsafe struct ByteQueue
{
    private byte[]? _buffer;
    private int _offset;

    public int Count { get; private set; }

    /// <summary>Nothing waits (no buffer is held).</summary>
    public readonly bool IsEmpty => _buffer is null;

    /// <summary>The bytes waiting; valid until the queue next changes.</summary>
    public readonly Span<byte> Span => _buffer.AsSpan(_offset, Count);

    public void Add(ReadOnlySpan<byte> data)
    {
        if (data.IsEmpty)
        {
            return;
        }

        if (_buffer is null)
        {
            _buffer = ArrayPool<byte>.Shared.Rent(Math.Max(data.Length, 1024));
            _offset = Count = 0;
        }
        else if (_buffer.Length - _offset - Count < data.Length)
        {
            var target = _buffer.Length >= Count + data.Length ? _buffer : ArrayPool<byte>.Shared.Rent(Count + data.Length);
            _buffer.AsSpan(_offset, Count).CopyTo(target);
            if (target != _buffer)
            {
                ArrayPool<byte>.Shared.Return(_buffer);
                _buffer = target;
            }

            _offset = 0;
        }

        data.CopyTo(_buffer.AsSpan(_offset + Count));
        Count += data.Length;
    }

    /// <summary>Takes <paramref name="count"/> bytes off the front (gone, or used).</summary>
    public void Drop(int count)
    {
        _offset += count;
        Count -= count;
        if (Count == 0)
        {
            Clear();
        }
    }

    public void Clear()
    {
        if (_buffer is not null)
        {
            ArrayPool<byte>.Shared.Return(_buffer);
            _buffer = null;
        }

        _offset = Count = 0;
    }

    /// <summary>Sends what waits to <paramref name="fd"/>: 1 when all of it has gone, 0 when some is still waiting, -1 when the send failed.</summary>
    public int SendTo(int fd)
    {
        nint written;
        fixed (byte* bytes = _buffer)
        {
            written = Libc.send(fd, bytes + _offset, Count, Libc.MsgNoSignal);
        }

        if (written < 0)
        {
            return Libc.Errno == Libc.EAgain ? 0 : -1;
        }

        Drop((int)written);
        return Count == 0 ? 1 : 0;
    }
}
