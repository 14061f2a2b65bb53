using System.Collections.Concurrent;
using System.Net.WebSockets;
using System.Text.Json;

namespace Heddle.Testing.Browser;

/// <summary>An event chromium sent: its method, the session it came from (null for the browser itself), its parameters.</summary>
public sealed record CdpEvent(string Method, string? SessionId, JsonElement Params);

/// <summary>A command chromium answered with an error (the protocol's code and message), or one it never answered.</summary>
public sealed class CdpException(string message, Exception? inner = null) : Exception(message, inner);

/// <summary>
/// One WebSocket to chromium's DevTools endpoint, speaking the Chrome DevTools Protocol: commands (with an id) get
/// their answer or fail within a deadline, naming the method; events go to <see cref="EventReceived"/>. When the
/// connection ends (the browser died, the socket broke, or it was disposed) every command waiting fails at once with
/// the reason, so a dead browser never leaves a test hanging until its deadline.
/// </summary>
public sealed class CdpConnection : IAsyncDisposable
{
    /// <summary>How long a command may wait for its answer unless its caller says otherwise.</summary>
    public static readonly TimeSpan DefaultCommandDeadline = TimeSpan.FromSeconds(30);

    private readonly ClientWebSocket _socket;
    private readonly ConcurrentDictionary<long, Pending> _pending = new();
    private readonly ConcurrentDictionary<string, string> _deadSessions = new();
    private readonly TaskCompletionSource _closed = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly SemaphoreSlim _sendLock = new(1, 1);
    private readonly CancellationTokenSource _stop = new();
    private readonly Task _receiving;
    private long _nextId;
    private string? _closedReason;

    private CdpConnection(ClientWebSocket socket)
    {
        _socket = socket;
        _receiving = Task.Run(ReceiveLoopAsync);
    }

    /// <summary>Every event chromium sends, raised on the receiving thread: handlers must be quick and must not block.</summary>
    public event Action<CdpEvent>? EventReceived;

    /// <summary>Why the connection ended, or null while it is open.</summary>
    public string? ClosedReason => Volatile.Read(ref _closedReason);

    /// <summary>Completes when the connection ends, for waits on events that will then never come.</summary>
    public Task Closed => _closed.Task;

    /// <summary>Opens the WebSocket at <paramref name="url"/> (a ws:// DevTools URL), failing clearly after <paramref name="deadline"/>.</summary>
    public static async Task<CdpConnection> ConnectAsync(Uri url, TimeSpan deadline)
    {
        var socket = new ClientWebSocket();
        using var timeout = new CancellationTokenSource(deadline);
        try
        {
            await socket.ConnectAsync(url, timeout.Token);
        }
        catch (Exception e) when (e is WebSocketException or OperationCanceledException or IOException)
        {
            socket.Dispose();
            throw new CdpException($"could not open the DevTools WebSocket {url} within {deadline.TotalSeconds:0.#} s: {e.Message}", e);
        }

        return new CdpConnection(socket);
    }

    /// <summary>
    /// Sends <paramref name="method"/> with <paramref name="parameters"/> (serialised as they are named: use the
    /// protocol's camelCase) to the browser or to <paramref name="sessionId"/>, and returns its result.
    /// </summary>
    public async Task<JsonElement> SendAsync(string method, object? parameters = null, string? sessionId = null, TimeSpan? deadline = null)
    {
        var limit = deadline ?? DefaultCommandDeadline;
        var id = Interlocked.Increment(ref _nextId);
        var pending = new Pending(method, sessionId, new TaskCompletionSource<JsonElement>(TaskCreationOptions.RunContinuationsAsynchronously));
        _pending[id] = pending;
        try
        {
            if ((ClosedReason ?? DeadSessionReason(sessionId)) is { } reason)
            {
                throw new CdpException($"CDP {method} failed: {reason}");
            }

            using var timeout = new CancellationTokenSource(limit);
            await SendTextAsync(Serialize(id, method, parameters, sessionId), method, timeout.Token);
            return await pending.Result.Task.WaitAsync(timeout.Token);
        }
        catch (OperationCanceledException e)
        {
            throw new CdpException($"CDP {method} got no answer within {limit.TotalSeconds:0.#} s", e);
        }
        finally
        {
            _pending.TryRemove(id, out _);
        }
    }

