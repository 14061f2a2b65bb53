using System.Diagnostics;
using Grpc.Core;
using Grpc.Net.Client;
using Heddle.LoadBalancer.Announcing.Bgp.Apipb;
using Microsoft.Extensions.Logging;

namespace Heddle.LoadBalancer.Announcing.Bgp;

/// <summary>
/// Runs Debian's gobgpd for one balancer and keeps it running: started with no configuration file and its API on a unix
/// socket only, configured entirely over gRPC by <c>configure</c> (global AS, peer, paths) once the API answers, and
/// after every restart, since a new gobgpd knows nothing. A gobgpd that dies is started again after a backoff (1 s,
/// doubling to 30 s; back to 1 s after it ran a minute). Its log lines go to our logger.
/// </summary>
internal sealed partial class GobgpDaemon : IAsyncDisposable
{
    private static readonly TimeSpan StableRun = TimeSpan.FromMinutes(1);

    private readonly BgpOptions _options;
    private readonly Func<GobgpApi.GobgpApiClient, CancellationToken, Task> _configure;
    private readonly ILogger _logger;
    private readonly TimeProvider _time;
    private readonly ChildLauncher _launcher = new();
    private readonly CancellationTokenSource _stopping = new();
    private readonly GrpcChannel _channel;
    private readonly TaskCompletionSource _firstUp = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private Task _supervising = Task.CompletedTask;
    private GobgpdProcess? _current;
    private volatile bool _up;
    private int _disposed;

    public GobgpDaemon(BgpOptions options, Func<GobgpApi.GobgpApiClient, CancellationToken, Task> configure, ILogger logger, TimeProvider time)
    {
        _options = options;
        _configure = configure;
        _logger = logger;
        _time = time;
        _channel = GobgpChannel.Create(options.ApiSocket);
        Client = new GobgpApi.GobgpApiClient(_channel);
    }

    public GobgpApi.GobgpApiClient Client { get; }

    /// <summary>gobgpd runs, answers and has been configured.</summary>
    public bool Up => _up;

    /// <summary>The running gobgpd's pid, if one runs.</summary>
    public int? Pid => _current is { HasExited: false } current ? current.Pid : null;

    /// <summary>How many times gobgpd has been started again after it died.</summary>
    public int Restarts { get; private set; }

    /// <summary>Why the last gobgpd stopped, for the status line.</summary>
    public string? LastFailure { get; private set; }

