using System.Collections.Concurrent;
using System.Net.Security;
using System.Net.Sockets;
using System.Security.Cryptography.X509Certificates;
using Heddle.Contracts.Trust;

namespace Heddle.Contracts.Api;

/// <summary>
/// Sends each request to one of a cluster's controllers (they share one store, so any of them answers): the one that
/// answered last; when it cannot be reached, the next, and so on once round. A read does not wait for a host that is
/// gone to time out: when the controller asked has not answered its TCP handshake within <see cref="ApiTimeouts.NextAfter"/>,
/// the next is asked as well and the first answer is taken. Each attempt is bounded
/// (<see cref="ApiTimeouts"/>), so the whole request takes at most the answer bound per controller. A request is sent
/// again only when it never reached a controller (no connection, refused, TLS refused) or is a read (GET) that got no
/// answer in time, so nothing is done twice. When no controller answers, the sentence names each one tried and why.
/// </summary>
public sealed class ControllerFailover : DelegatingHandler
{
    private readonly IReadOnlyList<Uri> _controllers;
    private readonly ApiTimeouts _timeouts;

    // Why the certificate check last refused a host: the handshake's exception says only that it failed.
    private readonly ConcurrentDictionary<string, string> _tlsProblems = new(StringComparer.OrdinalIgnoreCase);
    private int _current;

    // The controllers ("host:port") this handler has a TCP connection to: made, and no connection attempt failed since.
    private readonly ConcurrentDictionary<string, bool> _reached = new(StringComparer.OrdinalIgnoreCase);

    public ControllerFailover(IReadOnlyList<Uri> controllers, ApiTimeouts? timeouts = null, Action<Uri>? moved = null)
    {
        if (controllers.Count == 0)
        {
            throw new ArgumentException("at least one controller URL is needed", nameof(controllers));
        }

        _controllers = controllers;
        _timeouts = timeouts ?? ApiTimeouts.Default;
        Moved = moved;
    }

    /// <summary>Called when a request was answered by another controller than the one tried first (the client may remember it for the next time).</summary>
    public Action<Uri>? Moved { get; init; }

    public Uri Current => _controllers[(int)((uint)Volatile.Read(ref _current) % (uint)_controllers.Count)];

    /// <summary>
    /// The connection handler to put under this one: trusts only controllers whose certificate the cluster CA signed
    /// (when <paramref name="ca"/> is given) and, with <paramref name="checkNames"/>, that name the host they are reached by.
    /// </summary>
    public SocketsHttpHandler CreateInnerHandler(X509Certificate2? ca, bool checkNames)
    {
        // Pooled connections are replaced now and then, so that one made with a certificate since renewed does not outlive it.
        var handler = new SocketsHttpHandler
        {
            UseProxy = false, PooledConnectionLifetime = TimeSpan.FromMinutes(10), ConnectTimeout = _timeouts.Connect, ConnectCallback = ConnectAsync,
        };
        if (ca is not null)
        {
            handler.SslOptions.RemoteCertificateValidationCallback = (sender, certificate, chain, errors) =>
            {
                var host = (sender as SslStream)?.TargetHostName ?? string.Empty;
                var problem = certificate is null ? "TLS: it presented no certificate"
                    : !ClusterTrust.Is(certificate, ca, ClusterTrust.ServerAuth, ClusterTrust.ControllerUnit)
                        ? "TLS: its certificate is not signed by this cluster's CA (the 'ca' of the client configuration); is this the right cluster?"
                        : checkNames && errors.HasFlag(SslPolicyErrors.RemoteCertificateNameMismatch)
                            ? $"TLS name mismatch: its certificate does not name {host}; start the controller with --tls-name {host}"
                            : null;
                if (problem is null)
                {
                    _tlsProblems.TryRemove(host, out _);
                    return true;
                }

                _tlsProblems[host] = problem;
                return false;
            };
        }

        return handler;
    }

    /// <summary>With one controller there is no other to try: its TCP handshake may take as long as the whole connection.</summary>
    private TimeSpan TcpConnect => _controllers.Count > 1 ? _timeouts.TcpConnect : _timeouts.Connect;

    /// <summary>The TCP handshake, bounded by <see cref="ApiTimeouts.TcpConnect"/>: a host that is gone never answers the SYN.</summary>
    private async ValueTask<Stream> ConnectAsync(SocketsHttpConnectionContext context, CancellationToken cancellationToken)
    {
        var socket = new Socket(SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        using var handshake = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        handshake.CancelAfter(TcpConnect);
        try
        {
            await socket.ConnectAsync(context.DnsEndPoint, handshake.Token);
            _reached[Key(context.DnsEndPoint.Host, context.DnsEndPoint.Port)] = true;
            return new NetworkStream(socket, ownsSocket: true);
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            socket.Dispose();
            _reached.TryRemove(Key(context.DnsEndPoint.Host, context.DnsEndPoint.Port), out _);
            throw new SocketException((int)SocketError.TimedOut);
        }
        catch
        {
            socket.Dispose();
            _reached.TryRemove(Key(context.DnsEndPoint.Host, context.DnsEndPoint.Port), out _);
            throw;
        }
    }

    private static string Key(string host, int port) => $"{host.Trim('[', ']')}:{port}";

    private static string Key(Uri controller) => Key(controller.IdnHost, controller.Port);

    /// <summary>
    /// A read (GET or HEAD without a body) may go to two controllers at once: when the one asked has not answered its
    /// TCP handshake within <see cref="ApiTimeouts.NextAfter"/>, the next is asked as well and the first answer is taken
    /// (as Happy Eyeballs does between addresses, RFC 8305). Any other request goes to one controller at a time.
    /// </summary>
    protected override Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken) =>
        _controllers.Count > 1 && request.Content is null && (request.Method == HttpMethod.Get || request.Method == HttpMethod.Head) && !request.Options.TryGetValue(AnswerDeadline.Key, out _)
            ? SendReadAsync(request, cancellationToken)
            : SendInTurnAsync(request, cancellationToken);

