namespace Heddle.LoadBalancer.L7;

/// <summary>
/// Where one message body ends, found by watching its bytes go by (they are passed on unchanged): a count down for
/// Content-Length, a small state machine for chunked (sizes, extensions, data, trailers), or never for a response
/// that ends when its connection closes.
/// </summary>
internal struct BodyFraming
{
    private enum State : byte
    {
        Size,
        Extension,
        SizeEnd,
        Data,
        DataCr,
        DataLf,
        TrailerStart,
        Trailer,
        TrailerEnd,
        LastLf,
        Done,
    }

    private long _remaining; // Content-Length left, or the current chunk's data left
    private bool _chunked;
    private bool _untilClose;
    private State _state;
    private int _sizeDigits;

    public static BodyFraming Length(long length) => new() { _remaining = length, _state = length == 0 ? State.Done : State.Data };

    public static BodyFraming Chunks() => new() { _chunked = true, _state = State.Size };

    public static BodyFraming UntilClose() => new() { _untilClose = true, _state = State.Data };

    public static BodyFraming None => new() { _state = State.Done };

    public readonly bool Done => _state == State.Done;

    /// <summary>The body ends only when the sender closes (a response without length or chunks).</summary>
    public readonly bool EndsWithClose => _untilClose;

    /// <summary>How many of <paramref name="data"/> belong to this body (all of them unless it ends within); -1 if the chunk framing is broken.</summary>
    public int Consume(ReadOnlySpan<byte> data)
    {
        if (_untilClose)
        {
            return data.Length;
        }

        if (!_chunked)
        {
            var take = (int)Math.Min(_remaining, data.Length);
            _remaining -= take;
            if (_remaining == 0)
            {
                _state = State.Done;
            }

            return take;
        }

        var i = 0;
        while (i < data.Length && _state != State.Done)
        {
            var b = data[i];
            switch (_state)
            {
                case State.Data:
                    var take = (int)Math.Min(_remaining, data.Length - i);
                    _remaining -= take;
                    i += take;
                    if (_remaining == 0)
                    {
                        _state = State.DataCr;
                    }

                    continue;
                case State.Size:
                    var digit = HexValue(b);
                    if (digit >= 0)
                    {
                        if (++_sizeDigits > 15)
                        {
                            return -1; // no chunk is that large
                        }

                        _remaining = (_remaining << 4) | (uint)digit;
                    }
                    else if (_sizeDigits == 0)
                    {
                        return -1;
                    }
                    else if (b == (byte)'\r')
                    {
                        _state = State.SizeEnd;
                    }
                    else if (b is (byte)';' or (byte)' ' or (byte)'\t')
                    {
                        _state = State.Extension;
                    }
                    else
                    {
                        return -1;
                    }

                    break;
                case State.Extension:
                    if (b == (byte)'\r')
                    {
                        _state = State.SizeEnd;
                    }

                    break;
                case State.SizeEnd:
                    if (b != (byte)'\n')
                    {
                        return -1;
                    }

                    _sizeDigits = 0;
                    _state = _remaining == 0 ? State.TrailerStart : State.Data;
                    break;
                case State.DataCr:
                    if (b != (byte)'\r')
                    {
                        return -1;
                    }

                    _state = State.DataLf;
                    break;
                case State.DataLf:
                    if (b != (byte)'\n')
                    {
                        return -1;
                    }

                    _state = State.Size;
                    break;
                case State.TrailerStart:
                    _state = b == (byte)'\r' ? State.LastLf : State.Trailer;
                    break;
                case State.Trailer:
                    if (b == (byte)'\r')
                    {
                        _state = State.TrailerEnd;
                    }

                    break;
                case State.TrailerEnd:
                    _state = b == (byte)'\n' ? State.TrailerStart : State.Trailer;
                    break;
                case State.LastLf:
                    if (b != (byte)'\n')
                    {
                        return -1;
                    }

                    _state = State.Done;
                    break;
            }

            i++;
        }

        return i;
    }

    private static int HexValue(byte b) => b switch
    {
        >= (byte)'0' and <= (byte)'9' => b - '0',
        >= (byte)'a' and <= (byte)'f' => b - 'a' + 10,
        >= (byte)'A' and <= (byte)'F' => b - 'A' + 10,
        _ => -1,
    };
}
