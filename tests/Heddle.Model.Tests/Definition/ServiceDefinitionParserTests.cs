using Heddle.Model.Definition;
using Heddle.Model.Diagnostics;

namespace Heddle.Model.Tests.Definition;

public sealed class ServiceDefinitionParserTests
{
    [Fact]
    public void Parse_IssueExample_ReadsEveryField()
    {
        var (definition, diagnostics) = ModelText.Definition(ModelText.ValidService);

        Assert.Empty(diagnostics);
        Assert.NotNull(definition);
        Assert.Equal("hello", definition.Name);
        Assert.Equal(3, definition.UpgradeDomains);
        var web = definition.FindRole("web")!;
        Assert.Equal(RoleDriver.Process, web.Driver);
        Assert.Equal(new EntryPoint("dotnet", ["HelloWeb.dll"]).Command, web.EntryPoint.Command);
        Assert.Equal(["HelloWeb.dll"], web.EntryPoint.Args);
        Assert.Equal((1, 256), (web.Size.Cores, web.Size.MemoryMiB));
        Assert.Equal(new EndpointDefinition("http", EndpointKind.Input, EndpointProtocol.Http, 8080), web.Endpoints[0]);
        Assert.Equal(new EndpointDefinition("admin", EndpointKind.Internal, EndpointProtocol.Tcp, null), web.Endpoints[1]);
        Assert.Equal(ProbeKind.Http, web.Probe!.Kind);
        Assert.Equal(("http", "/health", 2, 1, 3), (web.Probe.Endpoint, web.Probe.Path, web.Probe.IntervalSeconds, web.Probe.TimeoutSeconds, web.Probe.UnhealthyThreshold));
        Assert.Equal("Greeting", Assert.Single(web.Settings).Name);
        Assert.Equal("0", web.Environment["DOTNET_gcServer"]);
        Assert.Equal(new StartupTask("./prepare.sh", [], StartupTaskType.Simple).Command, Assert.Single(web.Startup).Command);
        var worker = definition.FindRole("worker")!;
        Assert.Equal(RoleSize.Named["small"], worker.Size);
        Assert.Null(worker.Probe);
    }

    [Fact]
    public void Parse_NoUpgradeDomainsOrSize_UsesDefaults()
    {
        var (definition, diagnostics) = ModelText.Definition("name: a\nroles:\n  r: { entryPoint: { command: x } }\n");

        Assert.Empty(diagnostics);
        Assert.Equal(ServiceDefinition.DefaultUpgradeDomains, definition!.UpgradeDomains);
        Assert.Equal(RoleSize.Default, definition.Roles[0].Size);
    }

    [Theory]
    [InlineData("extrasmall", 1, 768)]
    [InlineData("small", 1, 1792)]
    [InlineData("medium", 2, 3584)]
    [InlineData("large", 4, 7168)]
    [InlineData("extralarge", 8, 14336)]
    public void Parse_NamedSize_HasTheCloudFabricsCoresAndMemory(string size, int cores, int memory)
    {
        var (definition, diagnostics) = ModelText.Definition($"name: a\nroles:\n  r: {{ entryPoint: {{ command: x }}, size: {size} }}\n");

        Assert.Empty(diagnostics);
        Assert.Equal((cores, memory), (definition!.Roles[0].Size.Cores, definition.Roles[0].Size.MemoryMiB));
    }

    [Fact]
    public void Parse_MisspelledKey_SuggestsTheNearestKnownKey()
    {
        var (_, diagnostics) = ModelText.Definition("name: a\nupgradeDomain: 3\nroles:\n  r: { entryPoint: { command: x } }\n");

        var d = ModelText.Single(diagnostics, DiagnosticCodes.UnknownKey, 2, 1);
        Assert.Contains("did you mean 'upgradeDomains'?", d.Message);
    }

    [Fact]
    public void Parse_MisspelledRoleKey_SuggestsTheNearestKnownKey()
    {
        var (_, diagnostics) = ModelText.Definition("name: a\nroles:\n  r:\n    entryPoint: { command: x }\n    endpionts: {}\n");

        var d = ModelText.Single(diagnostics, DiagnosticCodes.UnknownKey, 5, 5);
        Assert.Contains("role 'r' has no key 'endpionts'; did you mean 'endpoints'?", d.Message);
    }

    [Fact]
    public void Parse_UnrelatedUnknownKey_ListsTheKnownKeys()
    {
        var (_, diagnostics) = ModelText.Definition("name: a\ncolour: blue\nroles:\n  r: { entryPoint: { command: x } }\n");

        var d = ModelText.Single(diagnostics, DiagnosticCodes.UnknownKey, 2, 1);
        Assert.Contains("known keys are name, upgradeDomains, roles", d.Message);
    }