    private sealed class Attempt(int order, int index, Uri target, HttpRequestMessage request, CancellationTokenSource cancel, long started)
    {
        public int Order => order;

        public int Index => index;

        public Uri Target => target;

        public HttpRequestMessage Request => request;

        public CancellationTokenSource Cancel => cancel;

        public long Started => started;

        public Task<HttpResponseMessage>? Sending { get; set; }

        public bool Done { get; set; }
    }

    private async Task<HttpResponseMessage> SendReadAsync(HttpRequestMessage request, CancellationToken cancellationToken)
    {
        var first = Volatile.Read(ref _current);
        var attempts = new List<Attempt>();
        var failures = new SortedList<int, Failure>();
        Attempt Start()
        {
            var order = attempts.Count;
            var index = first + order;
            var target = _controllers[(int)((uint)index % (uint)_controllers.Count)];
            var copy = order == 0 ? request : Copy(request);
            if (copy.RequestUri is { IsAbsoluteUri: true } uri)
            {
                copy.RequestUri = new UriBuilder(uri) { Scheme = target.Scheme, Host = target.Host, Port = target.Port }.Uri;
            }

            var cancel = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
            cancel.CancelAfter(_timeouts.Answer);
            var attempt = new Attempt(order, index, target, copy, cancel, System.Diagnostics.Stopwatch.GetTimestamp());
            attempts.Add(attempt);
            attempt.Sending = base.SendAsync(copy, cancel.Token);
            return attempt;
        }

        _ = Start();
        while (true)
        {
            var pending = attempts.Where(a => !a.Done).ToList();
            if (pending.Count == 0)
            {
                if (attempts.Count == _controllers.Count)
                {
                    throw Unreachable([.. failures.Values]);
                }

                _ = Start();
                continue;
            }

            // The last controller asked failed, or has not made a TCP connection by the end of its head start: the next is
            // asked (as well).
            var last = attempts[^1];
            Task? next = null;
            if (attempts.Count < _controllers.Count)
            {
                if (last.Done)
                {
                    _ = Start();
                    continue;
                }

                if (!_reached.ContainsKey(Key(last.Target)))
                {
                    var left = _timeouts.NextAfter - System.Diagnostics.Stopwatch.GetElapsedTime(last.Started);
                    next = left > TimeSpan.Zero ? Task.Delay(left, CancellationToken.None) : Task.CompletedTask;
                }
            }

            var waits = pending.Select(a => (Task)a.Sending!).ToList();
            if (next is not null)
            {
                waits.Add(next);
            }

            var done = await Task.WhenAny(waits);
            if (done == next)
            {
                if (!_reached.ContainsKey(Key(last.Target)))
                {
                    _ = Start();
                }

                continue;
            }

            var finished = pending.First(a => a.Sending == done);
            finished.Done = true;
            Failure failure;
            try
            {
                var response = await finished.Sending!;
                foreach (var other in attempts.Where(a => a != finished && !a.Done))
                {
                    Abandon(other);
                }

                finished.Cancel.Dispose();
                if (finished.Order > 0)
                {
                    Interlocked.CompareExchange(ref _current, finished.Index, first);
                    Moved?.Invoke(finished.Target);
                }

                return response;
            }
            catch (OperationCanceledException e) when (!cancellationToken.IsCancellationRequested)
            {
                failure = e.InnerException is TimeoutException
                    ? new(finished.Target, $"no connection within {ApiTimeouts.Format(_timeouts.Connect)}", NeverSent: true, Untrusted: false)
                    : new(finished.Target, $"no answer within {ApiTimeouts.Format(_timeouts.Answer)}", NeverSent: false, Untrusted: false);
            }
            catch (HttpRequestException e)
            {
                failure = Describe(finished.Target, e);
            }
            catch
            {
                foreach (var other in attempts.Where(a => !a.Done))
                {
                    Abandon(other);
                }

                throw;
            }

            finished.Cancel.Dispose();
            failures.Add(finished.Order, failure);
        }
    }

