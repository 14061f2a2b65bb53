using System.Runtime.InteropServices;
using System.Text.Json.Nodes;

namespace Heddle.Agent.Drivers.Containers;

/// <summary>One comparison of a syscall argument (OCI <c>linux.seccomp.syscalls[].args[]</c>).</summary>
/// <param name="Index">Which argument, from 0.</param>
/// <param name="Value">The value compared with; for <see cref="SeccompProfile.MaskedEqual"/> the mask.</param>
/// <param name="Op">An <c>SCMP_CMP_*</c> operator.</param>
/// <param name="ValueTwo">For <see cref="SeccompProfile.MaskedEqual"/>: what the masked argument must equal.</param>
internal sealed record SeccompArgument(uint Index, ulong Value, string Op, ulong ValueTwo = 0);

/// <summary>One rule: the action taken for these syscalls (when every argument comparison holds).</summary>
internal sealed record SeccompRule(IReadOnlyList<string> Names, string Action, uint? ErrnoRet = null, IReadOnlyList<SeccompArgument>? Args = null);

/// <summary>
/// The seccomp filter every container runs under: the OCI/Docker default for a container without CAP_SYS_ADMIN
/// (moby's profiles/seccomp/default.json as it applies to Heddle's containers, whose bounding set holds only
/// CAP_KILL). Anything not allowed fails with EPERM. Allowed: the ordinary syscalls of files, processes, memory,
/// signals, time, sockets and System V / POSIX IPC. Refused, among others: every way to make or enter a namespace
/// (unshare, setns, clone with a CLONE_NEW* flag — so no user namespace, and `unshare -Urm` fails), mount and
/// its new API, pivot_root, chroot, the kernel keyring (keyctl, add_key, request_key), bpf, perf_event_open,
/// userfaultfd, io_uring, ptrace and process_vm_*, kexec, modules, reboot, swap, quotas, setting the clock or
/// hostname, AF_ALG and AF_VSOCK sockets, and personality flags other than Linux's own. clone3 answers ENOSYS
/// (its flags sit in memory a filter cannot read), so libc falls back to clone, whose flags it can check.
/// Unlike Docker, ptrace and process_vm_readv/writev are refused on every kernel: nothing in an instance needs to
/// trace another process, and it keeps one more kernel surface closed.
/// Syscall names runc's libseccomp does not know (newer than it) are skipped by runc, and runc answers ENOSYS for
/// syscalls newer than any the filter names, so libc falls back to older ones.
/// </summary>
internal sealed record SeccompProfile(string DefaultAction, uint DefaultErrnoRet, IReadOnlyList<string> Architectures, IReadOnlyList<SeccompRule> Syscalls)
{
    public const string Allow = "SCMP_ACT_ALLOW";
    public const string Errno = "SCMP_ACT_ERRNO";
    public const string Equal = "SCMP_CMP_EQ";
    public const string LessThan = "SCMP_CMP_LT";
    public const string GreaterThan = "SCMP_CMP_GT";
    public const string MaskedEqual = "SCMP_CMP_MASKED_EQ";

    public const uint EPERM = 1;
    public const uint ENOSYS = 38;

    /// <summary>CLONE_NEWNS | CLONE_NEWCGROUP | CLONE_NEWUTS | CLONE_NEWIPC | CLONE_NEWUSER | CLONE_NEWPID | CLONE_NEWNET.</summary>
    public const ulong NamespaceFlags = 0x0002_0000 | 0x0200_0000 | 0x0400_0000 | 0x0800_0000 | 0x1000_0000 | 0x2000_0000 | 0x4000_0000;

    private const ulong AF_ALG = 38;
    private const ulong AF_VSOCK = 40;

    /// <summary>The profile for the machine the agent runs on (made on first use: it needs <see cref="Allowed"/>, initialised below).</summary>
    public static SeccompProfile Default => field ??= For(RuntimeInformation.OSArchitecture);

