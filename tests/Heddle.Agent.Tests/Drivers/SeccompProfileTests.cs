using System.Runtime.InteropServices;
using System.Text.Json.Nodes;
using Heddle.Agent.Drivers.Containers;

namespace Heddle.Agent.Tests.Drivers;

/// <summary>
/// The default seccomp profile as runc reads it: EPERM unless allowed, no way to a namespace, the keyring, mount, bpf or
/// ptrace; clone only without CLONE_NEW* flags, clone3 ENOSYS. (ContainerDriverTests runs it under runc.)
/// </summary>
public sealed class SeccompProfileTests
{
    private static readonly string[] Refused =
    [
        "unshare", "setns", "mount", "umount", "umount2", "pivot_root", "chroot", "fsopen", "fsmount", "move_mount", "open_tree",
        "keyctl", "add_key", "request_key", "bpf", "perf_event_open", "ptrace", "process_vm_readv", "process_vm_writev",
        "kexec_load", "kexec_file_load", "init_module", "finit_module", "delete_module", "reboot", "swapon", "acct",
        "io_uring_setup", "userfaultfd", "open_by_handle_at", "sethostname", "settimeofday", "clock_settime", "syslog",
        "clone", "clone3", "socket", "personality",
    ];

    [Fact]
    public void TheAllowList_NamesNothingThatMakesANamespace_OrReachesTheKernelsPrivilegedParts()
    {
        Assert.Empty(SeccompProfile.Allowed.Intersect(Refused));
        Assert.Equal(SeccompProfile.Allowed.Length, SeccompProfile.Allowed.Distinct().Count());
        Assert.Contains("execve", SeccompProfile.Allowed);
        Assert.Contains("futex", SeccompProfile.Allowed);
    }

    [Fact]
    public void TheOciJson_DeniesWithEperm_AllowsCloneOnlyWithoutNamespaceFlags_AndAnswersClone3WithEnosys()
    {
        var json = SeccompProfile.For(Architecture.X64).ToJson();
        Assert.Equal("SCMP_ACT_ERRNO", json["defaultAction"]!.GetValue<string>());
        Assert.Equal(1u, json["defaultErrnoRet"]!.GetValue<uint>());
        Assert.Equal(["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"], json["architectures"]!.AsArray().Select(a => a!.GetValue<string>()));
        var rules = json["syscalls"]!.AsArray().Select(r => r!.AsObject()).ToList();
        JsonObject Only(string name) => rules.Single(r => r["names"]!.AsArray().Any(n => n!.GetValue<string>() == name));

        var clone = Only("clone");
        Assert.Equal("SCMP_ACT_ALLOW", clone["action"]!.GetValue<string>());
        var argument = clone["args"]!.AsArray().Single()!;
        Assert.Equal("SCMP_CMP_MASKED_EQ", argument["op"]!.GetValue<string>());
        Assert.Equal(0ul, argument["valueTwo"]!.GetValue<ulong>());
        const ulong CLONE_NEWUSER = 0x1000_0000, CLONE_NEWNS = 0x2_0000, CLONE_NEWPID = 0x2000_0000, CLONE_NEWNET = 0x4000_0000;
        Assert.Equal(CLONE_NEWUSER | CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWNET, argument["value"]!.GetValue<ulong>() & (CLONE_NEWUSER | CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWNET));

        var clone3 = Only("clone3");
        Assert.Equal("SCMP_ACT_ERRNO", clone3["action"]!.GetValue<string>());
        Assert.Equal(38u, clone3["errnoRet"]!.GetValue<uint>());

        Assert.Contains(rules, r => r["names"]!.AsArray().Any(n => n!.GetValue<string>() == "arch_prctl"));
        Assert.All(rules.Where(r => r["names"]!.AsArray().Any(n => n!.GetValue<string>() == "socket")), r => Assert.NotNull(r["args"]));
    }
}
