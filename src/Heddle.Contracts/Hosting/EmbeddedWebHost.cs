using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace Heddle.Contracts.Hosting;

/// <summary>
/// The one way Heddle's processes make an ASP.NET Core host: Kestrel and routing, configured in code by the caller,
/// and nothing read from the environment around it.
/// </summary>
/// <remarks>
/// <c>WebApplication.CreateSlimBuilder()</c>, used before, reads <c>appsettings*.json</c> from the content root (the
/// working directory), <c>ASPNETCORE_*</c> and <c>DOTNET_*</c> variables, and watches the content root for changes with
/// a FileSystemWatcher over the whole tree beneath it: one inotify watch per folder. Started from / (as systemd starts
/// Heddle's units) one `heddle dns` held 45,005 watches and spent 4 s of CPU adding them, and under `heddle up` every
/// line any process logged beneath the working directory woke every process. A stray appsettings.json could also
/// have changed Kestrel's endpoints. Heddle is configured by its flags alone.
/// </remarks>
public static class EmbeddedWebHost
{
    public static WebApplicationBuilder CreateBuilder()
    {
        var builder = WebApplication.CreateEmptyBuilder(new WebApplicationOptions());
        builder.WebHost.UseKestrelCore();
        builder.Services.AddRoutingCore();
        builder.Logging.ClearProviders();
        return builder;
    }
}