    /// <summary>Ends the connection with <paramref name="reason"/>: commands waiting and those sent later fail with it.</summary>
    public void Abort(string reason)
    {
        Fail(reason);
        _socket.Abort();
    }

    /// <summary>
    /// Marks <paramref name="sessionId"/> dead (its target crashed or was closed): its commands waiting, and those sent
    /// to it later, fail with <paramref name="reason"/> instead of waiting out their deadline for an answer that will not come.
    /// </summary>
    public void FailSession(string sessionId, string reason)
    {
        _deadSessions.TryAdd(sessionId, reason);
        foreach (var pending in _pending.Values.Where(p => p.SessionId == sessionId))
        {
            pending.Result.TrySetException(new CdpException($"CDP {pending.Method} failed: {_deadSessions[sessionId]}"));
        }
    }

    /// <summary>Closes the socket (politely if chromium still listens) and fails whatever still waits.</summary>
    public async ValueTask DisposeAsync()
    {
        if (_socket.State == WebSocketState.Open)
        {
            using var grace = new CancellationTokenSource(TimeSpan.FromSeconds(2));
            try
            {
                await _socket.CloseOutputAsync(WebSocketCloseStatus.NormalClosure, "disposed", grace.Token);
            }
            catch (Exception e) when (e is WebSocketException or OperationCanceledException or IOException)
            {
            }
        }

        Fail("the DevTools connection was disposed");
        await _stop.CancelAsync();
        _socket.Abort();
        await _receiving;
        _socket.Dispose();
        _stop.Dispose();
        _sendLock.Dispose();
    }

    private string? DeadSessionReason(string? sessionId) => sessionId is null ? null : _deadSessions.GetValueOrDefault(sessionId);

    private static byte[] Serialize(long id, string method, object? parameters, string? sessionId)
    {
        using var buffer = new MemoryStream();
        using (var json = new Utf8JsonWriter(buffer))
        {
            json.WriteStartObject();
            json.WriteNumber("id", id);
            json.WriteString("method", method);
            if (sessionId is not null)
            {
                json.WriteString("sessionId", sessionId);
            }

            json.WritePropertyName("params");
            JsonSerializer.Serialize(json, parameters ?? new { });
            json.WriteEndObject();
        }

        return buffer.ToArray();
    }

    private async Task SendTextAsync(byte[] message, string method, CancellationToken cancel)
    {
        await _sendLock.WaitAsync(cancel);
        try
        {
            await _socket.SendAsync(message, WebSocketMessageType.Text, endOfMessage: true, cancel);
        }
        catch (Exception e) when (e is WebSocketException or IOException or ObjectDisposedException)
        {
            throw new CdpException($"CDP {method} could not be sent: {ClosedReason ?? e.Message}", e);
        }
        finally
        {
            _sendLock.Release();
        }
    }

    private async Task ReceiveLoopAsync()
    {
        var buffer = new byte[64 * 1024];
        using var message = new MemoryStream();
        var reason = "the DevTools connection closed";
        try
        {
            while (true)
            {
                var received = await _socket.ReceiveAsync(buffer, _stop.Token);
                if (received.MessageType == WebSocketMessageType.Close)
                {
                    reason = $"chromium closed the DevTools connection ({received.CloseStatus} {received.CloseStatusDescription})";
                    break;
                }

                message.Write(buffer, 0, received.Count);
                if (received.EndOfMessage)
                {
                    Dispatch(message.GetBuffer().AsMemory(0, (int)message.Length));
                    message.SetLength(0);
                }
            }
        }
        catch (Exception e) when (e is WebSocketException or OperationCanceledException or IOException or ObjectDisposedException)
        {
            reason = $"the DevTools connection broke: {e.Message}";
        }

        Fail(reason);
    }

