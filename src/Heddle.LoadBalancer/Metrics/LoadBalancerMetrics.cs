using System.Diagnostics.Metrics;
using Heddle.LoadBalancer.Health;
using Heddle.LoadBalancer.L4;
using Heddle.LoadBalancer.L7;

namespace Heddle.LoadBalancer.Metrics;

/// <summary>
/// The balancer's instruments (meter <c>Heddle.LoadBalancer</c>), all observable: the relays and the proxy count in
/// their own counters (<see cref="TcpBackendCounters"/> per event loop, <see cref="HttpCounters"/>, the probes'), and
/// a scrape sums them. Every series is labelled with the <c>service</c> and the <c>vip</c> (address:port); per-instance
/// series with the <c>backend</c> (the instance's id).
/// </summary>
internal sealed class LoadBalancerMetrics
{
    public const string MeterName = "Heddle.LoadBalancer";

    private readonly Func<IReadOnlyList<(string Service, string Vip, BackendHealth Health)>> _listeners;

    public LoadBalancerMetrics(IMeterFactory meters, Func<IReadOnlyList<(string Service, string Vip, BackendHealth Health)>> listeners)
    {
        _listeners = listeners;
        var meter = meters.Create(MeterName);
        meter.CreateObservableCounter("heddle.lb.connections", () => Tcp((r, b) => [Backend(r, b, b.Connections)]), "{connection}",
            "TCP (L4) connections established to a backend");
        meter.CreateObservableCounter("heddle.lb.connect.failures", () => Tcp((r, b) => [Backend(r, b, b.ConnectFailures)]), "{connection}",
            "TCP (L4) connection attempts a backend refused, reset or left unanswered (the next backend is tried once)");
        meter.CreateObservableCounter("heddle.lb.connection.errors", () => Tcp((r, b) => [Backend(r, b, b.Errors)]), "{connection}",
            "TCP (L4) connections that ended in an error after they were established (a reset, a failed send)");
        meter.CreateObservableCounter("heddle.lb.relayed", Relayed, "By",
            "Bytes relayed to and from backends: in = from clients to the backend (HTTP: requests as forwarded), out = from the backend to clients (HTTP: not the balancer's own answers; HTTP/2, which the full proxy serves, is not counted)");
        meter.CreateObservableCounter("heddle.lb.connections.refused", Refused, "{connection}",
            "TCP (L4) connections reset at once: no healthy backend (no_backend) or the VIP's or client's connection cap reached (limit)");
        meter.CreateObservableUpDownCounter("heddle.lb.connections.open", Open, "{connection}", "TCP (L4) connections open now");
        meter.CreateObservableCounter("heddle.lb.requests", Requests, "{request}",
            "HTTP (L7) requests answered, by the backend that answered (none: no healthy backend, 503) and status class");
        meter.CreateObservableCounter("heddle.lb.request.errors", RequestErrors, "{request}", "HTTP (L7) forwards that failed, by YARP's error");
        meter.CreateObservableCounter("heddle.lb.health.checks", HealthChecks, "{check}", "The balancer's own health checks of backends, by result (pass, fail)");
        meter.CreateObservableGauge("heddle.lb.backend.healthy", Healthy, null, "1 when a probed backend is in its listener's pool, 0 when its checks took it out");
    }

    private static KeyValuePair<string, object?> Tag(string key, object? value) => new(key, value);

    private static Measurement<long> Backend((string Service, string Vip) at, TcpBackendReading backend, long value, (string Key, string Value)? extra = null) =>
        extra is { } e
            ? new(value, Tag("service", at.Service), Tag("vip", at.Vip), Tag("backend", backend.Backend), Tag(e.Key, e.Value))
            : new(value, Tag("service", at.Service), Tag("vip", at.Vip), Tag("backend", backend.Backend));

    private IEnumerable<Measurement<long>> Tcp(Func<(string Service, string Vip), TcpBackendReading, IEnumerable<Measurement<long>>> each)
    {
        foreach (var (service, vip, health) in _listeners())
        {
            if (health.Listener is TcpVipListener tcp)
            {
                foreach (var backend in tcp.Read().Backends)
                {
                    foreach (var measurement in each((service, vip), backend))
                    {
                        yield return measurement;
                    }
                }
            }
        }
    }

