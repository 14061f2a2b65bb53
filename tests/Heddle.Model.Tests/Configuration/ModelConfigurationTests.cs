using Heddle.Model.Configuration;
using Heddle.Model.Diagnostics;
using Heddle.Model.Tests.Definition;

namespace Heddle.Model.Tests.Configuration;

public sealed class ModelConfigurationTests
{
    [Fact]
    public void Check_IssueExample_IsValid()
    {
        Assert.Empty(ModelText.Check(ModelText.ValidService, ModelText.ValidConfig));
    }

    [Fact]
    public void Parse_IssueExample_ReadsCountsAndSettings()
    {
        var config = ModelConfigurationParser.Parse(ModelText.ValidConfig, new DiagnosticBag(), "hello.config.yaml")!;

        Assert.Equal("hello", config.Service);
        Assert.Equal(3, config.FindRole("web")!.Instances);
        Assert.Equal(("Greeting", "hi"), (config.FindRole("web")!.Settings[0].Name, config.FindRole("web")!.Settings[0].Value));
        Assert.Equal(1, config.FindRole("worker")!.Instances);
    }

    [Fact]
    public void Check_SettingValuedButNotDeclared_IsReportedAtTheValue()
    {
        var config = ModelText.ValidConfig.Replace("{ instances: 1 }", "{ instances: 1, settings: { Greeting: x } }");

        var d = ModelText.Single(ModelText.Check(ModelText.ValidService, config), DiagnosticCodes.SettingNotDeclared, 4, 39);
        Assert.Equal("hello.config.yaml", d.Location.File);
        Assert.Contains("role 'worker' setting 'Greeting' has a value but the role does not declare it", d.Message);
    }

    [Fact]
    public void Check_SettingDeclaredButNotValued_IsReportedAtTheRole()
    {
        var config = ModelText.ValidConfig.Replace("{ instances: 3, settings: { Greeting: \"hi\" } }", "{ instances: 3 }");

        var d = ModelText.Single(ModelText.Check(ModelText.ValidService, config), DiagnosticCodes.SettingNotValued, 3, 3);
        Assert.Contains("declares setting 'Greeting' but the configuration gives it no value", d.Message);
    }

    [Fact]
    public void Check_MisspelledSettingName_SuggestsTheDeclaredOne()
    {
        var config = ModelText.ValidConfig.Replace("Greeting:", "Greting:");

        var diagnostics = ModelText.Check(ModelText.ValidService, config);

        Assert.Contains("did you mean 'Greeting'?", Assert.Single(diagnostics, d => d.Code == DiagnosticCodes.SettingNotDeclared).Message);
        Assert.Single(diagnostics, d => d.Code == DiagnosticCodes.SettingNotValued);
    }

    [Fact]
    public void Check_ConfigurationRoleNotInDefinition_IsReported()
    {
        var config = ModelText.ValidConfig + "\n  wrker: { instances: 1 }\n";

        var d = ModelText.Single(ModelText.Check(ModelText.ValidService, config), DiagnosticCodes.UnknownConfigRole, 5, 3);
        Assert.Contains("did you mean 'worker'?", d.Message);
    }

    [Fact]
    public void Check_DefinitionRoleMissingFromConfiguration_IsReported()
    {
        var config = "service: hello\nroles:\n  web: { instances: 3, settings: { Greeting: hi } }\n";

        Assert.Contains("role 'worker' has no instance count", ModelText.Single(ModelText.Check(ModelText.ValidService, config), DiagnosticCodes.RoleNotConfigured, 1, 1).Message);
    }

    [Theory]
    [InlineData(0)]
    [InlineData(1001)]
    [InlineData(-3)]
    public void Check_InstanceCountOutOfRange_IsReportedOnce(int count)
    {
        var config = ModelText.ValidConfig.Replace("instances: 3", $"instances: {count}");

        var d = ModelText.Single(ModelText.Check(ModelText.ValidService, config), DiagnosticCodes.InstanceCountOutOfRange, 3, 24);
        Assert.Contains($"instances {count} is outside 1..1000", d.Message);
    }

    [Fact]
    public void Check_ConfigurationForAnotherService_IsReported()
    {
        ModelText.Single(ModelText.Check(ModelText.ValidService, ModelText.ValidConfig.Replace("service: hello", "service: shop")), DiagnosticCodes.ServiceMismatch, 1, 1);
    }

    [Fact]
    public void Parse_MissingInstances_IsAMissingField()
    {
        var config = ModelText.ValidConfig.Replace("{ instances: 1 }", "{ }");

        ModelText.Single(ModelText.Check(ModelText.ValidService, config), DiagnosticCodes.MissingField, 4, 11);
    }

    [Fact]
    public void Parse_UnknownConfigurationKey_SuggestsTheNearest()
    {
        var config = ModelText.ValidConfig.Replace("{ instances: 1 }", "{ instance: 1 }");

        var diagnostics = ModelText.Check(ModelText.ValidService, config);

        Assert.Contains("did you mean 'instances'?", Assert.Single(diagnostics, d => d.Code == DiagnosticCodes.UnknownKey).Message);
    }
}
