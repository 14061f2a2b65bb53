using System.Runtime.InteropServices;

namespace Heddle.Testing.Hosts;

/// <summary>
/// Runs code of the test process itself in a host's network namespace, for what is tested through sockets of its own
/// (an ARP responder) rather than by starting a program there. A new thread enters the namespace with setns (on Linux a
/// thread's network namespace is its own), runs the code, and goes back to the namespace it came from before it
/// completes the task, so no thread of the pool is ever created in, or continues in, a host's namespace. Sockets and
/// /proc/sys/net files opened by the code are the host's and stay so from any thread; a thread the code starts is in
/// the host's namespace for its whole life (stop it before the bed is disposed). The code must not wait for tasks: their
/// continuations would run elsewhere, outside the namespace.
/// </summary>
public static class HostThread
{
    private const int CloneNewNet = 0x40000000;
    private const int OpenReadOnlyCloseOnExec = 0x80000;

    public static Task<T> InNamespaceAsync<T>(this TestHost host, Func<T> work)
    {
        var done = new TaskCompletionSource<T>(TaskCreationOptions.RunContinuationsAsynchronously);
        var thread = new Thread(() =>
        {
            T? result = default;
            Exception? failure = null;
            var own = open("/proc/thread-self/ns/net", OpenReadOnlyCloseOnExec);
            var target = open(host.NamespacePath, OpenReadOnlyCloseOnExec);
            try
            {
                if (own < 0 || target < 0 || setns(target, CloneNewNet) != 0)
                {
                    failure = new InvalidOperationException($"cannot enter {host.NamespacePath}: {Marshal.GetPInvokeErrorMessage(Marshal.GetLastPInvokeError())}");
                }
                else
                {
                    try
                    {
                        result = work();
                    }
                    catch (Exception e)
                    {
                        failure = e;
                    }

                    if (setns(own, CloneNewNet) != 0)
                    {
                        failure = new InvalidOperationException($"cannot leave {host.NamespacePath}: {Marshal.GetPInvokeErrorMessage(Marshal.GetLastPInvokeError())}");
                    }
                }
            }
            finally
            {
                close(own);
                close(target);
            }

            if (failure is null)
            {
                done.SetResult(result!);
            }
            else
            {
                done.SetException(failure);
            }
        })
        {
            IsBackground = true,
            Name = $"netns {host.Name}",
        };
        thread.Start();
        return done.Task;
    }

    public static Task InNamespaceAsync(this TestHost host, Action work) => host.InNamespaceAsync(() =>
    {
        work();
        return true;
    });

    // DllImport, as TestBed's: this project does not compile unsafe code, which LibraryImport's generated code is.
    [DllImport("libc", SetLastError = true)]
    private static extern int open(string path, int flags);

    [DllImport("libc", SetLastError = true)]
    private static extern int setns(int fd, int type);

    [DllImport("libc")]
    private static extern int close(int fd);
}
