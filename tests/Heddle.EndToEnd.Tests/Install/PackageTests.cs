using System.Diagnostics;
using System.Text.Json;
using System.Text.RegularExpressions;
using Heddle.Agent.Drivers;
using Heddle.Contracts.Api;
using Heddle.Contracts.Trust;
using Heddle.Testing;

namespace Heddle.EndToEnd.Tests.Install;

/// <summary>
/// The Debian package scripts/build.sh --deb makes (scripts/test.sh builds it once before the tests; a test builds it
/// only when it is missing) and the systemd units in packaging/systemd. Nothing is installed on this machine: the
/// package is extracted into a folder of the test's, and the controller is started there as its unit says.
/// </summary>
public sealed class PackageTests(PackageFixture package)
    : IClassFixture<PackageFixture>
{
    public static readonly TheoryData<string> Units = new(UnitFiles.Names);

    [Theory]
    [MemberData(nameof(Units))]
    public void SystemdAnalyzeVerify_EveryUnit_Passes(string unit)
    {
        using var tree = new TempDirectory("heddle-units-");
        UnitFiles.StubTree(tree.Path);

        var result = UnitFiles.Verify(tree.Path, unit);

        Assert.True(UnitFiles.Clean(result), $"systemd-analyze verify {unit}: {result}");
    }

    [Fact]
    public void SystemdAnalyzeVerify_BrokenUnits_AreCaught()
    {
        using var tree = new TempDirectory("heddle-units-");
        UnitFiles.StubTree(tree.Path);
        var agent = Path.Combine(tree.Path, "lib", "systemd", "system", "heddle-agent.service");
        File.WriteAllText(agent, File.ReadAllText(agent).Replace("KillMode=process", "KillMode=bogus", StringComparison.Ordinal));
        File.Delete(Path.Combine(tree.Path, "usr", "bin", "heddle"));

        var badValue = UnitFiles.Verify(tree.Path, "heddle-agent.service");
        var noExecutable = UnitFiles.Verify(tree.Path, "heddle-controller.service");

        // verify exits 0 on a value it ignores: only what it prints tells, which is why Clean reads both.
        Assert.False(UnitFiles.Clean(badValue), badValue.ToString());
        Assert.Contains("bogus", badValue.Stderr, StringComparison.Ordinal);
        Assert.NotEqual(0, noExecutable.ExitCode);
        Assert.False(UnitFiles.Clean(noExecutable), noExecutable.ToString());
    }

    [Fact]
    public void Package_HoldsTheExecutableTheUnitsAndTheConffiles()
    {
        var contents = Dpkg("-c", package.Path).Stdout;
        var conffiles = Dpkg("-I", package.Path, "conffiles").Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        var control = Dpkg("-I", package.Path, "control").Stdout;

        Assert.Matches(@"-rwxr-xr-x root/root +\d+ .* \./usr/bin/heddle\n", contents);
        foreach (var unit in UnitFiles.Names)
        {
            Assert.Contains($"./lib/systemd/system/{unit}\n", contents, StringComparison.Ordinal);
        }

        string[] env = ["/etc/heddle/agent.env", "/etc/heddle/controller.env", "/etc/heddle/dns.env", "/etc/heddle/lb.env"];
        Assert.Equal(env, conffiles.Order(StringComparer.Ordinal));
        Assert.Matches(@"-rw------- root/root +\d+ .* \./etc/heddle/agent\.env\n", contents); // it may hold the join string
        Assert.Matches(@"(?m)^Depends: .*\butil-linux\b.*\bmount\b.*\be2fsprogs\b", control);
        Assert.Matches(@"(?m)^Recommends: runc$", control);
        Assert.Matches(@"(?m)^Version: 0\.1\.0(\+g[0-9a-f]{7})?$", control);
    }

    [Fact]
    public async Task Package_ExtractedController_StartsAsItsUnitSays_AndAnswersItsApi()
    {
        using var tree = new TempDirectory("heddle-deb-");
        Assert.Equal(0, Dpkg("-x", package.Path, tree.Path).ExitCode);
        foreach (var unit in UnitFiles.Names)
        {
            var verify = UnitFiles.Verify(tree.Path, unit); // the real executable, where the unit names it
            Assert.True(UnitFiles.Clean(verify), $"{unit} in the package: {verify}");
        }

        var service = ServiceUnit.Read(Path.Combine(tree.Path, "lib", "systemd", "system", "heddle-controller.service"), tree.Path);
        var state = service.Directories["StateDirectory"];
        var start = service.StartInfo(PortsChosenByTheSystem);
        using var controller = Process.Start(start)!;
        var output = controller.StandardOutput.ReadToEndAsync();
        var errors = controller.StandardError.ReadToEndAsync();
        try
        {
            var endpoints = Path.Combine(state, "controller.json");
            await Poll.UntilAsync(() => File.Exists(endpoints) || controller.HasExited, TimeSpan.FromSeconds(90), $"{endpoints} written");
            if (controller.HasExited)
            {
                Assert.Fail($"the controller exited with {controller.ExitCode}: {await output}\n{await errors}");
            }

            var apiUrl = JsonDocument.Parse(File.ReadAllText(endpoints)).RootElement.GetProperty("apiUrl").GetString()!;
            var ca = ClusterTrust.Load(File.ReadAllText(Path.Combine(state, "ca.crt")));
            using var api = new HeddleApiClient(new Uri(apiUrl), File.ReadAllText(Path.Combine(state, "api-token")).Trim(), ca);
            var info = await Poll.UntilAsync(() => api.InfoAsync(), _ => true, TimeSpan.FromSeconds(30), "GET /v1/info answered");

            Assert.Equal(apiUrl, info.ApiUrl);
            Assert.Equal(state, info.StateDirectory);
            Assert.StartsWith(tree.Path, start.FileName, StringComparison.Ordinal);
        }
        finally
        {
            Posix.Signal(controller.Id, Posix.SIGTERM);
            if (!controller.WaitForExit(TimeSpan.FromSeconds(30)))
            {
                controller.Kill(entireProcessTree: true);
                controller.WaitForExit();
            }
        }

        Assert.Equal(0, controller.ExitCode);
    }

    /// <summary>The example env file's fixed ports and address, replaced so the test never collides with anything.</summary>
    private static IReadOnlyList<string> PortsChosenByTheSystem(IReadOnlyList<string> args)
    {
        var replaced = args.ToArray();
        for (var i = 0; i < replaced.Length - 1; i++)
        {
            replaced[i + 1] = replaced[i] switch
            {
                "--api-port" or "--agent-port" or "--dns-port" => "0",
                "--listen" => "127.0.0.1",
                _ => replaced[i + 1],
            };
        }

        return replaced;
    }

    private static ProcessResult Dpkg(params string[] args)
    {
        var result = ProcessRunner.Run("dpkg-deb", args, TimeSpan.FromMinutes(2));
        Assert.True(result.ExitCode == 0, $"dpkg-deb {string.Join(' ', args)}: {result}");
        return result;
    }
}