    [Fact]
    public void Parse_PortOutOfRange_ReportsTheIssuesExampleMessage()
    {
        var yaml = "name: a\nroles:\n  web:\n    entryPoint: { command: x }\n    endpoints:\n      http: { kind: input, protocol: http, port: 70000 }\n";

        var (_, diagnostics) = ModelText.Definition(yaml);

        var d = ModelText.Single(diagnostics, DiagnosticCodes.OutOfRange, 6, 50);
        Assert.Equal("service.yaml:6:50: HD1004: role 'web' endpoint 'http' port 70000 is outside 1..65535", d.ToString());
    }

    [Theory]
    [InlineData("upgradeDomains: many", "upgradeDomains must be a whole number, not 'many'")]
    [InlineData("upgradeDomains: \"3\"", "upgradeDomains must be a whole number, not the text \"3\"")]
    [InlineData("upgradeDomains: [3]", "upgradeDomains must be a whole number, not a list")]
    public void Parse_WrongType_SaysWhatWasExpectedAndWhatWasFound(string line, string message)
    {
        var (_, diagnostics) = ModelText.Definition($"name: a\n{line}\nroles:\n  r: {{ entryPoint: {{ command: x }} }}\n");

        var d = ModelText.Single(diagnostics, DiagnosticCodes.WrongType, 2, 17);
        Assert.Equal(message, d.Message);
    }

    [Fact]
    public void Parse_RolesIsAList_IsAWrongType()
    {
        var (_, diagnostics) = ModelText.Definition("name: a\nroles:\n  - web\n");

        ModelText.Single(diagnostics, DiagnosticCodes.WrongType, 3, 3);
    }

    [Fact]
    public void Parse_UpgradeDomainsOutOfRange_IsReported()
    {
        var (_, diagnostics) = ModelText.Definition("name: a\nupgradeDomains: 21\nroles:\n  r: { entryPoint: { command: x } }\n");

        Assert.Contains("upgradeDomains 21 is outside 1..20", ModelText.Single(diagnostics, DiagnosticCodes.OutOfRange, 2, 17).Message);
    }

    [Fact]
    public void Parse_MissingEntryPoint_IsAMissingField()
    {
        var (_, diagnostics) = ModelText.Definition("name: a\nroles:\n  web:\n    size: small\n");

        Assert.Contains("role 'web' needs 'entryPoint'", ModelText.Single(diagnostics, DiagnosticCodes.MissingField, 4, 5).Message);
    }

    [Fact]
    public void Parse_MissingName_IsAMissingField()
    {
        var (_, diagnostics) = ModelText.Definition("roles:\n  r: { entryPoint: { command: x } }\n");

        Assert.Contains("needs 'name'", ModelText.Single(diagnostics, DiagnosticCodes.MissingField, 1, 1).Message);
    }

    [Fact]
    public void Parse_EmptyFile_SaysItIsEmpty()
    {
        var (definition, diagnostics) = ModelText.Definition("");

        Assert.Null(definition);
        Assert.Equal(DiagnosticCodes.MissingField, Assert.Single(diagnostics).Code);
    }

    [Theory]
    [InlineData("Hello")]
    [InlineData("1hello")]
    [InlineData("hello-")]
    [InlineData("hello_world")]
    [InlineData("a234567890123456789012345678901234567890123456789012345678901234")]
    public void Parse_BadServiceName_IsABadName(string name)
    {
        var (_, diagnostics) = ModelText.Definition($"name: {name}\nroles:\n  r: {{ entryPoint: {{ command: x }} }}\n");

        Assert.Contains("is not a valid name", ModelText.Single(diagnostics, DiagnosticCodes.BadName, 1, 7).Message);
    }

    [Fact]
    public void Parse_BadRoleName_IsABadName()
    {
        var (_, diagnostics) = ModelText.Definition("name: a\nroles:\n  Web_Role: { entryPoint: { command: x } }\n");

        Assert.Contains("role name 'Web_Role'", ModelText.Single(diagnostics, DiagnosticCodes.BadName, 3, 3).Message);
    }

