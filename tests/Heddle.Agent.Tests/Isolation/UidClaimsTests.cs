using System.Diagnostics;
using Heddle.Agent.Drivers;
using Heddle.Agent.Isolation;
using Heddle.Contracts;
using Heddle.Testing;

namespace Heddle.Agent.Tests.Isolation;

/// <summary>
/// The host-wide uid claims, as root with real processes: a uid outside the agent's range or none at all is refused;
/// agents of one cluster share a service's uid; another cluster, or a process Heddle did not start, holding the uid
/// makes the claim fail with who holds it; once nothing runs as it, the uid can be claimed.
/// </summary>
public sealed class UidClaimsTests : IDisposable
{
    private static readonly UidRange Range = new(264_950, 264_960);
    private readonly TempDirectory _directory = new("heddle-uids-");
    private readonly List<Process> _processes = [];

    public void Dispose()
    {
        foreach (var process in _processes)
        {
            if (!process.HasExited)
            {
                process.Kill();
                process.WaitForExit();
            }
        }

        _directory.Dispose();
    }

    private UidClaims Claims(string cluster) => new(Range, cluster, _directory.Combine("claims"));

    private Process RunAs(int uid)
    {
        var process = Process.Start(new ProcessStartInfo(HostPrograms.Setpriv, [$"--reuid={uid}", $"--regid={uid}", "--clear-groups", "--", "/bin/sleep", "60"]))!;
        _processes.Add(process);
        Poll.UntilAsync(() => UidClaims.ProcessesRunningAs(uid).Count > 0, TimeSpan.FromSeconds(10), $"a process as uid {uid}").GetAwaiter().GetResult();
        return process;
    }

    [Fact]
    public void Claim_OutsideTheRangeOrNone_IsRefusedSayingWhy()
    {
        var claims = Claims("aaaa");

        Assert.Contains("outside this agent's --uid-range 264950-264960", Assert.Throws<InvalidOperationException>(() => claims.Claim(200_001, "shop")).Message);
        Assert.Contains("no uid", Assert.Throws<InvalidOperationException>(() => claims.Claim(0, "shop")).Message);
    }

    [Fact]
    public async Task Claim_AnotherClustersServiceRunsAsTheUid_IsRefused_UntilItsProcessesAreGone()
    {
        Assert.True(Posix.IsRoot, "the isolation tests run as root, as CI does");
        const int uid = 264_951;
        Assert.Equal(new Identity(uid, uid), Claims("aaaa").Claim(uid, "shop"));
        var running = RunAs(uid);

        // Another agent of the same cluster on this host: the same service's uid is shared.
        Assert.Equal(uid, Claims("aaaa").Claim(uid, "shop").Uid);
        var refused = Assert.Throws<InvalidOperationException>(() => Claims("bbbb").Claim(uid, "shop"));
        Assert.Contains("in use on this host by service shop of another cluster", refused.Message);
        Assert.Contains(running.Id.ToString(), refused.Message);
        Assert.Throws<InvalidOperationException>(() => Claims("aaaa").Claim(uid, "other"));

        running.Kill();
        running.WaitForExit();
        await Poll.UntilAsync(() => UidClaims.ProcessesRunningAs(uid).Count == 0, TimeSpan.FromSeconds(10), "the process gone");
        Assert.Equal(uid, Claims("bbbb").Claim(uid, "shop").Uid);
    }

    [Fact]
    public void Claim_AHostProcessRunsAsTheUid_IsRefused()
    {
        Assert.True(Posix.IsRoot, "the isolation tests run as root, as CI does");
        const int uid = 264_952;
        RunAs(uid);

        var refused = Assert.Throws<InvalidOperationException>(() => Claims("aaaa").Claim(uid, "shop"));

        Assert.Contains("a process Heddle did not start", refused.Message);
    }

    [Fact]
    public void Lease_TwoClustersAtOnce_GetDifferentBlocks_AndARestartGetsItsOwnBack()
    {
        var folder = _directory.Combine("blocks");
        var remembered = _directory.Combine("uid-range");
        using (var first = UidBlock.Lease(remembered, folder))
        using (var second = UidBlock.Lease(null, folder))
        {
            Assert.True(first.Range.Last < second.Range.First || second.Range.Last < first.Range.First, $"{first.Range} and {second.Range} overlap");
            Assert.Throws<InvalidOperationException>(() => UidBlock.Lease(remembered, folder));
        }

        using var again = UidBlock.Lease(remembered, folder);
        Assert.Equal(File.ReadAllText(remembered).Trim(), again.Range.ToString());
    }
}
