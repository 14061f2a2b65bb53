using System.Diagnostics;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace Heddle.Controller.Hosting;

/// <summary>
/// Logs an API call that took longer than <see cref="Threshold"/> to answer (as Kubernetes' API server traces a slow
/// request), with how much of that time the whole process was paused for garbage collection and the steps the call's
/// code marked (<see cref="RequestTrace"/>). Followed streams and
/// uploads are long by nature and are not told. With <see cref="StallWatch"/> it separates "this call was slow" from
/// "the controller was stalled".
/// </summary>
public static partial class SlowRequests
{
    public static readonly TimeSpan Threshold = TimeSpan.FromSeconds(1);

    public static void Use(WebApplication app)
    {
        var logger = app.Services.GetRequiredService<ILoggerFactory>().CreateLogger(typeof(SlowRequests).FullName!);
        app.Use(async (context, next) =>
        {
            if (!context.Request.Path.StartsWithSegments("/v1") || context.Request.ContentLength > ApiMiddleware.MaxJsonBodyBytes)
            {
                await next(context);
                return;
            }

            var started = Stopwatch.GetTimestamp();
            var paused = GC.GetTotalPauseDuration();
            var trace = RequestTrace.Begin();
            await next(context);
            var elapsed = Stopwatch.GetElapsedTime(started);
            if (elapsed >= Threshold && !IsStream(context))
            {
                var steps = trace.ToString();
                LogSlow(logger, context.Request.Method, context.Request.Path.Value, context.Response.StatusCode, elapsed.TotalMilliseconds,
                    (GC.GetTotalPauseDuration() - paused).TotalMilliseconds, steps.Length == 0 ? string.Empty : $"; {steps}");
            }
        });
    }

    private static bool IsStream(HttpContext context) =>
        context.Request.Query["follow"] == "true" || context.Response.ContentType?.StartsWith("text/event-stream", StringComparison.Ordinal) == true;

    [LoggerMessage(Level = LogLevel.Warning, Message = "{Method} {Path} took {ElapsedMs:0} ms to answer {Status} ({PausedMs:0} ms of it the process was paused for garbage collection{Steps})")]
    private static partial void LogSlow(ILogger logger, string method, string? path, int status, double elapsedMs, double pausedMs, string steps);
}
