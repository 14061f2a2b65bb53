using Heddle.Model.Configuration;
using Heddle.Model.Definition;
using Heddle.Model.Diagnostics;
using Heddle.Model.Tests.Definition;

namespace Heddle.Model.Tests.Configuration;

/// <summary>The configuration's upgrade block, a role's onSettingsChange, and `heddle scale`'s edit of the configuration text.</summary>
public sealed class UpgradePolicyTests
{
    private static (ModelConfiguration? Config, IReadOnlyList<Diagnostic> Diagnostics) Parse(string yaml)
    {
        var bag = new DiagnosticBag();
        var config = ModelConfigurationParser.Parse(yaml, bag, "hello.config.yaml");
        return (config, bag.Sorted());
    }

    [Fact]
    public void Parse_WithoutUpgradeBlock_UsesTheDocumentedDefaults()
    {
        var policy = Parse(ModelText.ValidConfig).Config!.Upgrade;

        Assert.Equal(UpgradeMode.Auto, policy.Mode);
        Assert.Equal(TimeSpan.FromSeconds(10), policy.HealthCheckStable);
        Assert.Equal(TimeSpan.FromMinutes(5), policy.UpgradeDomainTimeout);
        Assert.Equal(UpgradeFailureAction.Rollback, policy.FailureAction);
    }

    [Fact]
    public void Parse_UpgradeBlock_ReadsEveryField()
    {
        var (config, diagnostics) = Parse(ModelText.ValidConfig + "\nupgrade: { mode: manual, healthCheckStable: 0s, upgradeDomainTimeout: 90s, failureAction: pause }\n");

        Assert.Empty(diagnostics);
        Assert.Equal(new UpgradePolicy
        {
            Mode = UpgradeMode.Manual, HealthCheckStable = TimeSpan.Zero, UpgradeDomainTimeout = TimeSpan.FromSeconds(90), FailureAction = UpgradeFailureAction.Pause,
        }, config!.Upgrade);
    }

    [Fact]
    public void Parse_BadUpgradeValues_AreEachReportedWithTheirPosition()
    {
        var (_, diagnostics) = Parse(ModelText.ValidConfig + "\nupgrade:\n  mode: automatic\n  healthCheckStable: soon\n  upgradeDomainTimeout: 0s\n  failureAction: retry\n  maxParallel: 2\n");

        Assert.Collection(diagnostics,
            d => Assert.Equal((DiagnosticCodes.NotAllowedValue, 6, 9, "upgrade mode 'automatic' is not one of auto, manual"), (d.Code, d.Location.Line, d.Location.Column, d.Message)),
            d => Assert.Equal((DiagnosticCodes.WrongType, 7, 22, "upgrade healthCheckStable 'soon' is not a duration; use a number with ms, s, m or h (for example 10s)"),
                (d.Code, d.Location.Line, d.Location.Column, d.Message)),
            d => Assert.Equal((DiagnosticCodes.OutOfRange, 8, 25, "upgrade upgradeDomainTimeout 0s is outside 1s..24h"), (d.Code, d.Location.Line, d.Location.Column, d.Message)),
            d => Assert.Equal((DiagnosticCodes.NotAllowedValue, 9, 18), (d.Code, d.Location.Line, d.Location.Column)),
            d => Assert.Equal((DiagnosticCodes.UnknownKey, 10, 3), (d.Code, d.Location.Line, d.Location.Column)));
    }

    [Fact]
    public void Parse_OnSettingsChange_DefaultsToRestartAndAcceptsSignal()
    {
        var restart = ModelText.Definition(ModelText.ValidService).Definition!.FindRole("web")!;
        var signal = ModelText.Definition(ModelText.ValidService.Replace("    settings: [Greeting]", "    settings: [Greeting]\n    onSettingsChange: signal"));
        var wrong = ModelText.Definition(ModelText.ValidService.Replace("    settings: [Greeting]", "    settings: [Greeting]\n    onSettingsChange: reload"));

        Assert.Equal(SettingsChangeAction.Restart, restart.OnSettingsChange);
        Assert.Empty(signal.Diagnostics);
        Assert.Equal(SettingsChangeAction.Signal, signal.Definition!.FindRole("web")!.OnSettingsChange);
        Assert.Equal("role 'web' onSettingsChange 'reload' is not one of restart, signal", Assert.Single(wrong.Diagnostics).Message);
    }

    [Fact]
    public void SetInstances_ChangesOnlyTheCount_KeepingCommentsAndLayout()
    {
        const string yaml = "service: hello   # the sample\nroles:\n  web:    { instances: 3, settings: { Greeting: \"hi\" } }  # three\n  worker:\n    instances: 1\n";

        var web = ModelConfigurationEditor.SetInstances(yaml, "web", 12, out var error1);
        var worker = ModelConfigurationEditor.SetInstances(yaml, "worker", 2, out var error2);

        Assert.Null(error1 ?? error2);
        Assert.Equal(yaml.Replace("instances: 3", "instances: 12"), web);
        Assert.Equal(yaml.Replace("instances: 1", "instances: 2"), worker);
    }

    [Fact]
    public void SetInstances_RoleWithoutACount_SaysSo()
    {
        Assert.Null(ModelConfigurationEditor.SetInstances(ModelText.ValidConfig, "db", 2, out var error));
        Assert.Equal("the configuration has no instance count for role 'db'", error);
    }
}
