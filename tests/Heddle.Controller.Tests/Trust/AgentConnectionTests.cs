using System.Globalization;
using Heddle.Testing;
using Xunit;

namespace Heddle.Controller.Tests.Trust;

/// <summary>
/// An enrolled node holds one connection to the controller, its agent stream: the connection it enrolled over is
/// closed once enrolment is done, and a channel given up on a reconnect closes too. Each connection costs the
/// controller a TLS session and HTTP/2 buffers; kept open until they idled out, a thousand nodes joining or
/// reconnecting at once held twice as many (issue 27).
/// </summary>
[Collection(nameof(Integration.ClusterCollection))]
public sealed class AgentConnectionTests
{
    [Fact]
    public async Task EnrolledNodes_HoldOneConnectionEach_AndAReconnectLeavesNoneBehind()
    {
        await using var cluster = await TestCluster.StartAsync(nodes: 3, containers: false);
        var port = cluster.Controller.AgentUrl.Port;

        await Poll.UntilAsync(() => AcceptedConnections(port) == 3, TimeSpan.FromSeconds(20), "one connection per node at the agent port (the enrolment ones closed)");

        await cluster.StopAgentAsync(0, stopInstances: true);
        await cluster.StartAgentAsync(0);
        await Poll.UntilAsync(() => cluster.Api.ListNodesAsync(), n => n.Count(x => x.Condition == "Ready") == 3, TimeSpan.FromSeconds(20), "n1 back");
        await Poll.UntilAsync(() => AcceptedConnections(port) == 3, TimeSpan.FromSeconds(20), "still one connection per node after n1's restart");
    }

    /// <summary>Established connections the controller accepted on a port (from /proc/net/tcp and tcp6: the local side is the port).</summary>
    private static int AcceptedConnections(int port)
    {
        var hex = port.ToString("X4", CultureInfo.InvariantCulture);
        return new[] { "/proc/net/tcp", "/proc/net/tcp6" }.Where(File.Exists)
            .SelectMany(f => File.ReadLines(f).Skip(1))
            .Select(line => line.Split(' ', StringSplitOptions.RemoveEmptyEntries))
            .Count(f => f.Length > 3 && f[1].EndsWith(":" + hex, StringComparison.Ordinal) && f[3] == "01");
    }
}