    [Fact]
    public void Parse_DuplicatePublicPortAcrossRoles_IsReportedOnTheSecond()
    {
        var yaml = """
            name: a
            roles:
              web:
                entryPoint: { command: x }
                endpoints: { http: { kind: input, protocol: http, port: 80 } }
              api:
                entryPoint: { command: x }
                endpoints:
                  public: { kind: input, protocol: tcp, port: 80 }
            """;

        var (_, diagnostics) = ModelText.Definition(yaml);

        var d = ModelText.Single(diagnostics, DiagnosticCodes.DuplicatePublicPort, 9, 7);
        Assert.Contains("role 'api' endpoint 'public' uses public port 80, already used by role 'web' endpoint 'http'", d.Message);
    }

    [Fact]
    public void Parse_SamePortOnInternalEndpoints_IsAllowed()
    {
        var yaml = """
            name: a
            roles:
              web: { entryPoint: { command: x }, endpoints: { http: { kind: internal, protocol: http, port: 80 } } }
              api: { entryPoint: { command: x }, endpoints: { http: { kind: internal, protocol: http, port: 80 } } }
            """;

        Assert.Empty(ModelText.Definition(yaml).Diagnostics);
    }

    [Fact]
    public void Parse_ProbeNamesMissingEndpoint_SuggestsTheNearest()
    {
        var yaml = """
            name: a
            roles:
              web:
                entryPoint: { command: x }
                endpoints: { http: { kind: input, protocol: http, port: 80 } }
                probe: { http: { endpoint: htp, path: /health } }
            """;

        var d = ModelText.Single(ModelText.Definition(yaml).Diagnostics, DiagnosticCodes.ProbeEndpointMissing, 6, 32);
        Assert.Contains("names endpoint 'htp', which the role does not declare; did you mean 'http'?", d.Message);
    }

    [Fact]
    public void Parse_ProbeWithBothHttpAndTcp_IsAmbiguous()
    {
        var yaml = """
            name: a
            roles:
              web:
                entryPoint: { command: x }
                endpoints: { http: { kind: input, protocol: http, port: 80 } }
                probe: { http: { endpoint: http, path: / }, tcp: { endpoint: http } }
            """;

        ModelText.Single(ModelText.Definition(yaml).Diagnostics, DiagnosticCodes.ProbeKindAmbiguous, 6, 12);
    }

    [Fact]
    public void Parse_ProbeTimeoutLongerThanInterval_IsReported()
    {
        var yaml = """
            name: a
            roles:
              web:
                entryPoint: { command: x }
                endpoints: { http: { kind: input, protocol: http, port: 80 } }
                probe: { tcp: { endpoint: http }, intervalSeconds: 2, timeoutSeconds: 5 }
            """;

        ModelText.Single(ModelText.Definition(yaml).Diagnostics, DiagnosticCodes.ProbeTimeoutTooLong, 6, 75);
    }

    [Fact]
    public void Parse_ContainerRoleWithoutImage_IsReported()
    {
        var (_, diagnostics) = ModelText.Definition("name: a\nroles:\n  web:\n    driver: container\n    entryPoint: { command: x }\n");

        Assert.Contains("add 'image:'", ModelText.Single(diagnostics, DiagnosticCodes.ContainerWithoutImage, 4, 5).Message);
    }

    [Fact]
    public void Parse_ContainerRoleWithImage_IsAccepted()
    {
        var (definition, diagnostics) = ModelText.Definition("name: a\nroles:\n  web:\n    driver: container\n    image: debian-12\n    entryPoint: { command: x }\n");

        Assert.Empty(diagnostics);
        Assert.Equal((RoleDriver.Container, "debian-12"), (definition!.Roles[0].Driver, definition.Roles[0].Image));
    }

    [Fact]
    public void Parse_ANetworkOtherThanHost_IsRefused_SayingWhatInstancesGet()
    {
        var (_, accepted) = ModelText.Definition("name: a\nroles:\n  web:\n    driver: container\n    image: debian-12\n    network: host\n    entryPoint: { command: x }\n");
        var (_, refused) = ModelText.Definition("name: a\nroles:\n  web:\n    driver: container\n    image: debian-12\n    network: bridge\n    entryPoint: { command: x }\n");

        Assert.Empty(accepted);
        Assert.Contains("asks for network 'bridge'", ModelText.Single(refused, DiagnosticCodes.NetworkNotSupported, 6, 14).Message);
    }

    [Fact]
    public void Parse_AServiceNamedStaging_IsRefused_BecauseEveryStagingSlotIsNamedSo()
    {
        var (definition, diagnostics) = ModelText.Definition("name: staging\nroles:\n  web:\n    entryPoint: { command: x }\n");

        Assert.NotEqual("staging", definition?.Name);
        Assert.Contains("'staging' is reserved", ModelText.Single(diagnostics, DiagnosticCodes.ReservedServiceName, 1, 7).Message);
    }

