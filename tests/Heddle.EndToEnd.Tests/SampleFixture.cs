using Heddle.Testing;

namespace Heddle.EndToEnd.Tests;

/// <summary>Builds the hello sample's roles once (samples/hello/build.sh) with the heddle under test.</summary>
public sealed class SampleFixture : IDisposable
{
    public SampleFixture()
    {
        Work = Directory.CreateTempSubdirectory("heddle-e2e-").FullName;
        SampleDirectory = SamplePackage.SampleDirectory;
        Package = Path.Combine(Work, "hello.hpkg");
        using (SamplePackage.BuildLock())
        {
            BuildOutput = ProcessRunner.Run(Path.Combine(SampleDirectory, "build.sh"), [Heddle.Executable, Package], TimeSpan.FromMinutes(5));
        }

        if (BuildOutput.ExitCode != 0)
        {
            throw new InvalidOperationException($"samples/hello/build.sh failed: {BuildOutput}");
        }
    }

    public string Work { get; }

    public string SampleDirectory { get; }

    public string Config => Path.Combine(SampleDirectory, "hello.config.yaml");

    public string Package { get; }

    public ProcessResult BuildOutput { get; }

    public void Dispose() => Directory.Delete(Work, recursive: true);
}
