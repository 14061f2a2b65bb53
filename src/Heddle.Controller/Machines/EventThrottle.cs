namespace Heddle.Controller.Machines;

/// <summary>
/// Decides whether an event about a key (a MAC) is recorded now, so a flood (a broken card asking for DHCP every second,
/// or someone spraying made-up MACs) cannot fill the event log: at most one event per key per <see cref="PerKey"/>, and at
/// most <see cref="Burst"/> events over all keys per <see cref="Window"/>. What was held back is counted and told with the
/// next event that is recorded. Remembers at most <see cref="MaxKeys"/> keys. Pure apart from the lock: the caller gives
/// the time.
/// </summary>
public sealed class EventThrottle(TimeSpan perKey, int burst, TimeSpan window, int maxKeys = 4096)
{
    private readonly Dictionary<string, DateTimeOffset> _last = new(StringComparer.Ordinal);
    private readonly Queue<DateTimeOffset> _recent = new();
    private readonly object _lock = new();
    private long _held;

    public TimeSpan PerKey { get; } = perKey;

    public int Burst { get; } = burst;

    public TimeSpan Window { get; } = window;

    public int MaxKeys { get; } = maxKeys;

    /// <summary>True when an event about <paramref name="key"/> is to be recorded at <paramref name="now"/>; then <paramref name="heldBack"/> is how many were not since the last one recorded.</summary>
    public bool TryTake(string key, DateTimeOffset now, out long heldBack)
    {
        lock (_lock)
        {
            heldBack = 0;
            while (_recent.Count > 0 && now - _recent.Peek() >= Window)
            {
                _recent.Dequeue();
            }

            if ((_last.TryGetValue(key, out var last) && now - last < PerKey) || _recent.Count >= Burst)
            {
                _held++;
                return false;
            }

            if (!_last.ContainsKey(key) && _last.Count >= MaxKeys)
            {
                foreach (var stale in _last.Where(e => now - e.Value >= PerKey).Select(e => e.Key).ToList())
                {
                    _last.Remove(stale);
                }

                if (_last.Count >= MaxKeys)
                {
                    _held++;
                    return false; // too many keys at once to tell apart: a flood; the burst limit would hold them back anyway
                }
            }

            _last[key] = now;
            _recent.Enqueue(now);
            heldBack = _held;
            _held = 0;
            return true;
        }
    }
}