    /// <summary>The names allowed whatever their arguments, on every architecture (the ones an architecture lacks are ignored there).</summary>
    internal static readonly string[] Allowed =
    [
        // Files and folders: open, read, write, metadata, links, extended attributes, locks, watches.
        "access", "faccessat", "faccessat2", "open", "openat", "openat2", "creat", "close", "close_range",
        "read", "readv", "pread64", "preadv", "preadv2", "write", "writev", "pwrite64", "pwritev", "pwritev2",
        "lseek", "_llseek", "sendfile", "sendfile64", "splice", "tee", "vmsplice", "copy_file_range",
        "stat", "stat64", "lstat", "lstat64", "fstat", "fstat64", "fstatat64", "newfstatat", "statx", "statfs", "statfs64",
        "fstatfs", "fstatfs64", "getdents", "getdents64", "getcwd", "chdir", "fchdir",
        "mkdir", "mkdirat", "mknod", "mknodat", "rmdir", "rename", "renameat", "renameat2", "link", "linkat",
        "symlink", "symlinkat", "unlink", "unlinkat", "readlink", "readlinkat",
        "chmod", "fchmod", "fchmodat", "fchmodat2", "chown", "chown32", "fchown", "fchown32", "fchownat", "lchown", "lchown32", "umask",
        "truncate", "truncate64", "ftruncate", "ftruncate64", "fallocate", "fadvise64", "fadvise64_64", "readahead",
        "fsync", "fdatasync", "sync", "syncfs", "sync_file_range", "flock", "fcntl", "fcntl64", "ioctl",
        "dup", "dup2", "dup3", "pipe", "pipe2",
        "utime", "utimes", "utimensat", "utimensat_time64", "futimesat",
        "getxattr", "lgetxattr", "fgetxattr", "getxattrat", "setxattr", "lsetxattr", "fsetxattr", "setxattrat",
        "listxattr", "llistxattr", "flistxattr", "listxattrat", "removexattr", "lremovexattr", "fremovexattr", "removexattrat",
        "inotify_init", "inotify_init1", "inotify_add_watch", "inotify_rm_watch", "fanotify_mark",
        "name_to_handle_at", "cachestat", "statmount", "listmount",

        // Waiting for many things: poll, select, epoll, eventfd, signalfd, timerfd, asynchronous I/O.
        "poll", "ppoll", "ppoll_time64", "select", "_newselect", "pselect6", "pselect6_time64",
        "epoll_create", "epoll_create1", "epoll_ctl", "epoll_ctl_old", "epoll_wait", "epoll_wait_old", "epoll_pwait", "epoll_pwait2",
        "eventfd", "eventfd2", "signalfd", "signalfd4",
        "timerfd_create", "timerfd_settime", "timerfd_settime64", "timerfd_gettime", "timerfd_gettime64",
        "io_setup", "io_destroy", "io_submit", "io_cancel", "io_getevents", "io_pgetevents", "io_pgetevents_time64",

        // Processes and threads (clone and clone3 have rules of their own), identity, limits, scheduling.
        "fork", "vfork", "execve", "execveat", "exit", "exit_group", "wait4", "waitid", "waitpid",
        "getpid", "getppid", "gettid", "getpgid", "setpgid", "getpgrp", "getsid", "setsid",
        "getuid", "getuid32", "geteuid", "geteuid32", "getgid", "getgid32", "getegid", "getegid32",
        "getresuid", "getresuid32", "getresgid", "getresgid32", "getgroups", "getgroups32",
        "setuid", "setuid32", "setgid", "setgid32", "setreuid", "setreuid32", "setregid", "setregid32",
        "setresuid", "setresuid32", "setresgid", "setresgid32", "setgroups", "setgroups32",
        "setfsuid", "setfsuid32", "setfsgid", "setfsgid32", "capget", "capset",
        "getrlimit", "ugetrlimit", "setrlimit", "prlimit64", "getrusage", "getpriority", "setpriority",
        "sched_yield", "sched_getaffinity", "sched_setaffinity", "sched_getparam", "sched_setparam",
        "sched_getscheduler", "sched_setscheduler", "sched_getattr", "sched_setattr",
        "sched_get_priority_max", "sched_get_priority_min", "sched_rr_get_interval", "sched_rr_get_interval_time64",
        "ioprio_get", "ioprio_set", "getcpu", "prctl", "seccomp", "set_tid_address", "set_robust_list", "get_robust_list",
        "rseq", "membarrier", "get_thread_area", "set_thread_area", "restart_syscall", "uname", "sysinfo", "times",
        "pidfd_open", "pidfd_send_signal", "process_mrelease",
        "landlock_create_ruleset", "landlock_add_rule", "landlock_restrict_self",
        "uretprobe", "riscv_hwprobe", // the kernel's return-probe trampoline (x86_64); RISC-V's CPU feature query

        // Memory.
        "brk", "mmap", "mmap2", "munmap", "mremap", "mprotect", "madvise", "mincore", "msync", "remap_file_pages",
        "mlock", "mlock2", "mlockall", "munlock", "munlockall", "memfd_create", "memfd_secret", "mseal",
        "pkey_alloc", "pkey_free", "pkey_mprotect", "map_shadow_stack",

        // Futexes and signals.
        "futex", "futex_time64", "futex_waitv", "futex_wait", "futex_wake", "futex_requeue",
        "kill", "tkill", "tgkill", "rt_sigaction", "rt_sigprocmask", "rt_sigreturn", "rt_sigpending", "rt_sigsuspend",
        "rt_sigtimedwait", "rt_sigtimedwait_time64", "rt_sigqueueinfo", "rt_tgsigqueueinfo",
        "sigaltstack", "sigprocmask", "sigreturn", "pause",

        // Time (reading it, sleeping, timers; adjtimex and clock_adjtime only read without CAP_SYS_TIME).
        "time", "gettimeofday", "clock_gettime", "clock_gettime64", "clock_getres", "clock_getres_time64",
        "clock_nanosleep", "clock_nanosleep_time64", "nanosleep", "adjtimex", "clock_adjtime", "clock_adjtime64",
        "alarm", "getitimer", "setitimer",
        "timer_create", "timer_delete", "timer_getoverrun", "timer_gettime", "timer_gettime64", "timer_settime", "timer_settime64",

        // Sockets (socket itself has rules of its own) and randomness.
        "socketpair", "bind", "listen", "accept", "accept4", "connect", "shutdown", "getsockname", "getpeername",
        "getsockopt", "setsockopt", "send", "sendto", "sendmsg", "sendmmsg", "recv", "recvfrom", "recvmsg",
        "recvmmsg", "recvmmsg_time64", "socketcall", "getrandom",

        // System V and POSIX IPC (in the container's own ipc namespace).
        "ipc", "msgget", "msgsnd", "msgrcv", "msgctl", "semget", "semop", "semtimedop", "semtimedop_time64", "semctl",
        "shmget", "shmat", "shmdt", "shmctl",
        "mq_open", "mq_unlink", "mq_timedsend", "mq_timedsend_time64", "mq_timedreceive", "mq_timedreceive_time64",
        "mq_notify", "mq_getsetattr",
    ];