    [Fact]
    public void Parse_AnImageNameHeddleCannotStore_IsRefused()
    {
        var (_, diagnostics) = ModelText.Definition("name: a\nroles:\n  web:\n    driver: container\n    image: Debian:12\n    entryPoint: { command: x }\n");

        Assert.Contains("image name", ModelText.Single(diagnostics, DiagnosticCodes.BadName, 5, 12).Message);
    }

    [Fact]
    public void Parse_ImageOnProcessRole_IsReported()
    {
        var (_, diagnostics) = ModelText.Definition("name: a\nroles:\n  web:\n    image: debian-12\n    entryPoint: { command: x }\n");

        ModelText.Single(diagnostics, DiagnosticCodes.ImageOnProcessRole, 4, 5);
    }

    [Theory]
    [InlineData("driver: proces", "did you mean 'process'?")]
    [InlineData("size: smal", "did you mean 'small'?")]
    public void Parse_NearMissOfAnAllowedWord_SuggestsIt(string line, string hint)
    {
        var (_, diagnostics) = ModelText.Definition($"name: a\nroles:\n  web:\n    {line}\n    entryPoint: {{ command: x }}\n");

        Assert.Contains(hint, Assert.Single(diagnostics, d => d.Code == DiagnosticCodes.NotAllowedValue).Message);
    }

    [Fact]
    public void Parse_DuplicateKey_IsReportedOnTheSecond()
    {
        var (_, diagnostics) = ModelText.Definition("name: a\nname: b\nroles:\n  r: { entryPoint: { command: x } }\n");

        ModelText.Single(diagnostics, DiagnosticCodes.DuplicateKey, 2, 1);
    }

    [Fact]
    public void Parse_DuplicateRole_IsReportedOnTheSecond()
    {
        var (_, diagnostics) = ModelText.Definition("name: a\nroles:\n  r: { entryPoint: { command: x } }\n  r: { entryPoint: { command: y } }\n");

        ModelText.Single(diagnostics, DiagnosticCodes.DuplicateKey, 4, 3);
    }

    [Fact]
    public void Parse_InputEndpointWithoutPort_IsReported()
    {
        var (_, diagnostics) = ModelText.Definition("name: a\nroles:\n  r:\n    entryPoint: { command: x }\n    endpoints: { http: { kind: input, protocol: http } }\n");

        ModelText.Single(diagnostics, DiagnosticCodes.InputEndpointInvalid, 5, 24);
    }

    [Fact]
    public void Parse_EmptyRoles_IsReported()
    {
        ModelText.Single(ModelText.Definition("name: a\nroles: {}\n").Diagnostics, DiagnosticCodes.NoRoles, 2, 8);
    }

    [Fact]
    public void Parse_YamlSyntaxError_IsReportedWithItsPosition()
    {
        var (definition, diagnostics) = ModelText.Definition("name: a\nroles:\n  web: { entryPoint: [\n");

        Assert.Null(definition);
        var d = Assert.Single(diagnostics);
        Assert.Equal(DiagnosticCodes.YamlSyntax, d.Code);
        Assert.True(d.Location.Line >= 3, d.ToString());
    }

    [Fact]
    public void Parse_TwoDocuments_IsASyntaxError()
    {
        var (_, diagnostics) = ModelText.Definition("name: a\nroles:\n  r: { entryPoint: { command: x } }\n---\nname: b\n");

        Assert.Equal(DiagnosticCodes.YamlSyntax, ModelText.Single(diagnostics, DiagnosticCodes.YamlSyntax, 4, 1).Code);
    }

    [Fact]
    public void Parse_BillionLaughs_SharesAliasesInsteadOfExpandingThem()
    {
        var lines = new List<string> { "a0: &a0 [x, x, x, x, x, x, x, x, x, x]" };
        for (var i = 1; i < 10; i++)
        {
            lines.Add($"a{i}: &a{i} [{string.Join(", ", Enumerable.Repeat($"*a{i - 1}", 10))}]");
        }

        var (_, diagnostics) = ModelText.Definition(string.Join('\n', lines));

        Assert.Contains(diagnostics, d => d.Code == DiagnosticCodes.UnknownKey && d.Message.Contains("'a9'"));
    }

