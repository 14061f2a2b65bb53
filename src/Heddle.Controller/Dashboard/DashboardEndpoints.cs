using Heddle.Controller.Api;
using Heddle.Controller.Store;
using Heddle.Controller.Trust;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.DependencyInjection;

namespace Heddle.Controller.Dashboard;

/// <summary>
/// The dashboard: server-rendered pages on the API port (same TLS), signed in with an API token kept in a cookie
/// (HttpOnly, Secure over TLS, SameSite=Strict), one small script for live updates. A tenant's token sees what the API
/// shows it: its own services and events, the cores its instances hold (other tenants' cores only as taken).
/// </summary>
internal static class DashboardEndpoints
{
    /// <summary>The header the page script sends to get only a page's live part (its &lt;main&gt;), not the whole page.</summary>
    public const string FragmentHeader = "X-Heddle-Fragment";

    private const long MaxFormBytes = 16 * 1024;

    public static void Map(WebApplication app)
    {
        var tokens = app.Services.GetRequiredService<Tokens>();
        app.Use(async (context, next) =>
        {
            // Every dashboard answer: nothing cached, framed, sniffed or sent elsewhere; scripts and styles from here only.
            if (IsDashboardPath(context.Request.Path))
            {
                var headers = context.Response.Headers;
                headers.CacheControl = "no-store";
                headers.XContentTypeOptions = "nosniff";
                headers["Referrer-Policy"] = "same-origin"; // not "no-referrer": with it a browser sends "Origin: null" on the sign-in form, which the origin check refuses
                headers.ContentSecurityPolicy = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";
            }

            await next(context);
        });

        app.MapGet("/login", (HttpContext context, string? next) => Results.Content(SignIn.Page(next, null), "text/html; charset=utf-8"));
        app.MapPost("/login", (Delegate)((HttpContext context) => SignIn.PostAsync(context, tokens)));
        app.MapPost("/logout", (Delegate)((HttpContext context) => SignIn.SignOut(context)));
        app.MapGet(DashboardAssets.ScriptPath, () => Results.Text(DashboardAssets.Script, "text/javascript; charset=utf-8"));
        app.MapGet(DashboardAssets.StylePath, () => Results.Text(DashboardAssets.Style, "text/css; charset=utf-8"));
        app.MapGet(DashboardAssets.IconPath, () => Results.Text(DashboardAssets.Icon, "image/svg+xml"));

        app.Use(async (context, next) =>
        {
            // The caller is known before the endpoint's parameters are bound (they take it), so this is middleware.
            if (!IsDashboardPath(context.Request.Path) || IsPublic(context.Request.Path))
            {
                await next(context);
                return;
            }

            if (SignIn.CallerOf(context, tokens) is not { } caller)
            {
                var page = HttpMethods.IsGet(context.Request.Method) && !context.Request.Path.StartsWithSegments("/ui");
                await (page ? Results.Redirect($"/login?next={Html.Url(context.Request.Path + context.Request.QueryString)}") : Problems.Unauthorized(false)).ExecuteAsync(context);
                return;
            }

            context.Items[typeof(Caller)] = caller;
            await next(context);
        });
        var pages = app;
        pages.MapGet("/", (HttpContext context, Caller caller, PageData data, int? page, string? fd) =>
            Render(context, caller, data, "Cluster", "/", ClusterPage.Render(data.Store, caller, fd, page ?? 1)));
        pages.MapGet("/services", (HttpContext context, Caller caller, PageData data) =>
            Render(context, caller, data, "Services", "/services", ServicesPage.Render(data, caller)));
        pages.MapGet("/services/{name}", (HttpContext context, Caller caller, PageData data, string name, string? slot) =>
            ServicePage.Find(data, caller, name, slot) is { } service
                ? Render(context, caller, data, $"Service {service.DnsName}", "/services", ServicePage.Render(data, caller, service))
                : Render(context, caller, data, "No such service", "/services", ServicePage.Missing(data, caller, name, slot), StatusCodes.Status404NotFound));
        pages.MapGet("/events", (HttpContext context, Caller caller, PageData data, string? service, string? kind) =>
            Render(context, caller, data, "Events", "/events", EventsPage.Render(data, caller, service, kind)));
        pages.MapGet("/control-plane", async (HttpContext context, Caller caller, PageData data, CancellationToken cancellationToken) =>
            Render(context, caller, data, "Control plane", "/control-plane", await ControlPlanePage.RenderAsync(data, caller, cancellationToken)));
        pages.MapGet("/ui/live", (HttpContext context, OpenedStore store, Microsoft.Extensions.Hosting.IHostApplicationLifetime lifetime) => LiveUpdates.StreamAsync(context, store.Cluster, lifetime));
        pages.MapGet("/ui/logs/{service}/{role}/{index:int}", (HttpContext context, string service, string role, int index, Caller caller, IClusterStore store, IHttpClientFactory clients) =>
            Logs.ProxyAsync(context, service, role, index, caller, store, clients));
    }

    /// <summary>The dashboard's own paths: everything on the API port that is not the API, the metrics or the agents'.</summary>
    internal static bool IsDashboardPath(PathString path) =>
        !path.StartsWithSegments("/v1") && !path.StartsWithSegments("/agent") && !path.StartsWithSegments("/metrics") && !path.StartsWithSegments("/heddle.agents.v1.AgentService");

    private static bool IsPublic(PathString path) =>
        path == "/login" || path == "/logout" || path == DashboardAssets.ScriptPath || path == DashboardAssets.StylePath || path == DashboardAssets.IconPath;

    /// <summary>A page, or with <see cref="FragmentHeader"/> only its live part (what the script swaps in on a change).</summary>
    private static IResult Render(HttpContext context, Caller caller, PageData data, string title, string section, Page page, int status = StatusCodes.Status200OK)
    {
        var fragment = context.Request.Headers[FragmentHeader] == "live";
        var body = fragment ? page.Live : Layout.Render(title, section, caller, page, data.Version);
        return Results.Content(body, "text/html; charset=utf-8", statusCode: status);
    }

    /// <summary>Dashboard forms are a few short fields: anything bigger is refused before it is read.</summary>
    internal static void LimitForm(HttpContext context)
    {
        if (context.Features.Get<IHttpMaxRequestBodySizeFeature>() is { IsReadOnly: false } limit)
        {
            limit.MaxRequestBodySize = MaxFormBytes;
        }
    }
}

/// <summary>What a page renders: controls the live updates leave alone (filters, a log tail), and the live part.</summary>
/// <param name="Follow">"balancers" when the page shows the balancers, whose records change with every heartbeat.</param>
internal sealed record Page(string Live, string Controls = "", string After = "", string? Follow = null);
