using Heddle.Model.Configuration;
using Heddle.Model.Definition;
using Heddle.Model.Diagnostics;
using Heddle.Model.Validation;

namespace Heddle.Model.Tests.Definition;

/// <summary>Small helpers: parse text, and assert that exactly the expected problem was reported where expected.</summary>
internal static class ModelText
{
    public const string ValidService = """
        name: hello
        upgradeDomains: 3
        roles:
          web:
            driver: process
            entryPoint: { command: dotnet, args: [HelloWeb.dll] }
            size: { cores: 1, memoryMiB: 256 }
            endpoints:
              http:  { kind: input, protocol: http, port: 8080 }
              admin: { kind: internal, protocol: tcp }
            probe: { http: { endpoint: http, path: /health }, intervalSeconds: 2, timeoutSeconds: 1, unhealthyThreshold: 3 }
            settings: [Greeting]
            environment: { DOTNET_gcServer: "0" }
            startup:
              - { command: ./prepare.sh, type: simple }
          worker:
            entryPoint: { command: python3, args: [worker.py] }
            size: small
        """;

    public const string ValidConfig = """
        service: hello
        roles:
          web:    { instances: 3, settings: { Greeting: "hi" } }
          worker: { instances: 1 }
        """;

    public static (ServiceDefinition? Definition, IReadOnlyList<Diagnostic> Diagnostics) Definition(string yaml)
    {
        var bag = new DiagnosticBag();
        var definition = ServiceDefinitionParser.Parse(yaml, bag);
        return (definition, bag.Sorted());
    }

    public static IReadOnlyList<Diagnostic> Check(string serviceYaml, string configYaml)
    {
        var bag = new DiagnosticBag();
        var definition = ServiceDefinitionParser.Parse(serviceYaml, bag);
        var config = ModelConfigurationParser.Parse(configYaml, bag, "hello.config.yaml");
        if (definition is not null && config is not null)
        {
            ModelValidator.CheckConfiguration(definition, config, "hello.config.yaml", bag);
        }

        return bag.Sorted();
    }

    public static Diagnostic Single(IReadOnlyList<Diagnostic> diagnostics, string code, int line, int column)
    {
        var diagnostic = Assert.Single(diagnostics);
        Assert.Equal(code, diagnostic.Code);
        Assert.Equal((line, column), (diagnostic.Location.Line, diagnostic.Location.Column));
        return diagnostic;
    }
}
