using System.CommandLine;

namespace Heddle.Cli.Commands;

/// <summary>A busy-polling flag (`--lb-busy-poll-us`): microseconds, 0 to 1000.</summary>
internal static class BusyPoll
{
    public static Option<int> Option(string name, string what)
    {
        var option = new Option<int>(name)
        {
            Description = $"Microseconds {what} with nothing left to do keeps polling before it sleeps (0: sleep at once, least CPU; default 20)",
            DefaultValueFactory = _ => 20,
        };
        option.Validators.Add(r =>
        {
            var value = r.GetValueOrDefault<int>();
            if (value < 0 || value > 1000)
            {
                r.AddError($"{name} must be between 0 and 1000 microseconds, not {value}");
            }
        });
        return option;
    }
}
