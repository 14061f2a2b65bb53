using System.Net.Http.Headers;
using System.Security.Cryptography.X509Certificates;

namespace Heddle.Benchmarks.Scale;

/// <summary>
/// Follows one of the controller's change streams (`GET /v1/dns/records` or `/v1/lb/config` with
/// `?follow=true&amp;changes=true`), as `heddle dns` and `heddle lb` do, and counts the changes it is sent and their
/// bytes, by phase: what a remote data plane receives per change. The first record (the whole view) is not counted.
/// </summary>
internal sealed class ChangeStreamCounter : IAsyncDisposable
{
    private readonly CancellationTokenSource _stop = new();
    private readonly HttpClient _http;
    private readonly Task _loop;
    private long _changes;
    private long _bytes;
    private long _whole = -1;

    public ChangeStreamCounter(Uri apiUrl, string token, X509Certificate2 ca, string path)
    {
        _http = new HttpClient(Heddle.Contracts.Trust.ClusterTrust.Handler(ca)) { BaseAddress = apiUrl, Timeout = Timeout.InfiniteTimeSpan };
        _http.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", token);
        _loop = RunAsync(path);
    }

    /// <summary>The size of the whole view when the stream began, in bytes (-1 until it arrived).</summary>
    public long WholeBytes => Interlocked.Read(ref _whole);

    /// <summary>Starts a new phase.</summary>
    public void Reset()
    {
        Interlocked.Exchange(ref _changes, 0);
        Interlocked.Exchange(ref _bytes, 0);
    }

    /// <summary>The changes and their bytes (the JSON of each, as sent) since the last <see cref="Reset"/>.</summary>
    public (long Changes, long Bytes) Take() => (Interlocked.Read(ref _changes), Interlocked.Read(ref _bytes));

    private async Task RunAsync(string path)
    {
        try
        {
            using var response = await _http.GetAsync($"{path}?follow=true&changes=true", HttpCompletionOption.ResponseHeadersRead, _stop.Token);
            response.EnsureSuccessStatusCode();
            using var reader = new StreamReader(await response.Content.ReadAsStreamAsync(_stop.Token));
            while (await reader.ReadLineAsync(_stop.Token) is { } line)
            {
                if (!line.StartsWith("data: ", StringComparison.Ordinal))
                {
                    continue;
                }

                var bytes = System.Text.Encoding.UTF8.GetByteCount(line) - 6;
                if (Interlocked.CompareExchange(ref _whole, bytes, -1) == -1)
                {
                    continue;
                }

                Interlocked.Increment(ref _changes);
                Interlocked.Add(ref _bytes, bytes);
            }
        }
        catch (OperationCanceledException)
        {
        }
    }

    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync();
        await _loop;
        _stop.Dispose();
        _http.Dispose();
    }
}
