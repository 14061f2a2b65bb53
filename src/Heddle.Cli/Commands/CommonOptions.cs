using System.CommandLine;

namespace Heddle.Cli.Commands;

internal static class CommonOptions
{
    /// <summary><c>-o text|json</c>, the output format every reporting command accepts.</summary>
    public static Option<string> Format()
    {
        var option = new Option<string>("--output", "-o") { Description = "Output format: text or json", DefaultValueFactory = _ => "text" };
        option.AcceptOnlyFromAmong("text", "json");
        return option;
    }

    public static string RequireExistingFile(string path, string what)
    {
        if (!File.Exists(path))
        {
            throw new UsageException(Directory.Exists(path) ? $"{what} '{path}' is a folder, not a file" : $"{what} '{path}' does not exist");
        }

        return path;
    }

    public static string FormatBytes(long bytes) => bytes switch
    {
        < 1024 => $"{bytes} B",
        < 1024 * 1024 => $"{bytes / 1024.0:0.0} KiB",
        < 1024L * 1024 * 1024 => $"{bytes / (1024.0 * 1024):0.0} MiB",
        _ => $"{bytes / (1024.0 * 1024 * 1024):0.00} GiB",
    };
}
