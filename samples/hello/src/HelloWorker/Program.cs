// The sample worker role: does a small piece of work on a timer and stops cleanly on SIGTERM.
using System.Runtime.InteropServices;

var instance = Environment.GetEnvironmentVariable("HEDDLE_INSTANCE") ?? "hello/worker/local";
var interval = int.TryParse(Environment.GetEnvironmentVariable("HEDDLE_SETTING_INTERVALSECONDS"), out var seconds) && seconds > 0 ? seconds : 5;

using var stopping = new CancellationTokenSource();
using var sigterm = PosixSignalRegistration.Create(PosixSignal.SIGTERM, context =>
{
    context.Cancel = true;
    stopping.Cancel();
});

Console.WriteLine($"{instance} started, working every {interval}s");
var ticks = 0;
using var timer = new PeriodicTimer(TimeSpan.FromSeconds(interval));
try
{
    while (await timer.WaitForNextTickAsync(stopping.Token))
    {
        Console.WriteLine($"{instance} tick {++ticks} at {DateTimeOffset.UtcNow:O}");
    }
}
catch (OperationCanceledException)
{
}

Console.WriteLine($"{instance} stopping after {ticks} ticks");
