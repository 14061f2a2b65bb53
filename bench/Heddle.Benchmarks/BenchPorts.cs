using System.Globalization;
using Heddle.Testing;

namespace Heddle.Benchmarks;

/// <summary>
/// Ports for the benchmarks' servers that must be told a port number (nginx, HAProxy, Knot and dnsmasq in their
/// configuration files, Heddle's balancer in its listeners). No port is probed by binding and giving it back: another
/// process could take it in between. A port is taken from <see cref="ReservedPorts"/> (tests/Heddle.Testing, as the
/// tests do, e.g. tests/Heddle.LoadBalancer.Tests/HostPorts.cs: at random from 30000-32767, between the agents'
/// instance ports, 20000-29999, and Linux's ephemeral range, 32768 and up, where thousands of client connections may
/// sit) and the server started on it; when the start finds it taken (<see cref="PortClashException"/>) the whole start
/// is done again on another.
/// </summary>
internal static class BenchPorts
{
    private const int Attempts = 10;

    /// <summary>
    /// Calls <paramref name="start"/> with <paramref name="count"/> ports, again with others (up to 10 tries in all)
    /// when it throws <see cref="PortClashException"/>.
    /// </summary>
    public static T Start<T>(int count, Func<int[], T> start)
    {
        for (var attempt = 1; ; attempt++)
        {
            var ports = Enumerable.Range(0, count).Select(_ => ReservedPorts.Take()).ToArray();
            try
            {
                return start(ports);
            }
            catch (PortClashException) when (attempt < Attempts)
            {
                // taken by another process: other ports
            }
            finally
            {
                foreach (var port in ports)
                {
                    ReservedPorts.Release(port); // held by the server now, or not wanted
                }
            }
        }
    }

    /// <summary>
    /// Null when every socket on <paramref name="port"/> (any address; TCP ones listening, and with
    /// <paramref name="udp"/> UDP ones too) belongs to process <paramref name="pid"/> or a child of it; else which
    /// does not. A server that started and answers may still share its port with another process: nginx, HAProxy and
    /// Heddle's L4 listener bind with SO_REUSEPORT, which lets them bind beside another socket of the same user
    /// instead of failing with "address already in use".
    /// </summary>
    public static string? Stranger(int pid, int port, bool udp)
    {
        var ours = SocketInodes(ProcessTree(pid));
        foreach (var table in udp ? new[] { "tcp", "tcp6", "udp", "udp6" } : ["tcp", "tcp6"])
        {
            var path = $"/proc/net/{table}";
            if (!File.Exists(path))
            {
                continue;
            }

            foreach (var line in File.ReadLines(path).Skip(1))
            {
                // "sl local_address rem_address st ... uid timeout inode ...": the local address is HEX-ADDRESS:HEX-PORT, state 0A is listening
                var fields = line.Split(' ', StringSplitOptions.RemoveEmptyEntries);
                if (fields.Length < 10)
                {
                    continue;
                }

                var local = fields[1];
                var localPort = int.Parse(local.AsSpan(local.LastIndexOf(':') + 1), NumberStyles.HexNumber, CultureInfo.InvariantCulture);
                if (localPort != port || (table.StartsWith("tcp", StringComparison.Ordinal) && fields[3] != "0A") || ours.Contains(fields[9]))
                {
                    continue;
                }

                return $"a {table} socket on {local} (inode {fields[9]}) belongs to another process";
            }
        }

        return null;
    }

    /// <summary><paramref name="pid"/> and its descendants (nginx's workers), from /proc/PID/stat.</summary>
    private static HashSet<int> ProcessTree(int pid)
    {
        var parents = new Dictionary<int, int>();
        foreach (var dir in Directory.EnumerateDirectories("/proc"))
        {
            if (!int.TryParse(Path.GetFileName(dir), out var candidate))
            {
                continue;
            }

            try
            {
                var stat = File.ReadAllText(Path.Combine(dir, "stat"));
                parents[candidate] = int.Parse(stat[(stat.LastIndexOf(')') + 2)..].Split(' ')[1], CultureInfo.InvariantCulture);
            }
            catch (IOException)
            {
                // the process ended meanwhile
            }
        }

        var tree = new HashSet<int> { pid };
        for (var grew = true; grew;)
        {
            grew = false;
            foreach (var (child, parent) in parents)
            {
                grew |= tree.Contains(parent) && tree.Add(child);
            }
        }

        return tree;
    }

    /// <summary>The inodes of the sockets the processes hold open ("socket:[INODE]" links in /proc/PID/fd).</summary>
    private static HashSet<string> SocketInodes(IEnumerable<int> pids)
    {
        var inodes = new HashSet<string>(StringComparer.Ordinal);
        foreach (var pid in pids)
        {
            try
            {
                foreach (var fd in Directory.EnumerateFileSystemEntries($"/proc/{pid}/fd"))
                {
                    try
                    {
                        if (new FileInfo(fd).LinkTarget is { } target && target.StartsWith("socket:[", StringComparison.Ordinal))
                        {
                            inodes.Add(target["socket:[".Length..^1]);
                        }
                    }
                    catch (IOException)
                    {
                        // closed meanwhile
                    }
                }
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                // ended meanwhile, or not ours to read
            }
        }

        return inodes;
    }
}

/// <summary>A server could not have the port it was given: it failed to bind ("address already in use"), or shares it with another process.</summary>
internal sealed class PortClashException(string message) : InvalidOperationException(message);