    /// <summary>An attempt that lost to another: cancelled, and its answer, should it come anyway, let go.</summary>
    private static void Abandon(Attempt attempt)
    {
        attempt.Done = true;
        attempt.Cancel.Cancel();
        _ = attempt.Sending!.ContinueWith(
            t =>
            {
                if (t.IsCompletedSuccessfully)
                {
                    t.Result.Dispose();
                }

                attempt.Cancel.Dispose();
                _ = t.Exception;
            },
            CancellationToken.None, TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default);
    }

    /// <summary>The same bodiless request again, for another controller.</summary>
    private static HttpRequestMessage Copy(HttpRequestMessage request)
    {
        var copy = new HttpRequestMessage(request.Method, request.RequestUri) { Version = request.Version, VersionPolicy = request.VersionPolicy };
        foreach (var header in request.Headers)
        {
            copy.Headers.TryAddWithoutValidation(header.Key, header.Value);
        }

        foreach (var option in request.Options)
        {
            ((IDictionary<string, object?>)copy.Options)[option.Key] = option.Value;
        }

        return copy;
    }

    private async Task<HttpResponseMessage> SendInTurnAsync(HttpRequestMessage request, CancellationToken cancellationToken)
    {
        var failures = new List<Failure>();
        var read = request.Method == HttpMethod.Get || request.Method == HttpMethod.Head;
        var replayable = request.Content is null || request.Content.Headers.ContentLength is not null;
        request.Options.TryGetValue(AnswerDeadline.Key, out var deadline);
        for (var tried = 1; ; tried++)
        {
            var index = Volatile.Read(ref _current);
            var target = _controllers[(int)((uint)index % (uint)_controllers.Count)];
            if (request.RequestUri is { IsAbsoluteUri: true } uri)
            {
                request.RequestUri = new UriBuilder(uri) { Scheme = target.Scheme, Host = target.Host, Port = target.Port }.Uri;
            }

            using var attempt = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
            attempt.CancelAfter(_timeouts.Answer);
            deadline?.Arm(attempt);
            Failure failure;
            try
            {
                var response = await base.SendAsync(request, attempt.Token);
                if (tried > 1)
                {
                    Moved?.Invoke(target);
                }

                return response;
            }
            catch (OperationCanceledException e) when (!cancellationToken.IsCancellationRequested)
            {
                failure = e.InnerException is TimeoutException
                    ? new(target, $"no connection within {ApiTimeouts.Format(_timeouts.Connect)}", NeverSent: true, Untrusted: false)
                    : new(target, $"no answer within {ApiTimeouts.Format(deadline?.AfterBody ?? _timeouts.Answer)}", NeverSent: false, Untrusted: false);
            }
            catch (HttpRequestException e)
            {
                failure = Describe(target, e);
            }

            failures.Add(failure);
            if (tried >= _controllers.Count || !replayable || !(failure.NeverSent || read))
            {
                throw Unreachable(failures);
            }

            Interlocked.CompareExchange(ref _current, index + 1, index);
        }
    }

    private sealed record Failure(Uri Url, string Reason, bool NeverSent, bool Untrusted);

    private Failure Describe(Uri target, HttpRequestException e)
    {
        if (e.InnerException is System.Security.Authentication.AuthenticationException tls)
        {
            var reason = _tlsProblems.TryGetValue(target.Host, out var problem) ? problem : $"TLS handshake failed: {tls.Message}";
            return new(target, reason, NeverSent: true, Untrusted: true);
        }

        if (e.InnerException is TimeoutException)
        {
            return new(target, $"no connection within {ApiTimeouts.Format(_timeouts.Connect)}", NeverSent: true, Untrusted: false);
        }

        var socket = e.InnerException as SocketException;
        var reason2 = socket?.SocketErrorCode switch
        {
            SocketError.ConnectionRefused => "connection refused",
            SocketError.TimedOut => $"no TCP connection within {ApiTimeouts.Format(TcpConnect)}",
            SocketError.HostUnreachable => "host unreachable",
            SocketError.NetworkUnreachable => "network unreachable",
            SocketError.HostNotFound or SocketError.NoData or SocketError.TryAgain => $"no such host {target.Host}",
            _ when e.HttpRequestError is HttpRequestError.ResponseEnded => "the connection was closed before an answer",
            _ => e.Message,
        };
        var neverSent = socket is not null || e.HttpRequestError is HttpRequestError.ConnectionError or HttpRequestError.NameResolutionError or HttpRequestError.SecureConnectionError;
        return new(target, reason2, neverSent, Untrusted: false);
    }

    private static HeddleApiException Unreachable(List<Failure> failures)
    {
        var first = failures[0];
        var sentence = $"cannot reach the controller at {first.Url} ({first.Reason})";
        if (failures.Count > 1)
        {
            sentence += $"; tried {string.Join(", ", failures.Skip(1).Select(f => $"{f.Url} ({f.Reason})"))}";
        }

        if (failures.Any(f => f.Url.Scheme == Uri.UriSchemeHttp && !f.NeverSent))
        {
            sentence += "; the API serves HTTPS unless the controller runs with --insecure-http: use an https:// URL";
        }

        var untrusted = failures.All(f => f.Untrusted);
        return new HeddleApiException(null, untrusted ? "untrusted" : "unreachable", sentence, []);
    }
}
