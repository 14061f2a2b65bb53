using Heddle.Controller.Trust;

namespace Heddle.Controller.Dashboard;

/// <summary>The frame every page shares: navigation, who is signed in, and the three parts of a <see cref="Page"/>.</summary>
internal static class Layout
{
    private static readonly (string Path, string Name)[] Sections =
        [("/", "Cluster"), ("/services", "Services"), ("/events", "Events"), ("/control-plane", "Control plane")];

    public static string Render(string title, string section, Caller caller, Page page, long version)
    {
        var html = new Html();
        html.Raw("<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width\">")
            .Open("title").Text($"{title} · Heddle").Close("title")
            .Raw($"<link rel=\"icon\" href=\"{DashboardAssets.IconPath}\"><link rel=\"stylesheet\" href=\"{DashboardAssets.StylePath}\"><script src=\"{DashboardAssets.ScriptPath}\" defer></script></head><body>")
            .Raw("<header><span class=\"brand\">Heddle</span><nav>");
        foreach (var (path, name) in Sections)
        {
            html.Tag("a", name, ("href", path), ("class", path == section ? "here" : null));
        }

        html.Raw("</nav><span class=\"who\">").Text(caller.IsAdmin ? "admin" : $"tenant {caller.Tenant}")
            .Raw("</span><span id=\"connection\" class=\"connection\" title=\"live updates\"></span>")
            .Raw("<form method=\"post\" action=\"/logout\"><button type=\"submit\">Sign out</button></form></header>")
            .Open("h1").Text(title).Close("h1")
            .Raw("<div id=\"controls\">").Raw(page.Controls).Raw("</div>")
            .Open("main", ("id", "live"), ("data-version", version.ToString(System.Globalization.CultureInfo.InvariantCulture)), ("data-follow", page.Follow)).Raw(page.Live).Close("main")
            .Raw("<div id=\"after\">").Raw(page.After).Raw("</div>")
            .Raw("</body></html>");
        return html.ToString();
    }
}
