using System.Diagnostics.Metrics;

namespace Heddle.Contracts.Metrics;

/// <summary>
/// The meters of one Heddle process (or of one controller, agent, balancer or DNS server when tests run several in
/// one process): every <see cref="Meter"/> made here has this object as its <see cref="Meter.Scope"/>, and
/// <see cref="PrometheusExport"/> reads only the meters of its own scope. The same name gives the same meter, as
/// the hosting's own <see cref="IMeterFactory"/> does.
/// </summary>
public sealed class MeterScope : IMeterFactory
{
    private readonly Dictionary<string, Meter> _meters = new(StringComparer.Ordinal);
    private readonly Lock _lock = new();
    private bool _disposed;

    public Meter Create(MeterOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        if (options.Scope is not null && !ReferenceEquals(options.Scope, this))
        {
            throw new ArgumentException("a meter of another scope cannot be made here", nameof(options));
        }

        lock (_lock)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            if (!_meters.TryGetValue(options.Name, out var meter))
            {
                options.Scope = this;
                _meters[options.Name] = meter = new Meter(options);
            }

            return meter;
        }
    }

    public void Dispose()
    {
        lock (_lock)
        {
            _disposed = true;
            foreach (var meter in _meters.Values)
            {
                meter.Dispose();
            }

            _meters.Clear();
        }
    }
}
