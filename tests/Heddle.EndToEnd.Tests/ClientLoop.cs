using System.Collections.Concurrent;
using Heddle.Testing;

namespace Heddle.EndToEnd.Tests;

/// <summary>
/// A client sending one request after another to a URL, each on a new connection, recording every answer, every
/// failure (with when and why), and each change of the answer's first word (the sample's greeting).
/// </summary>
public sealed class ClientLoop : IAsyncDisposable
{
    private readonly CancellationTokenSource _stop = new(); // not disposed: it holds no timer, and disposing twice would race the loop
    private readonly List<string> _changes = [];
    private readonly Lock _lock = new();
    private readonly Task _loop;

    private ClientLoop(string url) => _loop = Task.Run(() => RunAsync(url));

    public ConcurrentQueue<string> Answers { get; } = new();

    public ConcurrentQueue<string> Failures { get; } = new();

    public static ClientLoop Start(string url) => new(url);

    private async Task RunAsync(string url)
    {
        using var handler = new SocketsHttpHandler { PooledConnectionLifetime = TimeSpan.Zero, UseProxy = false };
        using var http = new HttpClient(handler) { Timeout = TimeSpan.FromSeconds(5) };
        while (!_stop.IsCancellationRequested)
        {
            try
            {
                using var response = await http.GetAsync(url, _stop.Token);
                var body = await response.Content.ReadAsStringAsync(_stop.Token);
                if (!response.IsSuccessStatusCode)
                {
                    Failures.Enqueue($"{DateTimeOffset.UtcNow:HH:mm:ss.fff} HTTP {(int)response.StatusCode}: {body}");
                    continue;
                }

                Answers.Enqueue(body);
                var greeting = body.Split(' ')[0];
                lock (_lock)
                {
                    if (_changes.Count == 0 || _changes[^1] != greeting)
                    {
                        _changes.Add(greeting);
                    }
                }
            }
            catch (OperationCanceledException) when (_stop.IsCancellationRequested)
            {
            }
            catch (Exception e) when (e is HttpRequestException or TaskCanceledException or IOException)
            {
                Failures.Enqueue($"{DateTimeOffset.UtcNow:HH:mm:ss.fff} {e.GetType().Name}: {e.Message}");
            }
        }
    }

    public Task WaitForAnswerAsync(string greeting) =>
        Poll.UntilAsync(() =>
        {
            lock (_lock)
            {
                return _changes.Count > 0 && _changes[^1] == greeting;
            }
        }, TimeSpan.FromSeconds(30), $"the VIP to answer {greeting}");

    /// <summary>Stops the loop; returns how many requests failed and the greetings in the order they changed.</summary>
    public async Task<(int Failed, List<string> Changes)> StopAsync()
    {
        await DisposeAsync();
        lock (_lock)
        {
            return (Failures.Count, [.. _changes]);
        }
    }

    public async ValueTask DisposeAsync()
    {
        if (!_stop.IsCancellationRequested)
        {
            await _stop.CancelAsync();
        }

        await _loop;
    }
}
