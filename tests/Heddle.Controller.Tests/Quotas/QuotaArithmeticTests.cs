using Heddle.Contracts.Api;
using Heddle.Controller.Quotas;
using Heddle.Controller.Store;
using Heddle.Model.Configuration;
using Heddle.Model.Definition;
using Heddle.Model.Diagnostics;

namespace Heddle.Controller.Tests.Quotas;

public sealed class QuotaArithmeticTests
{
    private const string Service = """
        name: shop
        roles:
          web:
            entryPoint: { command: x }
            size: { cores: 2, memoryMiB: 256, diskMiB: 4096 }
            endpoints: { http: { kind: input, protocol: http, port: 8080 } }
          worker:
            entryPoint: { command: x }
            size: small
        """;

    [Fact]
    public void Of_Model_CountsEachRolesSizeTimesItsInstances()
    {
        var (definition, configuration) = Model(web: 3, worker: 2);

        var usage = QuotaArithmetic.Of(definition, configuration, vip: true);

        Assert.Equal(new QuotaUsage(Cores: 3 * 2 + 2 * 1, Instances: 5, Vips: 1, DiskMiB: 3 * 4096 + 2 * 1024), usage);
    }

    [Fact]
    public void Of_PlacedInstances_CountsTheirCoresAndTheirRolesDisk()
    {
        var (definition, _) = Model(web: 1, worker: 1);

        var usage = QuotaArithmetic.Of([Placed("web", 0, cpus: 2), Placed("worker", 0, cpus: 1), Placed("gone", 0, cpus: 1)], definition, vip: false);

        Assert.Equal(new QuotaUsage(Cores: 4, Instances: 3, Vips: 0, DiskMiB: 4096 + 1024 + 1024), usage);
    }

    [Fact]
    public void Refusal_DeployPastTheCores_SaysTheQuotaWhatIsInUseAndWhatIsNeeded()
    {
        var refusal = QuotaArithmetic.Refusal("alice", new QuotaLimits(Cores: 8), inUse: new(6, 6, 0, 0), after: new(10, 10, 0, 0), "deploy");

        Assert.Equal("tenant alice's quota allows 8 cores; 6 are in use and this deploy needs 4 more; nothing was changed "
            + "(see 'heddle quota show alice'; an admin can raise it with 'heddle quota set alice')", refusal);
    }

    [Fact]
    public void Refusal_SeveralLimitsExceeded_NamesEachOne()
    {
        var refusal = QuotaArithmetic.Refusal("bob", new QuotaLimits(Cores: 100, Instances: 2, Vips: 1, DiskMiB: 2048), inUse: new(1, 1, 1, 1024), after: new(3, 3, 2, 3072), "scale");

        Assert.StartsWith("tenant bob's quota allows 2 instances; 1 is in use and this scale needs 2 more; and it allows 1 VIP; 1 is in use and this scale needs 1 more; "
            + "and it allows 2,048 MiB of disk; 1,024 MiB are in use and this scale needs 2,048 MiB more; nothing was changed", refusal);
    }

    [Theory]
    [InlineData(8, 8)]
    [InlineData(8, 2)]
    public void Refusal_WithinTheQuota_IsNull(long limit, long after)
    {
        Assert.Null(QuotaArithmetic.Refusal("alice", new QuotaLimits(Cores: limit), inUse: new(2, 2, 0, 0), after: new(after, after, 0, 0), "deploy"));
    }

    [Fact]
    public void Refusal_OverALoweredQuota_LetsAChangeThatGivesBackOrKeepsThrough()
    {
        var lowered = new QuotaLimits(Cores: 4, Instances: 4);

        Assert.Null(QuotaArithmetic.Refusal("alice", lowered, inUse: new(10, 10, 0, 0), after: new(6, 6, 0, 0), "scale"));
        Assert.Null(QuotaArithmetic.Refusal("alice", lowered, inUse: new(10, 10, 0, 0), after: new(10, 10, 0, 0), "deploy"));
        Assert.NotNull(QuotaArithmetic.Refusal("alice", lowered, inUse: new(10, 10, 0, 0), after: new(11, 11, 0, 0), "scale"));
    }

