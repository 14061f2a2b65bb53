// The sample web role. Heddle tells it who it is and where to listen through HEDDLE_* variables.
var instance = Environment.GetEnvironmentVariable("HEDDLE_INSTANCE") ?? "hello/web/local";
var address = Environment.GetEnvironmentVariable("HEDDLE_ADDRESS") ?? "127.0.0.1";
var port = Environment.GetEnvironmentVariable("HEDDLE_PORT_HTTP") ?? "8080";
var greeting = Environment.GetEnvironmentVariable("HEDDLE_SETTING_GREETING") ?? "hello";

var builder = WebApplication.CreateSlimBuilder(args);
builder.WebHost.UseUrls($"http://{address}:{port}");
builder.Logging.SetMinimumLevel(LogLevel.Warning);
var app = builder.Build();

app.MapGet("/", () => Results.Text($"{greeting} from {instance}\n"));
app.MapGet("/health", () => Results.Text("ok\n"));

app.Lifetime.ApplicationStarted.Register(() => Console.WriteLine($"{instance} listening on http://{address}:{port}"));
app.Run();
