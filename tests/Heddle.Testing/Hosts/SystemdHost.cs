using System.Diagnostics;

namespace Heddle.Testing.Hosts;

/// <summary>
/// A Debian machine booted with a real systemd as its PID 1, in namespaces of its own (PID, mount, UTS, IPC, network
/// with loopback alone, cgroup) over a root file system made by mmdebstrap once per machine and shared read-only
/// through an overlay, so each test starts from a fresh copy. Its cgroups are a subtree of this machine's
/// (/sys/fs/cgroup/CONTROLLER/heddle-sd-ID), which systemd and whatever it starts manage as their whole tree.
/// Disposing kills its PID 1 (so every process in it), and removes the cgroups and folders. Needs root.
/// </summary>
public sealed class SystemdHost : IAsyncDisposable
{
    /// <summary>What the root file system holds beyond minbase: systemd, what the heddle package depends on, and a shell's tools.</summary>
    private const string Packages = "systemd,systemd-sysv,dbus,adduser,libssl3,e2fsprogs,util-linux,mount,iproute2,ca-certificates,procps";

    private static readonly string[] Controllers = ["systemd", "cpu", "cpuacct", "cpuset", "memory", "pids", "devices", "freezer", "blkio", "unified"];
    private static readonly Lock Gate = new();

    private readonly TempDirectory _work;
    private readonly Process _process;
    private readonly string _cgroup;

    private SystemdHost(TempDirectory work, Process process, string cgroup, int pid)
    {
        _work = work;
        _process = process;
        _cgroup = cgroup;
        Pid = pid;
    }

    /// <summary>Its PID 1, as this machine sees it.</summary>
    public int Pid { get; }

    /// <summary>Whether this machine can boot one: root, mmdebstrap, unshare, nsenter and cgroup v1 with a name=systemd hierarchy.</summary>
    public static bool Supported => Environment.UserName == "root" && File.Exists("/usr/bin/mmdebstrap") && File.Exists("/usr/bin/unshare")
        && Directory.Exists("/sys/fs/cgroup/systemd") && Directory.Exists("/sys/fs/cgroup/cpuset");

    /// <summary>
    /// Boots a machine; <paramref name="prepare"/> is a shell script run in its root (chrooted) before systemd starts,
    /// with <paramref name="files"/> copied into its /root first (a package to install, say).
    /// </summary>
    public static async Task<SystemdHost> BootAsync(string prepare, params string[] files)
    {
        if (!Supported)
        {
            throw new InvalidOperationException("booting a systemd machine needs root, mmdebstrap, unshare and cgroup v1 with a name=systemd hierarchy");
        }

        var root = BaseRoot();
        var work = new TempDirectory("heddle-systemd-");
        var id = Path.GetFileName(work.Path);
        var cgroup = $"heddle-sd-{id}";
        foreach (var controller in Controllers)
        {
            var path = $"/sys/fs/cgroup/{controller}/{cgroup}";
            Directory.CreateDirectory(path);
            if (controller == "cpuset")
            {
                // A cpuset takes no process before it has CPUs and memory nodes: its parent's.
                File.WriteAllText(Path.Combine(path, "cpuset.cpus"), File.ReadAllText("/sys/fs/cgroup/cpuset/cpuset.cpus").Trim());
                File.WriteAllText(Path.Combine(path, "cpuset.mems"), File.ReadAllText("/sys/fs/cgroup/cpuset/cpuset.mems").Trim());
            }
        }

        foreach (var file in files)
        {
            Directory.CreateDirectory(work.Combine("files"));
            File.Copy(file, Path.Combine(work.Combine("files"), Path.GetFileName(file)));
        }

        File.WriteAllText(work.Combine("prepare.sh"), prepare);
        var merged = work.Combine("merged");
        foreach (var dir in new[] { "upper", "work", "merged" })
        {
            Directory.CreateDirectory(work.Combine(dir));
        }

        // Joins its cgroups, then unshares (the cgroup namespace's root is where it stands), then mounts in its own
        // mount namespace (gone with it): the overlay, /proc, /sys read-only, its cgroups as the whole tree, /run, /dev.
        var joins = string.Join('\n', Controllers.Select(c => $"echo $$ > /sys/fs/cgroup/{c}/{cgroup}/cgroup.procs"));
        var mounts = string.Join('\n', Controllers.Select(c => $"mkdir -p $R/sys/fs/cgroup/{c}; mount --bind /sys/fs/cgroup/{c}/{cgroup} $R/sys/fs/cgroup/{c}"));
        var inner = $"""
            set -e
            R={merged}
            mount -t overlay overlay -o lowerdir={root},upperdir={work.Combine("upper")},workdir={work.Combine("work")} $R
            mount -t proc proc $R/proc
            mount --rbind /dev $R/dev
            mount -t tmpfs tmpfs $R/run
            mount -t tmpfs tmpfs $R/tmp
            mkdir -p $R/root/files
            if [ -d {work.Combine("files")} ]; then cp -a {work.Combine("files")}/. $R/root/files/; fi
            cp {work.Combine("prepare.sh")} $R/root/prepare.sh
            ip link set lo up
            chroot $R /bin/sh -e /root/prepare.sh
            mount -t sysfs -o ro sysfs $R/sys
            mount -t tmpfs tmpfs $R/sys/fs/cgroup
            {mounts}
            # pivot_root, not chroot: the kernel refuses a chrooted process a user namespace, which the agent gives instances.
            cd $R
            mkdir -p .oldroot
            pivot_root . .oldroot
            umount -l /.oldroot
            exec /usr/bin/env container=heddle-test /lib/systemd/systemd --log-target=console --log-level=notice
            """;
        File.WriteAllText(work.Combine("inner.sh"), inner);
        File.WriteAllText(work.Combine("outer.sh"), $"""
            {joins}
            exec unshare --pid --fork --mount --uts --ipc --net --cgroup --propagation private /bin/sh {work.Combine("inner.sh")}
            """);
        var start = new ProcessStartInfo("/bin/sh", [work.Combine("outer.sh")]) { RedirectStandardOutput = true, RedirectStandardError = true };
        var process = Process.Start(start)!;
        var output = new System.Text.StringBuilder();
        process.OutputDataReceived += (_, e) => { lock (output) { output.AppendLine(e.Data); } };
        process.ErrorDataReceived += (_, e) => { lock (output) { output.AppendLine(e.Data); } };
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        var host = new SystemdHost(work, process, cgroup, 0);
        try
        {
            // PID 1 of the new namespace is the one process of its cgroup whose command is systemd.
            var pid = await Poll.UntilAsync(() => Task.FromResult(SystemdPid(cgroup)), p => p > 0 || process.HasExited, TimeSpan.FromMinutes(3), "systemd to start");
            if (pid <= 0)
            {
                throw new InvalidOperationException($"the machine did not boot: {output}");
            }

            host = new SystemdHost(work, process, cgroup, pid);
            var state = await Poll.UntilAsync(() => host.RunAsync("systemctl", "is-system-running"), r => r.Stdout.Trim() is "running" or "degraded",
                TimeSpan.FromMinutes(2), "systemd to finish booting");
            return host;
        }
        catch
        {
            await host.DisposeAsync();
            throw;
        }
    }

