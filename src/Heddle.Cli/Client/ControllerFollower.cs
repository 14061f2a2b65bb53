using Heddle.Contracts.Api;

namespace Heddle.Cli.Client;

/// <summary>
/// Feeds a data plane on its own host from a controller stream: every whole view is applied as it comes; a lost
/// controller is retried with backoff (0.2 s doubling to 3 s) while the data plane keeps serving its last view.
/// </summary>
internal static class ControllerFollower
{
    public static async Task RunAsync<T>(string what, Func<CancellationToken, IAsyncEnumerable<T>> follow, Func<T, Task> apply, CliConsole console, CancellationToken ct)
    {
        var backoff = TimeSpan.FromMilliseconds(200);
        while (!ct.IsCancellationRequested)
        {
            try
            {
                await foreach (var view in follow(ct))
                {
                    await apply(view);
                    backoff = TimeSpan.FromMilliseconds(200);
                }
            }
            catch (OperationCanceledException) when (ct.IsCancellationRequested)
            {
                return;
            }
            catch (Exception e) when (e is HeddleApiException or IOException or HttpRequestException)
            {
                console.Error.WriteLine($"heddle {what}: lost the controller ({e.Message}); serving the last configuration, retrying in {backoff.TotalSeconds:0.#} s");
            }

            try
            {
                await Task.Delay(backoff, ct);
            }
            catch (OperationCanceledException)
            {
                return;
            }

            backoff = TimeSpan.FromTicks(Math.Min(TimeSpan.FromSeconds(3).Ticks, backoff.Ticks * 2));
        }
    }

    /// <summary>
    /// A client of the controller from options (URL, token file, CA file), the token else from --token or $HEDDLE_TOKEN, and each one
    /// still missing from the client configuration.
    /// </summary>
    public static HeddleApiClient Connect(string? controller, string? tokenFile, string? caFile)
    {
        var variable = ClientConfig.TokenOverride;
        var configured = controller is null || (tokenFile is null && variable is null) || caFile is null ? ClientConfig.Load() : null;
        var urls = controller is not null ? controller.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).Select(u => new Uri(u)).ToList() : configured!.ApiUrls;
        var token = tokenFile is not null ? File.ReadAllText(Commands.CommonOptions.RequireExistingFile(tokenFile, "token file")).Trim() : variable ?? configured!.Token;
        var ca = caFile is not null ? File.ReadAllText(Commands.CommonOptions.RequireExistingFile(caFile, "CA certificate file")) : configured!.CaCertificatePem;
        return new ClientConfig(urls[0], token, ca) { ApiUrls = urls }.Connect();
    }
}