/// <summary>The package under test: artifacts/heddle_*_amd64.deb, built by scripts/build.sh --deb when missing.</summary>
public sealed class PackageFixture
{
    public PackageFixture()
    {
        var artifacts = System.IO.Path.Combine(RepositoryRootAttribute.Value, "artifacts");
        if (Find(artifacts) is null)
        {
            var build = ProcessRunner.Run(System.IO.Path.Combine(RepositoryRootAttribute.Value, "scripts", "build.sh"), ["--deb"], TimeSpan.FromMinutes(30));
            if (build.ExitCode != 0)
            {
                throw new InvalidOperationException($"scripts/build.sh --deb failed: {build}");
            }
        }

        Path = Find(artifacts) ?? throw new InvalidOperationException($"scripts/build.sh --deb made no heddle_*_amd64.deb in {artifacts}");
    }

    public string Path { get; }

    private static string? Find(string artifacts) =>
        Directory.Exists(artifacts) ? Directory.GetFiles(artifacts, "heddle_*_amd64.deb").SingleOrDefault() : null;
}

/// <summary>packaging/systemd and `systemd-analyze verify`, which works without a running systemd given a root tree.</summary>
internal static class UnitFiles
{
    public static readonly string[] Names = ["heddle-agent.service", "heddle-controller.service", "heddle-dns.service", "heddle-lb.service"];

    public static string Source => Path.Combine(RepositoryRootAttribute.Value, "packaging", "systemd");

    /// <summary>A root tree with the units and an executable stub where ExecStart looks (verify checks it exists).</summary>
    public static void StubTree(string root)
    {
        var units = Directory.CreateDirectory(Path.Combine(root, "lib", "systemd", "system")).FullName;
        foreach (var unit in Names)
        {
            File.Copy(Path.Combine(Source, unit), Path.Combine(units, unit));
        }

        var heddle = Path.Combine(Directory.CreateDirectory(Path.Combine(root, "usr", "bin")).FullName, "heddle");
        File.WriteAllText(heddle, "#!/bin/sh\n");
        File.SetUnixFileMode(heddle, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
    }

    /// <summary>
    /// --root: the unit and the programs it names are looked up in the tree. --recursive-errors=no: the units it
    /// depends on (sysinit.target, network-online.target) are the host's business, not in the tree.
    /// </summary>
    public static ProcessResult Verify(string root, string unit) =>
        ProcessRunner.Run("systemd-analyze", ["verify", "--recursive-errors=no", $"--root={root}", $"/lib/systemd/system/{unit}"], TimeSpan.FromMinutes(1));

    /// <summary>Exit code 0 and nothing said: verify only warns (and exits 0) on an unknown key or a bad value.</summary>
    public static bool Clean(ProcessResult result) => result.ExitCode == 0 && result.Stderr.Trim().Length == 0 && result.Stdout.Trim().Length == 0;
}

/// <summary>
/// A [Service] section read the way systemd reads it, enough to start the process as the unit would (without its
/// User= and sandboxing): Environment= and EnvironmentFile= (KEY=VALUE, optional double quotes), ExecStart= with
/// $VAR (split into words) and ${VAR} (one word), StateDirectory= and CacheDirectory= made as systemd makes them.
/// Every absolute path of the package (/usr/bin/heddle, /etc/heddle, /var/lib/heddle, /var/cache/heddle) is taken
/// inside <c>root</c>.
/// </summary>
internal sealed partial class ServiceUnit
{
    private static readonly string[] PackagePaths = ["/usr/bin/heddle", "/etc/heddle", "/var/lib/heddle", "/var/cache/heddle"];

