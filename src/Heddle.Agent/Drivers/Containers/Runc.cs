using System.Diagnostics;
using System.Text.Json;

namespace Heddle.Agent.Drivers.Containers;

/// <summary>
/// The `runc` command, with this agent's own state folder (`--root`), so agents sharing a machine never see each
/// other's containers. Every call but <see cref="Run"/> waits for runc (at most 30 s on the agent's clock) and returns
/// its exit code and error text; the driver's own paths wait without a thread (<see cref="CallAsync"/>), the few
/// synchronous members of the driver interface (adoption, clean-up) block as before.
/// </summary>
internal sealed class Runc(string binary, string stateRoot, TimeProvider time)
{
    private static readonly TimeSpan CallTimeout = TimeSpan.FromSeconds(30);

    public string StateRoot => stateRoot;

    /// <summary>
    /// Starts `runc run --keep` (in the foreground: runc stays the container's parent, so the agent learns its exit code
    /// the moment it ends, and it lives on in a session of its own when the agent exits). Its output, the container's,
    /// goes straight to the instance's log files; the container's pid is written to <paramref name="pidFile"/>.
    /// </summary>
    public Process Run(string id, string bundle, string pidFile, string stdout, string stderr)
    {
        var start = new ProcessStartInfo(HostPrograms.Setsid) { UseShellExecute = false, WorkingDirectory = bundle };
        start.ArgumentList.Add(HostPrograms.Shell);
        start.ArgumentList.Add("-c");
        start.ArgumentList.Add("exec \"$0\" \"$@\" >>" + ProcessDriver.Quote(stdout) + " 2>>" + ProcessDriver.Quote(stderr) + " </dev/null");
        foreach (var arg in new[] { binary, "--root", stateRoot, "run", "--keep", "--bundle", bundle, "--pid-file", pidFile, id })
        {
            start.ArgumentList.Add(arg);
        }

        start.Environment.Clear();
        start.Environment["PATH"] = HostPrograms.SafePath;
        return Process.Start(start) ?? throw new InvalidOperationException("runc did not start");
    }

    public (int Code, string Output, string Error) Call(params string[] args)
    {
        using var process = Start(args);
        var output = process.StandardOutput.ReadToEndAsync();
        var error = process.StandardError.ReadToEndAsync();
        if (!process.WaitForExit(CallTimeout))
        {
            process.Kill();
            return (-1, string.Empty, TimedOut(args));
        }

        process.WaitForExit();
        return (process.ExitCode, output.Result, error.Result.Trim());
    }

    /// <summary><see cref="Call"/> without blocking a thread while runc runs.</summary>
    public async Task<(int Code, string Output, string Error)> CallAsync(params string[] args)
    {
        using var process = Start(args);
        var output = process.StandardOutput.ReadToEndAsync();
        var error = process.StandardError.ReadToEndAsync();
        using var timeout = new CancellationTokenSource(CallTimeout, time);
        try
        {
            await process.WaitForExitAsync(timeout.Token); // and for its output to end
        }
        catch (OperationCanceledException)
        {
            process.Kill();
            return (-1, string.Empty, TimedOut(args));
        }

        return (process.ExitCode, await output, (await error).Trim());
    }

    private Process Start(string[] args)
    {
        var start = new ProcessStartInfo(binary) { UseShellExecute = false, RedirectStandardError = true, RedirectStandardOutput = true };
        start.ArgumentList.Add("--root");
        start.ArgumentList.Add(stateRoot);
        foreach (var arg in args)
        {
            start.ArgumentList.Add(arg);
        }

        return Process.Start(start) ?? throw new InvalidOperationException("runc did not start");
    }

    private static string TimedOut(string[] args) => $"runc {string.Join(' ', args)} did not finish in {CallTimeout.TotalSeconds:0} s";

    /// <summary>Whether runc has state for the container (created, running or stopped but not deleted).</summary>
    public bool Knows(string id) => Directory.Exists(Path.Combine(stateRoot, id));

    /// <summary>`runc state`: the container's status ("running", "stopped", ...) and pid; null when runc has no such container.</summary>
    public (string Status, int Pid)? State(string id)
    {
        if (!Knows(id))
        {
            return null;
        }

        var (code, output, _) = Call("state", id);
        if (code != 0)
        {
            return null;
        }

        using var json = JsonDocument.Parse(output);
        return (json.RootElement.GetProperty("status").GetString() ?? "unknown", json.RootElement.GetProperty("pid").GetInt32());
    }

    public async Task KillAsync(string id, string signal)
    {
        if (Knows(id))
        {
            await CallAsync("kill", id, signal);
        }
    }

    /// <summary>`runc delete --force`: removes the container's state and cgroups (killing it first if it still runs).</summary>
    public string? Delete(string id)
    {
        if (!Knows(id))
        {
            return null;
        }

        var (code, _, error) = Call("delete", "--force", id);
        return code == 0 || !Knows(id) ? null : error;
    }

    /// <summary><see cref="Delete"/> without blocking a thread.</summary>
    public async Task<string?> DeleteAsync(string id)
    {
        if (!Knows(id))
        {
            return null;
        }

        var (code, _, error) = await CallAsync("delete", "--force", id);
        return code == 0 || !Knows(id) ? null : error;
    }
}
