using Heddle.Model.Configuration;
using Heddle.Model.Definition;
using Heddle.Model.Diagnostics;

namespace Heddle.Model.Tests.Configuration;

/// <summary>Nesting far beyond any real file is refused with its own code, never a stack overflow that would take the controller with it.</summary>
public sealed class DepthTests
{
    [Theory]
    [InlineData("[", "]")]
    [InlineData("{a: ", "}")]
    public void Parse_NestedFiftyThousandDeep_IsOneDiagnosticWithItsCode(string open, string close)
    {
        var deep = "service: " + string.Concat(Enumerable.Repeat(open, 50_000)) + string.Concat(Enumerable.Repeat(close, 50_000)) + "\n";
        var configuration = new DiagnosticBag();
        var definition = new DiagnosticBag();

        Assert.Null(ModelConfigurationParser.Parse(deep, configuration, "hello.config.yaml"));
        Assert.Null(ServiceDefinitionParser.Parse(deep.Replace("service:", "name:"), definition));

        var d = Assert.Single(configuration.Items);
        Assert.Equal((DiagnosticCodes.YamlTooDeep, 1), (d.Code, d.Location.Line));
        Assert.Contains("nested more than 64 deep", d.Message);
        Assert.Equal(DiagnosticCodes.YamlTooDeep, Assert.Single(definition.Items).Code);
    }

    [Fact]
    public void Parse_SixtyLevels_IsStillReadAsUsual()
    {
        var yaml = "service: hello\nroles: { web: { instances: 1 } }\nextra: " + string.Concat(Enumerable.Repeat("[", 60)) + string.Concat(Enumerable.Repeat("]", 60)) + "\n";
        var diagnostics = new DiagnosticBag();

        ModelConfigurationParser.Parse(yaml, diagnostics, "hello.config.yaml");

        Assert.DoesNotContain(diagnostics.Items, d => d.Code == DiagnosticCodes.YamlTooDeep);
    }
}
