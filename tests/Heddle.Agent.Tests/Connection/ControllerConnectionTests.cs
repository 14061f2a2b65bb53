using System.Collections.Concurrent;
using System.Threading.Channels;
using Grpc.Core;
using Heddle.Agent.Connection;
using Heddle.Contracts.Agents;
using Heddle.Testing;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Time.Testing;

namespace Heddle.Agent.Tests.Connection;

/// <summary>
/// The agent's stream to its controllers, on a fake clock and a fake transport (each controller a hand-written gRPC call
/// invoker): what it says in its Hello, what it does with goal states, when it gives up on a silent controller and tries
/// the next, and how long it waits between rounds of controllers that cannot be reached or refuse the node.
/// </summary>
public sealed class ControllerConnectionTests : IAsyncDisposable
{
    private static readonly Uri First = new("https://198.18.0.1:7001/");
    private static readonly Uri Second = new("https://198.18.0.2:7001/");
    private static readonly TimeSpan Deadline = TimeSpan.FromSeconds(10);

    private readonly FakeTimeProvider _time = new(new DateTimeOffset(2026, 12, 5, 8, 0, 0, TimeSpan.Zero));
    private readonly DateTimeOffset _start;
    private readonly Dictionary<Uri, FakeController> _controllers = new() { [First] = new(), [Second] = new() };
    private readonly FakeTarget _target = new();
    private readonly CancellationTokenSource _stop = new();
    private Task _running = Task.CompletedTask;

