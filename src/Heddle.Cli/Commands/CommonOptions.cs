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

    /// <summary>A text file the CLI reads whole (a configuration, a cluster file) may be at most this large.</summary>
    public const long MaxTextFileBytes = 1 << 20;

    public static string RequireExistingFile(string path, string what)
    {
        if (!File.Exists(path))
        {
            throw new UsageException(Directory.Exists(path) ? $"{what} '{path}' is a folder, not a file" : $"{what} '{path}' does not exist");
        }

        return path;
    }

    /// <summary>Reads a text file that must be small (a configuration): refused past <see cref="MaxTextFileBytes"/>, whatever it claims.</summary>
    public static string ReadSmallText(string path, string what)
    {
        using var stream = File.OpenRead(RequireExistingFile(path, what));
        var buffer = new byte[MaxTextFileBytes + 1];
        var read = 0;
        int n;
        while (read < buffer.Length && (n = stream.Read(buffer, read, buffer.Length - read)) > 0)
        {
            read += n;
        }

        if (read > MaxTextFileBytes)
        {
            throw new UsageException($"{what} '{path}' is larger than {FormatBytes(MaxTextFileBytes)}; a {what} is a few lines");
        }

        return System.Text.Encoding.UTF8.GetString(buffer, 0, read);
    }

    public static string FormatBytes(long bytes) => bytes switch
    {
        < 1024 => $"{bytes} B",
        < 1024 * 1024 => $"{bytes / 1024.0:0.0} KiB",
        < 1024L * 1024 * 1024 => $"{bytes / (1024.0 * 1024):0.0} MiB",
        _ => $"{bytes / (1024.0 * 1024 * 1024):0.00} GiB",
    };
}
