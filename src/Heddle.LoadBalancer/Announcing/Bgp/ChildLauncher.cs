using System.Collections.Concurrent;
using System.Diagnostics;

namespace Heddle.LoadBalancer.Announcing.Bgp;

/// <summary>
/// Starts child processes that die with this process: each is run under `setpriv --pdeathsig KILL`, so a balancer
/// killed with -9 takes its gobgpd along (the router sees the session close and withdraws the routes at once) instead
/// of leaving it announcing VIPs nobody serves. The kernel sends that signal when the *thread* that forked the child
/// exits, not the process, and thread-pool threads come and go; so every start happens on one thread of ours that
/// lives until <see cref="Dispose"/> (which therefore also kills whatever it started and is still running).
/// </summary>
internal sealed class ChildLauncher : IDisposable
{
    private const string Setpriv = "/usr/bin/setpriv";

    private readonly BlockingCollection<(ProcessStartInfo Start, TaskCompletionSource<Process> Started)> _requests = new();
    private readonly Thread _thread;

    public ChildLauncher()
    {
        _thread = new Thread(Run) { IsBackground = true, Name = "heddle child launcher" };
        _thread.Start();
    }

    /// <summary>Whether children die with this process (setpriv found); without it a killed balancer leaves gobgpd running.</summary>
    public static bool TiesLifetimes => File.Exists(Setpriv);

    /// <summary>Starts <paramref name="program"/> with <paramref name="args"/>, its output redirected (the caller must read it).</summary>
    public Task<Process> StartAsync(string program, IEnumerable<string> args)
    {
        var start = new ProcessStartInfo(TiesLifetimes ? Setpriv : program)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = false,
            UseShellExecute = false,
        };
        foreach (var arg in (IEnumerable<string>)(TiesLifetimes ? ["--pdeathsig", "KILL", "--", program, .. args] : args))
        {
            start.ArgumentList.Add(arg);
        }

        var started = new TaskCompletionSource<Process>(TaskCreationOptions.RunContinuationsAsynchronously);
        _requests.Add((start, started));
        return started.Task;
    }

    private void Run()
    {
        foreach (var (start, started) in _requests.GetConsumingEnumerable())
        {
            try
            {
                started.SetResult(Process.Start(start) ?? throw new InvalidOperationException($"{start.FileName} did not start"));
            }
            catch (Exception e)
            {
                started.SetException(e);
            }
        }
    }

    public void Dispose()
    {
        _requests.CompleteAdding();
        _thread.Join();
        _requests.Dispose();
    }
}