    public ControllerConnectionTests() => _start = _time.GetUtcNow();

    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync();
        await _running.WaitAsync(Deadline);
        _stop.Dispose();
    }

    [Fact]
    public async Task RunAsync_SaysHelloWithTheNodeAndItsInstances_ThenAppliesTheGoalStatesSent()
    {
        _target.Instances = [new InstanceReport { InstanceId = "shop/web/0", State = "Ready" }];
        var connection = Start(First);
        var first = _controllers[First];
        var hello = await UntilAsync(() => first.Hellos.FirstOrDefault(), "a Hello to the controller");

        first.Send(new ControllerMessage { Goal = new GoalState { Version = 7 } });

        Assert.Equal("n1", hello.Hello.Node.Name);
        Assert.Equal("shop/web/0", Assert.Single(hello.Hello.Instances).InstanceId);
        Assert.True(hello.Hello.TakesPeerChanges);
        Assert.True(hello.Hello.TakesInstanceChanges);
        Assert.Equal(7, (await UntilAsync(() => _target.Applied.LastOrDefault(), "the goal state applied")).Version);
        Assert.True(connection.Connected);
    }

    [Theory]
    [InlineData(false)] // it accepts the Hello and says nothing
    [InlineData(true)] // its host went silent before the connection was made: the Hello's write hangs
    public async Task RunAsync_ControllerSilentOrHelloWriteHangs_MovesToTheNextAfterFiveSeconds(bool helloHangs)
    {
        _controllers[First].HangHello = helloHangs;
        var connection = Start(First, Second);
        await UntilAsync(() => _controllers[First].Hellos.FirstOrDefault(), "a Hello to the first controller");

        var moved = await AdvanceUntilAsync(() => _controllers[Second].Hellos.FirstOrDefault(), TimeSpan.FromSeconds(1), "a Hello to the second controller");
        Assert.True(moved.At - _start > TimeSpan.FromSeconds(5), $"moved after {(moved.At - _start).TotalSeconds} s");
        Assert.Equal(Second, connection.Current);
    }

    [Fact]
    public async Task RunAsync_ControllerKeepsTalking_StaysWithIt()
    {
        var connection = Start(First, Second);
        var first = _controllers[First];
        await UntilAsync(() => first.Hellos.FirstOrDefault(), "a Hello to the first controller");

        for (var second = 1; second <= 20; second++)
        {
            first.Send(new ControllerMessage { Keepalive = new Keepalive() });
            await UntilAsync(() => first.Consumed >= second ? (object)true : null, $"keepalive {second} read");
            _time.Advance(TimeSpan.FromSeconds(1));
        }

        Assert.Single(first.Hellos);
        Assert.Empty(_controllers[Second].Hellos);
        Assert.Equal(First, connection.Current);
    }

    [Fact]
    public async Task RunAsync_SingleControllerSilent_WaitsFifteenSecondsBeforeSayingHelloAgain()
    {
        Start(First);
        var first = _controllers[First];
        await UntilAsync(() => first.Hellos.FirstOrDefault(), "a Hello");

        var again = await AdvanceUntilAsync(() => first.Hellos.Skip(1).FirstOrDefault(), TimeSpan.FromSeconds(1), "a second Hello");
        Assert.True(again.At - _start > TimeSpan.FromSeconds(15), $"said Hello again after {(again.At - _start).TotalSeconds} s");
    }

    [Fact]
    public async Task RunAsync_NoControllerReachable_TriesEachInTurnAtOnce_ThenWaitsBeforeTheNextRound()
    {
        _controllers[First].Fail = () => new RpcException(new Status(StatusCode.Unavailable, "no route to host"));
        _controllers[Second].Fail = () => new RpcException(new Status(StatusCode.Unavailable, "no route to host"));
        Start(First, Second);

        var second = await UntilAsync(() => _controllers[Second].Hellos.FirstOrDefault(), "a try of the second controller");
        Assert.Equal(_start, second.At); // no wait between the controllers of a round
        Assert.Single(_controllers[First].Hellos);

        var again = await AdvanceUntilAsync(() => _controllers[First].Hellos.Skip(1).FirstOrDefault(), TimeSpan.FromMilliseconds(20), "a second round");
        Assert.True(again.At - _start >= ReconnectBackoff.Initial / 2, $"tried again after {(again.At - _start).TotalMilliseconds} ms");
    }

    [Fact]
    public async Task RunAsync_ControllerRefusesTheNode_TriesAgainOnlyAfterTheLongestWait()
    {
        _controllers[First].Fail = () => new RpcException(new Status(StatusCode.PermissionDenied, "certificate revoked"));
        Start(First); // fence after 4 s: the longest wait is 1 s
        await UntilAsync(() => _controllers[First].Hellos.FirstOrDefault(), "a first try");

        var again = await AdvanceUntilAsync(() => _controllers[First].Hellos.Skip(1).FirstOrDefault(), TimeSpan.FromMilliseconds(50), "a second try");
        Assert.True(again.At - _start >= TimeSpan.FromMilliseconds(500), $"tried again after {(again.At - _start).TotalMilliseconds} ms, not within half of the longest wait");
    }

    private ControllerConnection Start(params Uri[] controllers)
    {
        var options = new AgentOptions
        {
            ControllerAgentUrl = controllers[0], OtherControllerUrls = controllers[1..], NodeName = "n1", StateDirectory = "/nonexistent",
            FenceAfter = TimeSpan.FromSeconds(4),
        };

        // The identity is only for the TLS channel the fake transport stands in for.
        var connection = new ControllerConnection(options, new NodeInfo { Name = "n1" }, identity: null!, NullLogger.Instance, _time)
        {
            Transport = url => (_controllers[url].Invoker(_time), new Disposable()),
        };
        _running = Task.Run(() => connection.RunAsync(_target, _stop.Token));
        return connection;
    }

    /// <summary>
    /// Moves the agent's clock on a step at a time until <paramref name="found"/> says what was waited for happened (a
    /// minute of the agent's time at most), giving the agent a moment of real time after each step to act on its timers.
    /// </summary>
    private async Task<T> AdvanceUntilAsync<T>(Func<T?> found, TimeSpan step, string what)
        where T : class =>
        (await Poll.UntilAsync(() =>
        {
            if (found() is { } value)
            {
                return Task.FromResult<T?>(value);
            }

            Assert.True(_time.GetUtcNow() - _start < TimeSpan.FromMinutes(1), $"not within a minute of the agent's time: {what}");
            _time.Advance(step);
            return Task.FromResult<T?>(null);
        }, value => value is not null, Deadline, what, every: TimeSpan.FromMilliseconds(10)))!;

    private static async Task<T> UntilAsync<T>(Func<T?> found, string what)
        where T : class =>
        (await Poll.UntilAsync(() => Task.FromResult(found()), value => value is not null, Deadline, what, every: TimeSpan.FromMilliseconds(5)))!;

    private sealed class Disposable : IDisposable
    {
        public void Dispose()
        {
        }
    }

    private sealed class FakeTarget : IGoalStateTarget
    {
        public IReadOnlyList<InstanceReport> Instances { get; set; } = [];

        public ConcurrentQueue<GoalState> Applied { get; } = new();

        public IReadOnlyList<InstanceReport> Reports() => Instances;

        public void Apply(GoalState goal) => Applied.Enqueue(goal);
    }

    /// <summary>One controller: the Hellos it was sent (with the agent's clock then), and what it sends down the newest stream.</summary>
    private sealed class FakeController
    {
        private volatile Channel<ControllerMessage>? _down;
        private int _consumed;

        public sealed record Received(DateTimeOffset At, Hello Hello);

        public ConcurrentQueue<Received> Hellos { get; } = new();

        /// <summary>What the Hello's write throws (the controller cannot be reached, or refuses the node); null: it is taken.</summary>
        public Func<Exception>? Fail { get; set; }

        /// <summary>The Hello's write never finishes (until the agent gives up on it).</summary>
        public bool HangHello { get; set; }

        /// <summary>How many messages the agent has read.</summary>
        public int Consumed => Volatile.Read(ref _consumed);

        public void Send(ControllerMessage message) => _down!.Writer.TryWrite(message);

        public CallInvoker Invoker(TimeProvider time) => new Calls(this, time);

        private sealed class Calls(FakeController controller, TimeProvider time) : CallInvoker
        {
            public override AsyncDuplexStreamingCall<TRequest, TResponse> AsyncDuplexStreamingCall<TRequest, TResponse>(Method<TRequest, TResponse> method, string? host, CallOptions options)
            {
                var stream = new Stream(controller, time, options.CancellationToken);
                controller._down = stream.Down;
                return new AsyncDuplexStreamingCall<TRequest, TResponse>((IClientStreamWriter<TRequest>)(object)stream, (IAsyncStreamReader<TResponse>)(object)stream,
                    Task.FromResult(new Metadata()), () => Status.DefaultSuccess, () => [], () => { });
            }

            public override TResponse BlockingUnaryCall<TRequest, TResponse>(Method<TRequest, TResponse> method, string? host, CallOptions options, TRequest request) =>
                throw new NotSupportedException();

            public override AsyncUnaryCall<TResponse> AsyncUnaryCall<TRequest, TResponse>(Method<TRequest, TResponse> method, string? host, CallOptions options, TRequest request) =>
                throw new NotSupportedException();

            public override AsyncServerStreamingCall<TResponse> AsyncServerStreamingCall<TRequest, TResponse>(Method<TRequest, TResponse> method, string? host, CallOptions options, TRequest request) =>
                throw new NotSupportedException();

            public override AsyncClientStreamingCall<TRequest, TResponse> AsyncClientStreamingCall<TRequest, TResponse>(Method<TRequest, TResponse> method, string? host, CallOptions options) =>
                throw new NotSupportedException();
        }

        private sealed class Stream(FakeController controller, TimeProvider time, CancellationToken call) : IClientStreamWriter<AgentMessage>, IAsyncStreamReader<ControllerMessage>
        {
            public Channel<ControllerMessage> Down { get; } = Channel.CreateUnbounded<ControllerMessage>();

            public WriteOptions? WriteOptions { get; set; }

            public ControllerMessage Current { get; private set; } = new();

            public Task CompleteAsync() => Task.CompletedTask;

            public Task WriteAsync(AgentMessage message) => WriteAsync(message, CancellationToken.None);

            public async Task WriteAsync(AgentMessage message, CancellationToken cancellationToken)
            {
                if (message.Hello is { } hello)
                {
                    controller.Hellos.Enqueue(new Received(time.GetUtcNow(), hello));
                    if (controller.Fail is { } fail)
                    {
                        throw fail();
                    }

                    if (controller.HangHello)
                    {
                        using var either = CancellationTokenSource.CreateLinkedTokenSource(call, cancellationToken);
                        await Task.Delay(Timeout.Infinite, either.Token);
                    }
                }
            }

            public async Task<bool> MoveNext(CancellationToken cancellationToken)
            {
                using var either = CancellationTokenSource.CreateLinkedTokenSource(call, cancellationToken);
                if (!await Down.Reader.WaitToReadAsync(either.Token) || !Down.Reader.TryRead(out var message))
                {
                    return false;
                }

                Current = message;
                Interlocked.Increment(ref controller._consumed);
                return true;
            }
        }
    }
}
