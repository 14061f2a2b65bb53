using System.Diagnostics;
using System.Net.Sockets;
using Heddle.Agent.Drivers;
using Heddle.Testing;

namespace Heddle.EndToEnd.Tests;

/// <summary>
/// `heddle controller` runs with a young-generation budget of at least 16 MiB (DOTNET_GCgen0size), set by starting itself again before any
/// work: the same pid, the same arguments, the runtime's diagnostics port still reachable; a value the operator set is kept.
/// </summary>
public sealed class GcBudgetEndToEndTests : IDisposable
{
    private readonly TempDirectory _state = new("heddle-gcbudget-e2e-");

    public void Dispose() => _state.Dispose();

    [Fact]
    public async Task Controller_RunsWithTheYoungGenerationBudget_AsTheSamePid_WithItsDiagnosticsPortReachable()
    {
        await WhileRunningAsync(null, async (pid, environment) =>
        {
            Assert.Contains("DOTNET_GCgen0size=0x1000000", environment);
            Assert.Equal("heddle", File.ReadAllText($"/proc/{pid}/comm").Trim()); // its name in ps and pgrep, as before
            var socket = Assert.Single(Directory.GetFiles(Path.GetTempPath(), $"dotnet-diagnostic-{pid}-*-socket"));
            using var client = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
            await client.ConnectAsync(new UnixDomainSocketEndPoint(socket)); // dotnet-counters and dotnet-trace connect here
            // What the first runtime had open is not left to the second: no more open files than a controller started once.
            var open = Directory.GetFiles($"/proc/{pid}/fd").Length;
            await WhileRunningAsync("0", (once, _) =>
            {
                Assert.InRange(open, 0, Directory.GetFiles($"/proc/{once}/fd").Length + 5);
                return Task.CompletedTask;
            });
        });
    }

    [Fact]
    public async Task Controller_KeepsABudgetTheOperatorSet()
    {
        await WhileRunningAsync("0", (_, environment) =>
        {
            Assert.Contains("DOTNET_GCgen0size=0", environment);
            Assert.DoesNotContain("DOTNET_GCgen0size=0x1000000", environment);
            return Task.CompletedTask;
        });
    }

    /// <summary>Starts a controller, waits for the line naming its pid, and checks the running process (its pid and environment).</summary>
    private async Task WhileRunningAsync(string? budget, Func<int, string[], Task> check)
    {
        var start = new ProcessStartInfo(Heddle.Executable) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var arg in new[] { "controller", "--state", _state.Combine($"controller-{budget ?? "default"}-{Guid.NewGuid():N}"), "--no-dns", "--no-lb" })
        {
            start.ArgumentList.Add(arg);
        }

        start.Environment.Remove("DOTNET_GCgen0size");
        if (budget is not null)
        {
            start.Environment["DOTNET_GCgen0size"] = budget;
        }

        using var controller = Process.Start(start)!;
        var stderr = controller.StandardError.ReadToEndAsync();
        try
        {
            using var deadline = new CancellationTokenSource(TimeSpan.FromSeconds(60));
            string? line;
            while ((line = await controller.StandardOutput.ReadLineAsync(deadline.Token)) is not null && !line.StartsWith("controller ", StringComparison.Ordinal))
            {
            }

            if (line is null)
            {
                Assert.Fail($"the controller ended without saying where it listens: {await stderr}"); // its stderr ends only once it has ended
            }

            Assert.StartsWith($"controller {controller.Id}: ", line); // the pid it says is the one that was started
            await check(controller.Id, File.ReadAllText($"/proc/{controller.Id}/environ").Split('\0'));
        }
        finally
        {
            Posix.Signal(controller.Id, Posix.SIGTERM);
            if (!controller.WaitForExit(TimeSpan.FromSeconds(30)))
            {
                controller.Kill(entireProcessTree: true);
                await controller.WaitForExitAsync();
            }
        }
    }
}
