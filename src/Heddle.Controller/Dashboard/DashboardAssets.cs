namespace Heddle.Controller.Dashboard;

/// <summary>The page script and style sheet, built into the controller: nothing is fetched from elsewhere, so the dashboard works offline.</summary>
internal static class DashboardAssets
{
    public const string ScriptPath = "/ui/dashboard.js";

    public const string StylePath = "/ui/dashboard.css";

    public const string IconPath = "/ui/heddle.svg";

    /// <summary>A heddle's eye: threads through a frame. Served so the browser does not ask for /favicon.ico.</summary>
    public const string Icon = "<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 16 16\"><rect x=\"1\" y=\"1\" width=\"14\" height=\"14\" rx=\"3\" fill=\"#1d232b\"/><path d=\"M4 3v10M8 3v10M12 3v10\" stroke=\"#7fb3ff\" stroke-width=\"1.5\"/><rect x=\"6.5\" y=\"6\" width=\"3\" height=\"4\" rx=\"1\" fill=\"#fff\"/></svg>";

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