    [Fact]
    public void Refusal_ZeroAllowed_RefusesAnyVip()
    {
        var refusal = QuotaArithmetic.Refusal("alice", new QuotaLimits(Vips: 0), inUse: QuotaUsage.Zero, after: new(1, 1, 1, 1024), "deploy");

        Assert.StartsWith("tenant alice's quota allows 0 VIPs; 0 are in use and this deploy needs 1 more;", refusal);
    }

    [Fact]
    public void Refusal_NoLimits_IsNullHoweverMuchIsHeld()
    {
        Assert.Null(QuotaArithmetic.Refusal("default", QuotaLimits.Unlimited, QuotaUsage.Zero, new(long.MaxValue / 2, 60_000, 60_000, long.MaxValue / 2), "deploy"));
    }

    [Theory]
    [InlineData("none", null, null, null, null)]
    [InlineData("cores=8", 8L, 256L, 16L, 262144L)]
    [InlineData("cores=none, vips=0", null, 256L, 0L, 262144L)]
    [InlineData("instances=1,disk-mib=1024", 64L, 1L, 16L, 1024L)]
    public void TryRead_Text_SetsTheNamedLimitsAndKeepsTheOthers(string text, long? cores, long? instances, long? vips, long? disk)
    {
        Assert.True(QuotaLimits.TryRead(text, QuotaLimits.NewTenantDefault, out var limits, out var error), error);

        Assert.Equal(new QuotaLimits(cores, instances, vips, disk), limits);
    }

    [Theory]
    [InlineData("cpus=8")]
    [InlineData("cores")]
    [InlineData("cores=-1")]
    [InlineData("cores=eight")]
    [InlineData("cores=2000000000000")]
    public void TryRead_Nonsense_IsRefusedWithASentence(string text)
    {
        Assert.False(QuotaLimits.TryRead(text, QuotaLimits.NewTenantDefault, out _, out var error));
        Assert.False(string.IsNullOrEmpty(error));
    }

    [Fact]
    public void ToString_Limits_ReadsBackAsTheSameLimits()
    {
        foreach (var limits in new[] { QuotaLimits.NewTenantDefault, QuotaLimits.Unlimited, new QuotaLimits(Cores: 3, Vips: 0) })
        {
            Assert.True(QuotaLimits.TryRead(limits.ToString(), QuotaLimits.NewTenantDefault, out var read, out _));
            Assert.Equal(limits, read);
        }

        Assert.Equal("cores=64,instances=256,vips=16,disk-mib=262144", QuotaLimits.NewTenantDefault.ToString());
    }

    [Fact]
    public void Error_LimitOutOfRange_SaysWhich()
    {
        Assert.Null(new QuotaLimits(Cores: 0, DiskMiB: QuotaLimits.MaxLimit).Error());
        Assert.StartsWith("vips -1 is outside", new QuotaLimits(Vips: -1).Error());
    }

    private static (ServiceDefinition, ModelConfiguration) Model(int web, int worker)
    {
        var diagnostics = new DiagnosticBag();
        var definition = ServiceDefinitionParser.Parse(Service, diagnostics)!;
        var configuration = ModelConfigurationParser.Parse($"service: shop\nroles:\n  web: {{ instances: {web} }}\n  worker: {{ instances: {worker} }}\n", diagnostics, "shop.config.yaml")!;
        Assert.False(diagnostics.HasErrors, string.Join("; ", diagnostics.Items));
        return (definition, configuration);
    }

    private static InstanceRecord Placed(string role, int index, int cpus) => new()
    {
        Service = "shop", Role = role, Index = index, UpgradeDomain = 0, Node = "n1", Cpus = [.. Enumerable.Range(0, cpus)], MemoryMiB = 64, Generation = 1, Revision = 1,
        State = InstanceState.Pending, Ports = new Dictionary<string, int>(), Updated = DateTimeOffset.UnixEpoch,
    };
}
