using Heddle.Agent.Drivers;
using Heddle.Agent.Isolation;
using Heddle.Testing;

namespace Heddle.Agent.Tests.Isolation;

/// <summary>
/// Instance mount namespaces made by an agent that runs in a mount namespace of its own (a container, a systemd
/// machine), on a mount that propagates (systemd makes / shared). Linux 6.18 gives namespaces ids from per-CPU batches,
/// and mount(2) binds a namespace only when its id is above the binder's own: a namespace made on the wrong CPU is
/// refused (EINVAL), as the systemd test met it. The agent's namespace is made here on each CPU in turn, and the
/// instances' namespaces first on another CPU, so the refusal is met whenever the kernel hands ids out so.
/// </summary>
public sealed class InstanceMountsTests : IDisposable
{
    private const ulong MsShared = 1 << 20;
    private readonly TempDirectory _directory = new("heddle-mounts-");

    public InstanceMountsTests()
    {
        Assert.True(Posix.IsRoot, "the isolation tests run as root, as CI does");
        Assert.Null(Posix.Mount("tmpfs", _directory.Path, "tmpfs", 0, "size=16m"));
        Assert.Null(Posix.Mount(null, _directory.Path, null, MsShared, null));
    }

    public void Dispose()
    {
        Posix.UnmountAll(_directory.Path);
        _directory.Dispose();
    }

    [Fact]
    public void Ensure_ByAnAgentInANamespaceOfItsOwn_OnEveryCpu_EveryInstanceBound()
    {
        var cpus = Posix.AllowedCpus();
        Assert.NotEmpty(cpus);
        foreach (var cpu in cpus.Take(4))
        {
            var instances = Enumerable.Range(0, 8).Select(i => _directory.Combine($"cpu{cpu}-i{i}")).ToList();
            foreach (var instance in instances)
            {
                Directory.CreateDirectory(InstanceMounts.Tmp(instance));
            }

            // The "agent": a thread whose namespace is made on this CPU, then moved to the next CPU, where the instances'
            // namespaces are first made (a new thread inherits its maker's CPUs). Its namespace and every mount made in
            // it go when the thread ends.
            var failures = new List<string>();
            var agent = new Thread(() =>
            {
                if (!Posix.PinThread(cpu) || Posix.UnshareMountNamespace() is { } cannot || !Posix.PinThread(cpus[(cpus.ToList().IndexOf(cpu) + 1) % cpus.Count]))
                {
                    failures.Add($"cannot make the agent's namespace on CPU {cpu}");
                    return;
                }

                foreach (var instance in instances)
                {
                    try
                    {
                        InstanceMounts.Ensure(instance, 8);
                        if (Posix.MountTypeAt(InstanceMounts.File(instance)) != "nsfs")
                        {
                            failures.Add($"{instance}: no namespace bound after Ensure");
                        }

                        InstanceMounts.Ensure(instance, 8); // made already: kept as it is
                    }
                    catch (IOException e)
                    {
                        failures.Add($"{instance}: {e.Message}");
                    }
                }

                foreach (var instance in instances)
                {
                    InstanceMounts.Remove(instance);
                }
            }) { IsBackground = true };
            agent.Start();
            Assert.True(agent.Join(TimeSpan.FromSeconds(60)), "the agent's thread did not finish");
            Assert.True(failures.Count == 0, $"agent's namespace made on CPU {cpu}:\n{string.Join('\n', failures)}");
        }
    }
}