    /// <summary>The OCI architecture names a filter covers on this machine: its own and the ones its CPU can also run.</summary>
    public static IReadOnlyList<string> ArchitecturesOf(Architecture architecture) => architecture switch
    {
        Architecture.X64 => ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
        Architecture.Arm64 => ["SCMP_ARCH_AARCH64", "SCMP_ARCH_ARM"],
        _ => [], // the native architecture alone
    };

    public static SeccompProfile For(Architecture architecture)
    {
        var rules = new List<SeccompRule> { new(Allowed, Allow) };

        // socket: every address family but AF_ALG (the kernel's crypto API) and AF_VSOCK (the hypervisor's sockets).
        rules.Add(new(["socket"], Allow, Args: [new(0, AF_ALG, LessThan)]));
        rules.Add(new(["socket"], Allow, Args: [new(0, AF_ALG + 1, Equal)]));
        rules.Add(new(["socket"], Allow, Args: [new(0, AF_VSOCK, GreaterThan)]));

        // personality: Linux's own, with or without UNAME26 and READ_IMPLIES_EXEC cleared; 0xffffffff only asks.
        foreach (var persona in new ulong[] { 0x0, 0x0008, 0x2_0000, 0x2_0008, 0xffff_ffff })
        {
            rules.Add(new(["personality"], Allow, Args: [new(0, persona, Equal)]));
        }

        // The architecture's own calls.
        string[] own = architecture switch
        {
            Architecture.X64 => ["arch_prctl", "modify_ldt"],
            Architecture.X86 => ["modify_ldt"],
            Architecture.Arm64 or Architecture.Arm => ["arm_fadvise64_64", "arm_sync_file_range", "sync_file_range2", "breakpoint", "cacheflush", "set_tls"],
            _ => [],
        };
        if (own.Length > 0)
        {
            rules.Add(new(own, Allow));
        }

        // clone: new processes and threads, never new namespaces (its flags are its first argument but on s390).
        rules.Add(new(["clone"], Allow, Args: [new(0, NamespaceFlags, MaskedEqual, 0)]));

        // clone3: its flags are in memory a filter cannot read, so it is not there; libc then uses clone.
        rules.Add(new(["clone3"], Errno, ErrnoRet: ENOSYS));

        return new SeccompProfile(Errno, EPERM, ArchitecturesOf(architecture), rules);
    }

    /// <summary>The OCI <c>linux.seccomp</c> object (new nodes on every call: a JSON node has one parent).</summary>
    public JsonObject ToJson()
    {
        var syscalls = new JsonArray();
        foreach (var rule in Syscalls)
        {
            var json = new JsonObject { ["names"] = new JsonArray([.. rule.Names.Select(n => (JsonNode)JsonValue.Create(n))]), ["action"] = rule.Action };
            if (rule.ErrnoRet is { } errno)
            {
                json["errnoRet"] = errno;
            }

            if (rule.Args is { Count: > 0 } args)
            {
                json["args"] = new JsonArray([.. args.Select(a => (JsonNode)new JsonObject { ["index"] = a.Index, ["value"] = a.Value, ["valueTwo"] = a.ValueTwo, ["op"] = a.Op })]);
            }

            syscalls.Add(json);
        }

        return new JsonObject
        {
            ["defaultAction"] = DefaultAction,
            ["defaultErrnoRet"] = DefaultErrnoRet,
            ["architectures"] = new JsonArray([.. Architectures.Select(a => (JsonNode)JsonValue.Create(a))]),
            ["syscalls"] = syscalls,
        };
    }
}
