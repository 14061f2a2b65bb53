namespace Heddle.Testing.Hosts;

/// <summary>iproute2 and tc, run to completion with a deadline; a failure says the command and what it printed.</summary>
internal static class Ip
{
    public static async Task<ProcessResult> TryRunAsync(params string[] args) => await ToolAsync("/usr/sbin/ip", args);

    public static async Task RunAsync(params string[] args) => Check("ip", args, await TryRunAsync(args));

    /// <summary>A program run inside a host's network namespace (and only that: /sys and the cgroup hierarchies stay the machine's).</summary>
    public static Task<ProcessResult> InAsync(string netns, string program, string[] args, TimeSpan? deadline = null, IReadOnlyDictionary<string, string>? environment = null) =>
        ToolAsync("/usr/bin/nsenter", [$"--net={netns}", "--", program, .. args], deadline, environment);

    public static void Check(string what, string[] args, ProcessResult result)
    {
        if (result.ExitCode != 0)
        {
            throw new InvalidOperationException($"{what} {string.Join(' ', args)}: {result}");
        }
    }

    private static Task<ProcessResult> ToolAsync(string program, string[] args, TimeSpan? deadline = null, IReadOnlyDictionary<string, string>? environment = null) =>
        Task.Run(() => ProcessRunner.Run(program, args, deadline ?? TimeSpan.FromSeconds(30), environment: environment));
}