    [Fact]
    public void Parse_HugeDocument_IsRefusedPastTheNodeLimit()
    {
        var yaml = "name: a\nroles:\n  r: { entryPoint: { command: x, args: [" + string.Join(", ", Enumerable.Repeat("x", 100_001)) + "] } }\n";

        var (definition, diagnostics) = ModelText.Definition(yaml);

        Assert.Null(definition);
        Assert.Contains(diagnostics, d => d.Code == DiagnosticCodes.YamlSyntax && d.Message.Contains("more than 100000 nodes"));
    }

    [Fact]
    public void Parse_ManyProblems_ReportsEveryOneInFileOrder()
    {
        var yaml = """
            name: Bad_Name
            upgradeDomains: 0
            roles:
              web:
                entryPoint: { comand: x }
                size: { cores: 0, memoryMiB: 1 }
                endpoints: { http: { kind: public, protocol: http, port: 80 } }
            """;

        var codes = ModelText.Definition(yaml).Diagnostics.Select(d => (d.Location.Line, d.Code)).ToList();

        Assert.Equal(
            [
                (1, DiagnosticCodes.BadName), (2, DiagnosticCodes.OutOfRange), (5, DiagnosticCodes.MissingField), (5, DiagnosticCodes.UnknownKey),
                (6, DiagnosticCodes.OutOfRange), (6, DiagnosticCodes.OutOfRange), (7, DiagnosticCodes.NotAllowedValue),
            ],
            codes);
    }

    [Fact]
    public void Parse_DuplicateSettingDeclaration_IsReported()
    {
        ModelText.Single(ModelText.Definition("name: a\nroles:\n  r: { entryPoint: { command: x }, settings: [A, A] }\n").Diagnostics, DiagnosticCodes.DuplicateSetting, 3, 50);
    }

    [Fact]
    public void Parse_BadEnvironmentVariableName_IsABadName()
    {
        ModelText.Single(ModelText.Definition("name: a\nroles:\n  r: { entryPoint: { command: x }, environment: { 1X: y } }\n").Diagnostics, DiagnosticCodes.BadName, 3, 51);
    }

    [Theory]
    [InlineData("LD_PRELOAD")]
    [InlineData("LD_LIBRARY_PATH")]
    [InlineData("ld_audit")]
    [InlineData("HEDDLE_INSTANCE")]
    [InlineData("Heddle_Setting_X")]
    public void Parse_ReservedEnvironmentVariable_IsRefusedWithItsOwnCode(string name)
    {
        var diagnostics = ModelText.Definition($"name: a\nroles:\n  r: {{ entryPoint: {{ command: x }}, environment: {{ {name}: y }} }}\n").Diagnostics;

        var diagnostic = ModelText.Single(diagnostics, DiagnosticCodes.ReservedEnvironmentName, 3, 51);
        Assert.Contains($"'{name}'", diagnostic.Message);
    }

    [Fact]
    public void Parse_RoleSetsItsOwnPath_IsAccepted()
    {
        var (definition, diagnostics) = ModelText.Definition("name: a\nroles:\n  r: { entryPoint: { command: x }, environment: { PATH: \".\", IFS: \"x\" } }\n");

        Assert.Empty(diagnostics);
        Assert.Equal(".", definition!.Roles[0].Environment["PATH"]);
    }

    [Fact]
    public void Parse_DiskSize_IsReadWithADefault()
    {
        var (definition, diagnostics) = ModelText.Definition("name: a\nroles:\n  r: { entryPoint: { command: x }, size: { cores: 1, memoryMiB: 64, diskMiB: 200 } }\n  s: { entryPoint: { command: x } }\n");

        Assert.Empty(diagnostics);
        Assert.Equal(200, definition!.Roles[0].Size.DiskMiB);
        Assert.Equal(RoleSize.DefaultDiskMiB, definition.Roles[1].Size.DiskMiB);
    }

    [Fact]
    public void Parse_DiskSizeTooSmall_IsOutOfRange()
    {
        var diagnostic = ModelText.Single(ModelText.Definition("name: a\nroles:\n  r: { entryPoint: { command: x }, size: { cores: 1, memoryMiB: 64, diskMiB: 1 } }\n").Diagnostics, DiagnosticCodes.OutOfRange, 3, 78);
        Assert.Contains("diskMiB", diagnostic.Message);
    }

    [Fact]
    public void Parse_Constraints_AreRead()
    {
        var (definition, diagnostics) = ModelText.Definition("name: a\nroles:\n  r: { entryPoint: { command: x }, constraints: { ssd: \"true\" } }\n");

        Assert.Empty(diagnostics);
        Assert.Equal("true", definition!.Roles[0].Constraints["ssd"]);
    }
}
