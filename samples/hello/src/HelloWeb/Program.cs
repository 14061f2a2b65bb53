// The sample web role. Heddle tells it who it is and where to listen through HEDDLE_* variables; on SIGHUP it
// re-reads its settings from heddle-instance.json (for roles declared with `onSettingsChange: signal`).
using System.Runtime.InteropServices;
using System.Text.Json;

var instance = Environment.GetEnvironmentVariable("HEDDLE_INSTANCE") ?? "hello/web/local";
var address = Environment.GetEnvironmentVariable("HEDDLE_ADDRESS") ?? "127.0.0.1";
var port = Environment.GetEnvironmentVariable("HEDDLE_PORT_HTTP") ?? "8080";
var greeting = Environment.GetEnvironmentVariable("HEDDLE_SETTING_GREETING") ?? "hello";

using var reload = PosixSignalRegistration.Create(PosixSignal.SIGHUP, context =>
{
    context.Cancel = true;
    try
    {
        using var description = JsonDocument.Parse(File.ReadAllText("heddle-instance.json"));
        if (description.RootElement.GetProperty("settings").TryGetProperty("Greeting", out var value) && value.GetString() is { } text)
        {
            greeting = text;
        }

        Console.WriteLine($"{instance} reloaded its settings on SIGHUP: Greeting={greeting}");
    }
    catch (Exception e) when (e is IOException or JsonException or KeyNotFoundException)
    {
        Console.Error.WriteLine($"{instance} could not reload heddle-instance.json: {e.Message}");
    }
});

var builder = WebApplication.CreateSlimBuilder(args);
builder.WebHost.UseUrls($"http://{address}:{port}");
builder.Logging.SetMinimumLevel(LogLevel.Warning);
var app = builder.Build();

app.MapGet("/", () => Results.Text($"{Volatile.Read(ref greeting)} from {instance}\n"));
app.MapGet("/health", () => Results.Text("ok\n"));

app.Lifetime.ApplicationStarted.Register(() => Console.WriteLine($"{instance} listening on http://{address}:{port}"));
app.Run();
