using Heddle.Controller.Api;
using Heddle.Controller.Trust;
using Microsoft.AspNetCore.Http;

namespace Heddle.Controller.Dashboard;

/// <summary>
/// Signing in to the dashboard with an API token. The token is kept in a cookie the page's script cannot read
/// (HttpOnly), sent only over TLS when the controller serves TLS (Secure, and the <c>__Host-</c> prefix so no other
/// host or path can set it), and never on a request another site starts (SameSite=Strict). A revoked or expired token
/// signs the browser out at its next request: the token is checked on every one, as the API checks it.
/// </summary>
internal static class SignIn
{
    private const string SecureCookie = "__Host-heddle-token";
    private const string PlainCookie = "heddle-token";

    public static Caller? CallerOf(HttpContext context, Tokens tokens)
    {
        var token = context.Request.Cookies[CookieName(context.Request)];
        return string.IsNullOrEmpty(token) || token.Length > 512 ? null : tokens.Authenticate("Bearer " + token);
    }

    public static async Task<IResult> PostAsync(HttpContext context, Tokens tokens)
    {
        if (!SameOrigin(context.Request))
        {
            return Problems.Forbidden("a sign-in must come from the dashboard's own page");
        }

        DashboardEndpoints.LimitForm(context);
        IFormCollection form;
        try
        {
            form = await context.Request.ReadFormAsync(context.RequestAborted);
        }
        catch (Exception e) when (e is InvalidDataException or BadHttpRequestException or IOException)
        {
            return Problems.Invalid(Heddle.Contracts.Api.ProblemTypes.InvalidRequest, "Bad sign-in form", $"the sign-in form could not be read: {e.Message}");
        }

        var token = form["token"].ToString().Trim();
        var next = form["next"].ToString();
        if (token.Length is 0 or > 512 || tokens.Authenticate("Bearer " + token) is null)
        {
            var why = token.Length == 0
                ? "Enter an API token."
                : "That token was not accepted: it is unknown, revoked or expired, or it is a join token. Use an API token of this cluster ('heddle up' writes one to $HEDDLE_HOME/config.json; an admin makes more with 'heddle token create').";
            return Results.Content(Page(next, why), "text/html; charset=utf-8", statusCode: StatusCodes.Status401Unauthorized);
        }

        context.Response.Cookies.Append(CookieName(context.Request), token, Options(context.Request));
        return Results.Redirect(LocalPath(next), permanent: false, preserveMethod: false);
    }

    public static IResult SignOut(HttpContext context)
    {
        if (!SameOrigin(context.Request))
        {
            return Problems.Forbidden("a sign-out must come from the dashboard's own page");
        }

        context.Response.Cookies.Delete(CookieName(context.Request), Options(context.Request));
        return Results.Redirect("/login");
    }

    public static string Page(string? next, string? error)
    {
        var html = new Html();
        html.Raw("<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>Sign in · Heddle</title>")
            .Raw($"<link rel=\"icon\" href=\"{DashboardAssets.IconPath}\"><link rel=\"stylesheet\" href=\"{DashboardAssets.StylePath}\"></head><body class=\"sign-in\"><form method=\"post\" action=\"/login\">")
            .Raw("<h1>Heddle</h1><label for=\"token\">API token</label>")
            .Raw("<input id=\"token\" name=\"token\" type=\"password\" autocomplete=\"off\" autofocus required maxlength=\"512\">")
            .Open("input", ("type", "hidden"), ("name", "next"), ("value", LocalPath(next)));
        if (error is not null)
        {
            html.Tag("p", error, ("class", "error"), ("role", "alert"));
        }

        return html.Raw("<button type=\"submit\">Sign in</button></form></body></html>").ToString();
    }

    /// <summary>Where to go after signing in: a path of this dashboard only (never another site, nor "//host").</summary>
    internal static string LocalPath(string? next) =>
        next is { Length: > 0 and < 2048 } && next[0] == '/' && !next.StartsWith("//", StringComparison.Ordinal) && !next.Contains('\\')
            && next.All(c => c >= ' ' && c < 127)
            ? next
            : "/";

    /// <summary>A form posted by another site's page carries its Origin: refused (a browser always sends Origin on a POST).</summary>
    private static bool SameOrigin(HttpRequest request)
    {
        var origin = request.Headers.Origin.ToString();
        return origin.Length == 0 || string.Equals(origin, $"{request.Scheme}://{request.Host}", StringComparison.OrdinalIgnoreCase);
    }

    private static string CookieName(HttpRequest request) => request.IsHttps ? SecureCookie : PlainCookie;

    private static CookieOptions Options(HttpRequest request) => new()
    {
        HttpOnly = true, Secure = request.IsHttps, SameSite = SameSiteMode.Strict, Path = "/", IsEssential = true,
    };
}
