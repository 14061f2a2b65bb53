using Heddle.Testing;

namespace Heddle.EndToEnd.Tests;

/// <summary>The heddle executable built beside these tests, run as a user would run it.</summary>
public static class Heddle
{
    public static string Executable => Path.Combine(AppContext.BaseDirectory, "heddle");

    public static ProcessResult Run(params string[] args) => ProcessRunner.Run(Executable, args, TimeSpan.FromSeconds(120));

    public static ProcessResult Run(IReadOnlyDictionary<string, string> environment, params string[] args) =>
        ProcessRunner.Run(Executable, args, TimeSpan.FromSeconds(120), environment: environment);
}
