using Heddle.Contracts.Files;
using Heddle.Testing;

namespace Heddle.EndToEnd.Tests;

/// <summary>
/// The files `heddle up` and `heddle controller` leave for other processes, read through the shared records: a file as
/// the earlier code wrote it is read whole, and a file written now reads back the same, without its nulls.
/// </summary>
public sealed class StateFilesTests : IDisposable
{
    private readonly TempDirectory _directory = new();

    public void Dispose() => _directory.Dispose();

    [Fact]
    public void Read_UpJsonAsWrittenBefore_NamesEveryProcess()
    {
        var path = _directory.Combine("up.json");
        File.WriteAllText(path, """
            {
              "pid": 4242,
              "state": "/var/lib/heddle/up-1",
              "apiUrl": "https://127.0.0.1:7000/",
              "agentUrl": "https://127.0.0.1:7001/",
              "dnsAddress": "127.0.0.1:5353",
              "processes": [
                { "name": "controller", "pid": 4243, "address": "https://127.0.0.1:7000/", "log": "/var/lib/heddle/up-1/controller.log", "metrics": "https://127.0.0.1:7000/metrics" },
                { "name": "n1", "pid": 4244, "address": "127.0.1.1", "faultDomain": "fd1", "log": "/var/lib/heddle/up-1/n1.log" }
              ]
            }
            """);

        var up = StateFiles.Read<UpState>(path)!;

        Assert.Equal((4242, "https://127.0.0.1:7000/", "127.0.0.1:5353"), (up.Pid, up.ApiUrl.ToString(), up.DnsAddress));
        Assert.Equal(["controller 4243 https://127.0.0.1:7000/metrics", "n1 4244 fd1"],
            up.Processes.Select(p => $"{p.Name} {p.Pid} {p.Metrics ?? p.FaultDomain}"));
        Assert.Null(up.Etcd);
    }

    [Fact]
    public void Write_ControllerJson_ReadsBackTheSame_WithoutNulls()
    {
        var path = _directory.Combine("controller.json");
        var written = new ControllerEndpoints(new Uri("https://127.0.0.1:7000/"), new Uri("https://127.0.0.1:7001/"), null, 4243);

        StateFiles.Write(path, written);

        Assert.Equal(written, StateFiles.Read<ControllerEndpoints>(path));
        Assert.DoesNotContain("dnsAddress", File.ReadAllText(path), StringComparison.Ordinal);
        Assert.Contains("\"agentUrl\"", File.ReadAllText(path), StringComparison.Ordinal);
    }

    [Fact]
    public void Read_ClientConfigAsWrittenBeforeApiUrls_IsOneController()
    {
        var path = _directory.Combine("config.json");
        File.WriteAllText(path, """
            {
              "apiUrl": "http://127.0.0.1:7000/",
              "token": "hd_api_1",
              "ca": null
            }
            """);

        var config = ClientFile.Read(path)!;

        Assert.Equal(("hd_api_1", null), (config.Token, config.Ca));
        Assert.Equal([new Uri("http://127.0.0.1:7000/")], config.Controllers);
    }

    [Fact]
    public void Write_ClientConfig_KeepsItsWordsAndReadsBackTheSame()
    {
        var path = _directory.Combine("config.json");
        var urls = new[] { new Uri("https://127.0.0.1:7000/"), new Uri("https://127.0.0.1:7100/") };

        new ClientFile(urls[0], "hd_api_1", "-----BEGIN CERTIFICATE-----") { ApiUrls = urls }.Write(path);

        var written = File.ReadAllText(path);
        Assert.Equal(["apiUrl", "token", "ca", "apiUrls"], System.Text.Json.JsonDocument.Parse(written).RootElement.EnumerateObject().Select(p => p.Name));
        var read = ClientFile.Read(path)!;
        Assert.Equal((urls[0], "hd_api_1", "-----BEGIN CERTIFICATE-----"), (read.ApiUrl, read.Token, read.Ca));
        Assert.Equal(urls, read.Controllers);
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(path));
    }

    [Fact]
    public void Read_HalfWrittenOrMissingFile_IsNull()
    {
        var path = _directory.Combine("up.json");
        Assert.Null(StateFiles.Read<UpState>(path));

        File.WriteAllText(path, "{ \"pid\": 1, \"proc");

        Assert.Null(StateFiles.Read<UpState>(path));
    }
}
