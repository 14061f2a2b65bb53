namespace Heddle.Controller.Dashboard;

/// <summary>The page script and style sheet, built into the controller: nothing is fetched from elsewhere, so the dashboard works offline.</summary>
internal static class DashboardAssets
{
    public const string ScriptPath = "/ui/dashboard.js";

    public const string StylePath = "/ui/dashboard.css";

    public static readonly string Script = Read("dashboard.js");

    public static readonly string Style = Read("dashboard.css");

    private static string Read(string name)
    {
        using var stream = typeof(DashboardAssets).Assembly.GetManifestResourceStream($"Heddle.Controller.Dashboard.{name}")
            ?? throw new InvalidOperationException($"the dashboard's {name} is not built into {typeof(DashboardAssets).Assembly.GetName().Name}");
        using var reader = new StreamReader(stream);
        return reader.ReadToEnd();
    }
}