    private IEnumerable<Measurement<long>> Relayed()
    {
        foreach (var measurement in Tcp((r, b) => [Backend(r, b, b.BytesIn, ("direction", "in")), Backend(r, b, b.BytesOut, ("direction", "out"))]))
        {
            yield return measurement;
        }

        foreach (var (service, vip, health) in _listeners())
        {
            if (health.Listener is HttpVipListener http)
            {
                foreach (var (backend, counters) in http.Counters.Read())
                {
                    yield return new(Volatile.Read(ref counters.BytesIn), Tag("service", service), Tag("vip", vip), Tag("backend", backend), Tag("direction", "in"));
                    yield return new(Volatile.Read(ref counters.BytesOut), Tag("service", service), Tag("vip", vip), Tag("backend", backend), Tag("direction", "out"));
                }
            }
        }
    }

    private IEnumerable<Measurement<long>> Refused()
    {
        foreach (var (service, vip, health) in _listeners())
        {
            if (health.Listener is TcpVipListener tcp)
            {
                var reading = tcp.Read();
                yield return new(reading.RefusedNoBackend, Tag("service", service), Tag("vip", vip), Tag("reason", "no_backend"));
                yield return new(reading.RefusedOverLimit, Tag("service", service), Tag("vip", vip), Tag("reason", "limit"));
            }
        }
    }

    private IEnumerable<Measurement<long>> Open()
    {
        foreach (var (service, vip, health) in _listeners())
        {
            if (health.Listener is TcpVipListener tcp)
            {
                yield return new(tcp.OpenConnections, Tag("service", service), Tag("vip", vip));
            }
        }
    }

    private static readonly string[] StatusClasses = ["other", "1xx", "2xx", "3xx", "4xx", "5xx"];

    private IEnumerable<Measurement<long>> Requests()
    {
        foreach (var (service, vip, health) in _listeners())
        {
            if (health.Listener is not HttpVipListener http)
            {
                continue;
            }

            var none = http.Counters.ReadNoBackend();
            if (none > 0)
            {
                yield return new(none, Tag("service", service), Tag("vip", vip), Tag("backend", "none"), Tag("status_class", "5xx"));
            }

            foreach (var (backend, counters) in http.Counters.Read())
            {
                for (var i = 0; i < StatusClasses.Length; i++)
                {
                    var count = Volatile.Read(ref counters.ByStatusClass[i]);
                    if (count > 0)
                    {
                        yield return new(count, Tag("service", service), Tag("vip", vip), Tag("backend", backend), Tag("status_class", StatusClasses[i]));
                    }
                }
            }
        }
    }

    private IEnumerable<Measurement<long>> RequestErrors()
    {
        foreach (var (service, vip, health) in _listeners())
        {
            if (health.Listener is not HttpVipListener http)
            {
                continue;
            }

            foreach (var (backend, counters) in http.Counters.Read())
            {
                for (var i = 0; i < counters.Errors.Length; i++)
                {
                    var count = Volatile.Read(ref counters.Errors[i]);
                    if (count > 0)
                    {
                        yield return new(count, Tag("service", service), Tag("vip", vip), Tag("backend", backend), Tag("error", HttpCounters.ErrorNames[i]));
                    }
                }
            }
        }
    }

    private IEnumerable<Measurement<long>> HealthChecks()
    {
        foreach (var (service, vip, health) in _listeners())
        {
            foreach (var probe in health.ReadProbes())
            {
                yield return new(probe.Passed, Tag("service", service), Tag("vip", vip), Tag("backend", probe.Backend), Tag("result", "pass"));
                yield return new(probe.Failed, Tag("service", service), Tag("vip", vip), Tag("backend", probe.Backend), Tag("result", "fail"));
            }
        }
    }

    private IEnumerable<Measurement<int>> Healthy()
    {
        foreach (var (service, vip, health) in _listeners())
        {
            foreach (var probe in health.ReadProbes())
            {
                yield return new(probe.Healthy ? 1 : 0, Tag("service", service), Tag("vip", vip), Tag("backend", probe.Backend));
            }
        }
    }
}
