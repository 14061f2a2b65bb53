using Heddle.Placement.Cluster;
using Xunit;

namespace Heddle.Placement.Tests;

/// <summary>
/// A placement read back from a snapshot claims exactly its CPUs: all of them or none, never one twice, never another
/// tenant's core, never more memory than is free.
/// </summary>
public sealed class NodeStateTests
{
    [Fact]
    public void TryClaim_TakesTheCpusOnce_AndRefusesDuplicatesTakenCpusOtherTenantsCoresUnknownCpusAndTooMuchMemory()
    {
        var node = new NodeState(0, Nodes.Node("n1", "fd1", cores: 2, threads: 2, memoryMiB: 1024), 0);

        Assert.False(node.TryClaim(tenant: 1, [0, 0], 64));
        Assert.False(node.TryClaim(tenant: 1, [0, 9], 64));
        Assert.False(node.TryClaim(tenant: 1, [-1], 64));
        Assert.False(node.TryClaim(tenant: 1, [0], 2048));
        Assert.Equal(1024, node.FreeMemoryMiB);

        Assert.True(node.TryClaim(tenant: 1, [0], 512));
        Assert.Equal(512, node.FreeMemoryMiB);
        Assert.False(node.TryClaim(tenant: 1, [0], 64)); // taken already
        Assert.False(node.TryClaim(tenant: 2, [2], 64)); // the other thread of tenant 1's core (CPUs 0 and 2 are core 0)
        Assert.True(node.TryClaim(tenant: 2, [1, 3], 256)); // a core of its own
        Assert.Equal(256, node.FreeMemoryMiB);
    }
}
