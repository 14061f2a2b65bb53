using System.Text.Json;

namespace Heddle.Agent.Isolation;

/// <summary>The uid and gid an instance runs as: its service's own on this node.</summary>
public sealed record Identity(int Uid, int Gid);

/// <summary>
/// One uid (and gid of the same number) per service on this node, from a range no login uses (default
/// 200000–265535), so instances of two services never share a uid and can neither signal nor read each other.
/// Recorded in the agent's state folder, so a restarted agent gives a service the uid its running instances and
/// files already have; released when the service has nothing left on the node.
/// </summary>
public sealed class ServiceIdentities
{
    private readonly string _file;
    private readonly int _first;
    private readonly int _last;
    private readonly Dictionary<string, int> _assigned;
    private readonly Lock _lock = new();

    public ServiceIdentities(string file, int first, int last)
    {
        if (first < 1000 || last < first)
        {
            throw new ArgumentException($"the uid range {first}-{last} is not a range above the system's own uids (start at 1000 or more)");
        }

        _file = file;
        _first = first;
        _last = last;
        _assigned = File.Exists(file) ? JsonSerializer.Deserialize<Dictionary<string, int>>(File.ReadAllText(file)) ?? [] : [];
    }

    public Identity For(string service)
    {
        lock (_lock)
        {
            if (!_assigned.TryGetValue(service, out var uid))
            {
                var taken = _assigned.Values.ToHashSet();
                uid = Enumerable.Range(_first, _last - _first + 1).FirstOrDefault(u => !taken.Contains(u));
                if (uid == 0)
                {
                    throw new InvalidOperationException($"every uid of {_first}-{_last} is taken by a service on this node; widen --uid-range");
                }

                _assigned[service] = uid;
                Save();
            }

            return new Identity(uid, uid);
        }
    }

    /// <summary>Forgets the uid of every service not in <paramref name="present"/> (nothing of it is left on the node).</summary>
    public void ReleaseAllBut(IReadOnlySet<string> present)
    {
        lock (_lock)
        {
            var gone = _assigned.Keys.Where(s => !present.Contains(s)).ToList();
            if (gone.Count == 0)
            {
                return;
            }

            gone.ForEach(s => _assigned.Remove(s));
            Save();
        }
    }

    private void Save()
    {
        File.WriteAllText(_file + ".partial", JsonSerializer.Serialize(_assigned));
        File.Move(_file + ".partial", _file, overwrite: true);
    }
}
