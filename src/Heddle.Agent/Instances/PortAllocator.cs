using System.Net;
using System.Net.Sockets;

namespace Heddle.Agent.Instances;

/// <summary>Hands out ports from the node's range: never one already given, never one something else is bound to.</summary>
public sealed class PortAllocator
{
    private readonly string _address;
    private readonly int _start;
    private readonly int _end;
    private readonly HashSet<int> _taken = [];
    private readonly Lock _lock = new();
    private int _next;

    public PortAllocator(string address, int start, int end)
    {
        (_address, _start, _end, _next) = (address, start, end, start);
    }

    public void Reserve(IEnumerable<int> ports)
    {
        lock (_lock)
        {
            _taken.UnionWith(ports);
        }
    }

    public void Release(IEnumerable<int> ports)
    {
        lock (_lock)
        {
            _taken.ExceptWith(ports);
        }
    }

    public int Allocate()
    {
        lock (_lock)
        {
            var size = _end - _start + 1;
            for (var tried = 0; tried < size; tried++)
            {
                var port = _next;
                _next = _next == _end ? _start : _next + 1;
                if (!_taken.Contains(port) && IsFree(port))
                {
                    _taken.Add(port);
                    return port;
                }
            }

            throw new InvalidOperationException($"no free port left in {_start}-{_end} on {_address}");
        }
    }

    private bool IsFree(int port)
    {
        try
        {
            using var probe = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
            probe.Bind(new IPEndPoint(IPAddress.Parse(_address), port));
            return true;
        }
        catch (SocketException)
        {
            return false;
        }
    }
}