    private void Dispatch(ReadOnlyMemory<byte> text)
    {
        using var document = JsonDocument.Parse(text);
        var root = document.RootElement;
        if (root.TryGetProperty("id", out var id))
        {
            Answer(id.GetInt64(), root);
        }
        else if (root.TryGetProperty("method", out var method))
        {
            var session = root.TryGetProperty("sessionId", out var s) ? s.GetString() : null;
            var parameters = root.TryGetProperty("params", out var p) ? p.Clone() : default;
            Raise(new CdpEvent(method.GetString()!, session, parameters));
        }
    }

    private void Answer(long id, JsonElement root)
    {
        if (!_pending.TryGetValue(id, out var pending))
        {
            return; // its caller gave up (deadline) already
        }

        if (root.TryGetProperty("error", out var error))
        {
            var code = error.TryGetProperty("code", out var c) ? c.GetRawText() : "?";
            var text = error.TryGetProperty("message", out var m) ? m.GetString() : error.GetRawText();
            var data = error.TryGetProperty("data", out var d) ? $": {d}" : string.Empty;
            pending.Result.TrySetException(new CdpException($"CDP {pending.Method} failed: {text} (code {code}){data}"));
        }
        else
        {
            pending.Result.TrySetResult(root.TryGetProperty("result", out var result) ? result.Clone() : default);
        }
    }

    private void Raise(CdpEvent cdpEvent)
    {
        foreach (var handler in EventReceived?.GetInvocationList().Cast<Action<CdpEvent>>() ?? [])
        {
            try
            {
                handler(cdpEvent);
            }
            catch (Exception e) when (e is not OutOfMemoryException)
            {
                // A faulty handler must not stop the answers to everyone else's commands.
            }
        }
    }

    private void Fail(string reason)
    {
        Interlocked.CompareExchange(ref _closedReason, reason, null);
        foreach (var pending in _pending.Values)
        {
            pending.Result.TrySetException(new CdpException($"CDP {pending.Method} failed: {ClosedReason}"));
        }

        _closed.TrySetResult();
    }

    private sealed record Pending(string Method, string? SessionId, TaskCompletionSource<JsonElement> Result);
}

/// <summary>The text of the events and exceptions a page reports, as a test prints them.</summary>
internal static class CdpText
{
    /// <summary>A console call, page exception or log entry as one line prefixed by its kind; null for other events.</summary>
    public static string? Describe(CdpEvent e) => e.Method switch
    {
        "Runtime.consoleAPICalled" => $"console.{e.Params.GetProperty("type").GetString()}: {string.Join(' ', e.Params.GetProperty("args").EnumerateArray().Select(ArgumentText))}",
        "Runtime.exceptionThrown" => $"exception: {Exception(e.Params.GetProperty("exceptionDetails"))}",
        "Log.entryAdded" => LogText(e.Params.GetProperty("entry")),
        _ => null,
    };

    private static string LogText(JsonElement entry)
    {
        var url = entry.TryGetProperty("url", out var u) ? $" ({u.GetString()})" : string.Empty;
        return $"log.{entry.GetProperty("level").GetString()}: {entry.GetProperty("text").GetString()}{url}";
    }

    private static string ArgumentText(JsonElement argument) =>
        argument.TryGetProperty("value", out var value) ? (value.ValueKind == JsonValueKind.String ? value.GetString()! : value.GetRawText())
        : argument.TryGetProperty("unserializableValue", out var special) ? special.GetString()!
        : argument.TryGetProperty("description", out var description) ? description.GetString()!
        : argument.GetProperty("type").GetString()!;

    /// <summary>A JavaScript exception's description (message and stack) and where it was thrown.</summary>
    public static string Exception(JsonElement details)
    {
        var text = details.TryGetProperty("exception", out var exception) && exception.TryGetProperty("description", out var description)
            ? description.GetString()!
            : details.GetProperty("text").GetString()!;
        var where = details.TryGetProperty("url", out var url) ? $" at {url.GetString()}:{details.GetProperty("lineNumber").GetInt32() + 1}" : string.Empty;
        return text + where;
    }
}
