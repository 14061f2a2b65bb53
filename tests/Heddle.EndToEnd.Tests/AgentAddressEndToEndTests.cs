using System.Diagnostics;
using System.Text.RegularExpressions;
using Heddle.Agent.Drivers;
using Heddle.Agent.Isolation;
using Heddle.Controller;
using Heddle.Testing;

namespace Heddle.EndToEnd.Tests;

/// <summary>`heddle agent` as an operator starts it: the address it chooses and says, the loopback rule, timestamped logs.</summary>
public sealed partial class AgentAddressEndToEndTests : IDisposable
{
    private readonly TempDirectory _state = new("heddle-agentaddr-e2e-");

    public void Dispose() => _state.Dispose();

    [GeneratedRegex(@"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z (info|warn|fail|crit|dbug|trce): ")]
    private static partial Regex Timestamped();

    [Fact]
    public async Task Agent_WithoutAddress_TakesTheRouteToTheControllerOnLoopback_SaysWhy_AndLogsWithTimestamps()
    {
        await using var controller = await ControllerHost.StartAsync(new ControllerOptions { StateDirectory = _state.Combine("controller") });
        var join = await controller.CreateJoinStringAsync(TimeSpan.FromMinutes(10));
        // As root the agent runs instances as other uids, which must pass through its state folder.
        File.SetUnixFileMode(_state.Path, StateFolders.PassThrough);
        var start = new ProcessStartInfo(Heddle.Executable) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var arg in new[] { "agent", "--controller", controller.AgentUrl.ToString(), "--name", "e2e-n1", "--log-port", "0", "--state", _state.Combine("agent"), "--no-cgroups", "--no-containers" })
        {
            start.ArgumentList.Add(arg);
        }

        start.Environment["HEDDLE_JOIN"] = join;
        using var agent = Process.Start(start)!;
        var lines = new List<string>();
        var stderr = agent.StandardError.ReadToEndAsync();
        try
        {
            var connected = await ReadUntilAsync(agent.StandardOutput, lines, l => l.Contains("Connected to the controller"), TimeSpan.FromSeconds(60));

            Assert.True(connected is not null, $"no 'Connected' line; stdout:\n{string.Join('\n', lines)}");
            Assert.Matches(Timestamped(), connected);
            Assert.Contains($"address 127.0.0.1: the local address of this host's route to the controller at {controller.AgentUrl} (127.0.0.1); give --address to choose another", lines);
            using var api = controller.Client();
            var node = await Poll.UntilAsync(async () => (await api.ListNodesAsync()).SingleOrDefault(), n => n?.Condition == "Ready", TimeSpan.FromSeconds(20), "e2e-n1 Ready");
            Assert.Equal("127.0.0.1", node!.Address);
        }
        finally
        {
            Posix.Signal(agent.Id, Posix.SIGTERM);
            if (!agent.WaitForExit(TimeSpan.FromSeconds(20)))
            {
                agent.Kill(entireProcessTree: true);
                await agent.WaitForExitAsync();
            }
        }
    }

    [Fact]
    public void Agent_WithALoopbackAddressAndAControllerElsewhere_IsRefusedWithASentence_BeforeSendingAnything()
    {
        var result = Heddle.Run("agent", "--controller", "https://198.18.0.1:7001", "--name", "e2e-n2", "--address", "127.0.0.1", "--state", _state.Combine("agent2"),
            "--join", "hjoin." + new string('a', 40) + "." + new string('b', 64));

        Assert.NotEqual(0, result.ExitCode);
        Assert.Contains("the node's address 127.0.0.1 is a loopback address, which only this host can reach, but the controller https://198.18.0.1:7001/ is at 198.18.0.1", result.Stderr);
        Assert.False(Directory.Exists(_state.Combine("agent2")), "the refused agent made its state folder");
    }

    private static async Task<string?> ReadUntilAsync(StreamReader reader, List<string> lines, Func<string, bool> found, TimeSpan deadline)
    {
        using var timeout = new CancellationTokenSource(deadline);
        try
        {
            while (await reader.ReadLineAsync(timeout.Token) is { } line)
            {
                lines.Add(line);
                if (found(line))
                {
                    return line;
                }
            }
        }
        catch (OperationCanceledException)
        {
        }

        return null;
    }
}