    /// <summary>Runs a program inside the machine (all its namespaces and its root) to completion.</summary>
    public Task<ProcessResult> RunAsync(string program, params string[] args) =>
        Task.Run(() => ProcessRunner.Run("/usr/bin/nsenter", ["-t", Pid.ToString(), "-m", "-p", "-u", "-i", "-n", "-C", "-r", "-w", "--", program, .. args], TimeSpan.FromMinutes(2)));

    /// <summary>Runs a shell command inside the machine; fails the test with what it printed when it exits non-zero.</summary>
    public async Task<string> ShellAsync(string command)
    {
        var result = await RunAsync("/bin/sh", "-c", command);
        return result.ExitCode == 0 ? result.Stdout : throw new InvalidOperationException($"in the machine: {command}: {result}");
    }

    private static int SystemdPid(string cgroup)
    {
        // systemd moves itself into init.scope of its tree soon after it starts: every cgroup of the subtree is looked at.
        var top = $"/sys/fs/cgroup/systemd/{cgroup}";
        var lines = Directory.Exists(top)
            ? Directory.EnumerateFiles(top, "cgroup.procs", SearchOption.AllDirectories).SelectMany(f => { try { return File.ReadAllLines(f); } catch (IOException) { return []; } })
            : [];
        foreach (var line in lines)
        {
            if (int.TryParse(line, out var pid) && File.Exists($"/proc/{pid}/comm") && File.ReadAllText($"/proc/{pid}/comm").Trim() == "systemd")
            {
                return pid;
            }
        }

        return 0;
    }

    /// <summary>The shared root file system: made by mmdebstrap once per machine and package list, then only read.</summary>
    private static string BaseRoot()
    {
        var key = Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(System.Text.Encoding.UTF8.GetBytes(Packages)))[..12];
        var root = Path.Combine("/var/tmp", $"heddle-systemd-root-{key}");
        lock (Gate)
        {
            if (File.Exists(Path.Combine(root, ".complete")))
            {
                return root;
            }

            var partial = root + ".partial";
            if (Directory.Exists(partial))
            {
                Directory.Delete(partial, recursive: true);
            }

            var build = ProcessRunner.Run("/usr/bin/mmdebstrap", ["--variant=minbase", $"--include={Packages}", "bookworm", partial, "/etc/apt/sources.list.d/debian.sources"], TimeSpan.FromMinutes(10));
            if (build.ExitCode != 0)
            {
                throw new InvalidOperationException($"mmdebstrap could not make the machine's root: {build}");
            }

            // No console logins: this machine's terminals are the host's.
            foreach (var unit in new[] { "getty@tty1.service", "console-getty.service", "serial-getty@.service" })
            {
                File.CreateSymbolicLink(Path.Combine(partial, "etc", "systemd", "system", unit), "/dev/null");
            }

            File.WriteAllText(Path.Combine(partial, ".complete"), string.Empty);
            Directory.Move(partial, root);
            return root;
        }
    }

    public async ValueTask DisposeAsync()
    {
        if (Pid > 0)
        {
            Heddle.Agent.Drivers.Posix.Signal(Pid, Heddle.Agent.Drivers.Posix.SIGKILL); // PID 1 gone: the kernel kills the rest of the namespace
        }

        if (!_process.HasExited)
        {
            _process.Kill(entireProcessTree: true);
        }

        await _process.WaitForExitAsync();
        // Whatever was in its cgroups has gone with its PID namespace: remove them, deepest first.
        foreach (var controller in Controllers)
        {
            var top = $"/sys/fs/cgroup/{controller}/{_cgroup}";
            await Poll.UntilAsync(() => Task.FromResult(RemoveTree(top)), done => done, TimeSpan.FromSeconds(30), $"{top} removed");
        }

        _work.Dispose();
    }

    private static bool RemoveTree(string top)
    {
        if (!Directory.Exists(top))
        {
            return true;
        }

        try
        {
            foreach (var dir in Directory.EnumerateDirectories(top, "*", SearchOption.AllDirectories).OrderByDescending(d => d.Length).Append(top))
            {
                Directory.Delete(dir);
            }

            return true;
        }
        catch (IOException)
        {
            return false; // a process still leaving it
        }
    }
}