    private ServiceUnit(string root, IReadOnlyList<string> execStart, IReadOnlyDictionary<string, string> environment, IReadOnlyDictionary<string, string> directories)
    {
        Root = root;
        ExecStart = execStart;
        Environment = environment;
        Directories = directories;
    }

    public string Root { get; }

    public IReadOnlyList<string> ExecStart { get; }

    public IReadOnlyDictionary<string, string> Environment { get; }

    /// <summary>StateDirectory / CacheDirectory → the folder made for it in the tree.</summary>
    public IReadOnlyDictionary<string, string> Directories { get; }

    public static ServiceUnit Read(string file, string root)
    {
        var settings = File.ReadAllLines(file)
            .Select(l => l.Trim())
            .SkipWhile(l => l != "[Service]").Skip(1).TakeWhile(l => !l.StartsWith('['))
            .Where(l => l.Length > 0 && !l.StartsWith('#'))
            .Select(l => (Key: l[..l.IndexOf('=')], Value: l[(l.IndexOf('=') + 1)..]))
            .ToList();
        var environment = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var (key, value) in settings)
        {
            if (key == "Environment")
            {
                foreach (var pair in value.Split(' ', StringSplitOptions.RemoveEmptyEntries))
                {
                    environment[pair[..pair.IndexOf('=')]] = pair[(pair.IndexOf('=') + 1)..];
                }
            }
            else if (key == "EnvironmentFile")
            {
                foreach (var line in File.ReadAllLines(Inside(root, value.TrimStart('-'))).Select(l => l.Trim()).Where(l => l.Length > 0 && !l.StartsWith('#')))
                {
                    environment[line[..line.IndexOf('=')]] = line[(line.IndexOf('=') + 1)..].Trim('"');
                }
            }
        }

        var directories = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var (key, value) in settings.Where(s => s.Key is "StateDirectory" or "CacheDirectory"))
        {
            var folder = Inside(root, (key == "StateDirectory" ? "/var/lib/" : "/var/cache/") + value);
            Directory.CreateDirectory(folder);
            directories[key] = folder;
        }

        var line0 = settings.Single(s => s.Key == "ExecStart").Value;
        var words = new List<string>();
        foreach (var word in line0.Split(' ', StringSplitOptions.RemoveEmptyEntries))
        {
            if (WholeVariable().Match(word) is { Success: true } whole)
            {
                words.AddRange(environment.GetValueOrDefault(whole.Groups[1].Value, string.Empty).Split(' ', StringSplitOptions.RemoveEmptyEntries));
            }
            else
            {
                words.Add(BracedVariable().Replace(word, m => environment.GetValueOrDefault(m.Groups[1].Value, string.Empty)));
            }
        }

        return new ServiceUnit(
            root,
            [.. words.Select(w => Inside(root, w))],
            environment.ToDictionary(e => e.Key, e => Inside(root, e.Value), StringComparer.Ordinal),
            directories);
    }

    /// <summary>The process systemd would start: ExecStart's words (<paramref name="adjust"/> may change the arguments) and an environment of the unit's alone.</summary>
    public ProcessStartInfo StartInfo(Func<IReadOnlyList<string>, IReadOnlyList<string>> adjust)
    {
        var start = new ProcessStartInfo(ExecStart[0]) { UseShellExecute = false, RedirectStandardOutput = true, RedirectStandardError = true, WorkingDirectory = "/" };
        foreach (var arg in adjust(ExecStart.Skip(1).ToList()))
        {
            start.ArgumentList.Add(arg);
        }

        start.Environment.Clear();
        start.Environment["PATH"] = HostPrograms.SafePath; // what systemd gives a system service
        start.Environment["LANG"] = "C.UTF-8";
        foreach (var (name, value) in Environment)
        {
            start.Environment[name] = value;
        }

        return start;
    }

    private static string Inside(string root, string word) =>
        PackagePaths.Any(p => word == p || word.StartsWith(p + "/", StringComparison.Ordinal)) ? root + word : word;

    [GeneratedRegex(@"^\$([A-Za-z_][A-Za-z0-9_]*)$")]
    private static partial Regex WholeVariable();

    [GeneratedRegex(@"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")]
    private static partial Regex BracedVariable();
}