    /// <summary>Starts gobgpd and returns once it is configured; throws <see cref="AnnouncerException"/> if the first one cannot be brought up.</summary>
    public async Task StartAsync(CancellationToken cancellationToken)
    {
        if (!File.Exists(_options.Gobgpd))
        {
            throw new AnnouncerException($"gobgpd not found at {_options.Gobgpd}: install Debian's gobgpd (apt-get install gobgpd, version 3.x) to announce VIPs over BGP");
        }

        var folder = System.IO.Path.GetDirectoryName(_options.ApiSocket)!;
        Directory.CreateDirectory(folder);
        File.SetUnixFileMode(folder, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        _supervising = SuperviseAsync(_stopping.Token);
        await _firstUp.Task.WaitAsync(cancellationToken);
    }

    private async Task SuperviseAsync(CancellationToken stopping)
    {
        try
        {
            await RunAsync(stopping);
        }
        catch (OperationCanceledException) when (stopping.IsCancellationRequested)
        {
        }
        finally
        {
            _up = false;
            _firstUp.TrySetException(new AnnouncerException("the BGP announcer was stopped before gobgpd came up"));
        }
    }

    private async Task RunAsync(CancellationToken stopping)
    {
        var backoff = _options.RestartBackoff;
        for (var first = true; !stopping.IsCancellationRequested; first = false)
        {
            // A socket file left by a gobgpd that was killed makes the next one's listen fail; this folder is ours alone.
            File.Delete(_options.ApiSocket);
            var process = _current = await GobgpdProcess.StartAsync(_launcher, _options, _logger);
            var started = _time.GetTimestamp();
            try
            {
                await BringUpAsync(process, stopping);
                _up = true;
                _firstUp.TrySetResult();
                LogUp(_logger, process.Pid, _options.ApiSocket);
            }
            catch (Exception e) when (!stopping.IsCancellationRequested)
            {
                var reason = e is RpcException rpc ? rpc.Status.Detail : e.Message;
                LastFailure = $"gobgpd could not be brought up: {reason}";
                process.Kill();
                if (first)
                {
                    await process.WaitForExitAsync();
                    _firstUp.TrySetException(new AnnouncerException($"{LastFailure}; its last output: {process.Tail}", e));
                    return;
                }

                LogBringUpFailed(_logger, reason);
            }

            await process.WaitForExitAsync();
            _up = false;
            if (stopping.IsCancellationRequested)
            {
                return;
            }

            LastFailure = $"gobgpd exited with {process.ExitCode}";
            if (_time.GetElapsedTime(started) > StableRun)
            {
                backoff = _options.RestartBackoff;
            }

            LogDied(_logger, process.Pid, process.ExitCode, backoff.TotalSeconds, process.Tail);
            await Task.Delay(backoff, _time, stopping);
            backoff = TimeSpan.FromTicks(Math.Min(backoff.Ticks * 2, _options.MaxRestartBackoff.Ticks));
            Restarts++;
        }
    }

    /// <summary>Waits for the API to answer, then configures this gobgpd.</summary>
    private async Task BringUpAsync(GobgpdProcess process, CancellationToken stopping)
    {
        using var deadline = CancellationTokenSource.CreateLinkedTokenSource(stopping);
        deadline.CancelAfter(_options.StartTimeout);
        try
        {
            while (true)
            {
                if (process.HasExited)
                {
                    throw new InvalidOperationException($"gobgpd exited with {process.ExitCode} at start");
                }

                try
                {
                    if (File.Exists(_options.ApiSocket))
                    {
                        await Client.GetBgpAsync(new GetBgpRequest(), deadline: DateTime.UtcNow.AddSeconds(2), cancellationToken: deadline.Token);
                        break;
                    }
                }
                catch (RpcException e) when (e.StatusCode is StatusCode.Unavailable or StatusCode.DeadlineExceeded)
                {
                }

                await Task.Delay(TimeSpan.FromMilliseconds(100), _time, deadline.Token);
            }

            await _configure(Client, deadline.Token);
        }
        catch (OperationCanceledException) when (!stopping.IsCancellationRequested)
        {
            throw new TimeoutException($"gobgpd did not answer on {_options.ApiSocket} and take its configuration within {_options.StartTimeout.TotalSeconds:0} s");
        }
    }

    /// <summary>SIGTERM (gobgpd sends the router a Cease and exits), SIGKILL after the grace; no restart after this.</summary>
    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) == 1)
        {
            return;
        }

        _stopping.Cancel();
        if (_current is { } process)
        {
            await process.StopAsync(_options.StopGrace);
        }

        await _supervising;
        if (_current is { } startedMeanwhile)
        {
            await startedMeanwhile.StopAsync(_options.StopGrace);
        }

        _launcher.Dispose();
        _channel.Dispose();
        _stopping.Dispose();
        if (File.Exists(_options.ApiSocket))
        {
            File.Delete(_options.ApiSocket);
        }

        try
        {
            Directory.Delete(System.IO.Path.GetDirectoryName(_options.ApiSocket)!); // the folder StartAsync made, once empty
        }
        catch (IOException)
        {
            // gone already, or something else was put there: left as it is
        }
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "gobgpd (pid {Pid}) is up and configured, API on {Socket}")]
    private static partial void LogUp(ILogger logger, int pid, string socket);

    [LoggerMessage(Level = LogLevel.Warning, Message = "gobgpd could not be brought up ({Reason}); killed, to be started again")]
    private static partial void LogBringUpFailed(ILogger logger, string reason);

    [LoggerMessage(Level = LogLevel.Warning, Message = "gobgpd (pid {Pid}) exited with {ExitCode}; starting it again in {Seconds} s. Its last output:\n{Tail}")]
    private static partial void LogDied(ILogger logger, int pid, int exitCode, double seconds, string tail);
}
