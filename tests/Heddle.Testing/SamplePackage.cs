using System.Security.Cryptography;
using System.Text;
using Heddle.Model.Diagnostics;
using Heddle.Packaging;

namespace Heddle.Testing;

/// <summary>
/// The hello sample, built and packed once per version of its sources. Test assemblies run in parallel, and two
/// `dotnet publish` runs of one project at once collide, so building takes a lock file shared by every test process.
/// </summary>
public static class SamplePackage
{
    private static readonly Lazy<string> Built = new(Build);

    public static string SampleDirectory => Path.Combine(RepositoryRootAttribute.Value, "samples", "hello");

    public static string ConfigurationPath => Path.Combine(SampleDirectory, "hello.config.yaml");

    /// <summary>The path of hello.hpkg, built if needed.</summary>
    public static string File => Built.Value;

    /// <summary>
    /// The sample with its service.yaml changed by <paramref name="edit"/> (say, a web role that exits at start, or one
    /// that reloads its settings on SIGHUP), packed into <paramref name="work"/>; the roles are the sample's own.
    /// </summary>
    public static string Variant(TempDirectory work, string name, Func<string, string> edit)
    {
        var source = Path.Combine(Path.GetDirectoryName(File)!, "src");
        var target = work.Combine($"{name}-src");
        foreach (var file in Directory.EnumerateFiles(source, "*", SearchOption.AllDirectories))
        {
            var copy = Path.Combine(target, Path.GetRelativePath(source, file));
            Directory.CreateDirectory(Path.GetDirectoryName(copy)!);
            System.IO.File.Copy(file, copy);
        }

        var yaml = Path.Combine(target, "service.yaml");
        var edited = edit(System.IO.File.ReadAllText(yaml));
        if (edited == System.IO.File.ReadAllText(yaml))
        {
            throw new InvalidOperationException($"the edit for variant '{name}' changed nothing in service.yaml");
        }

        System.IO.File.WriteAllText(yaml, edited);
        var output = work.Combine($"{name}.hpkg");
        var diagnostics = new DiagnosticBag();
        return PackageBuilder.Pack(target, output, diagnostics) is null ? throw new InvalidOperationException(string.Join("; ", diagnostics.Items)) : output;
    }

    /// <summary>Holds the lock that guards `dotnet publish` of the sample projects for as long as it is held.</summary>
    /// <remarks>A named mutex is shared by every process on the machine; the wait blocks with a deadline.</remarks>
    public static IDisposable BuildLock()
    {
        var mutex = new Mutex(initiallyOwned: false, "heddle-test-sample-build");
        try
        {
            if (!mutex.WaitOne(TimeSpan.FromMinutes(10)))
            {
                throw new TimeoutException("another test process held the sample build lock for 10 minutes");
            }
        }
        catch (AbandonedMutexException)
        {
            // The holder died while building: the lock is ours now, and the build below starts from a clean staging folder.
        }

        return new Held(mutex);
    }

    /// <summary>Releases the mutex on the thread that took it, which is where `using` disposes it.</summary>
    private sealed class Held(Mutex mutex) : IDisposable
    {
        public void Dispose()
        {
            mutex.ReleaseMutex();
            mutex.Dispose();
        }
    }

    private static string Build()
    {
        var version = SourceHash();
        var output = Path.Combine(RepositoryRootAttribute.Value, "artifacts", "test-sample", version);
        var package = Path.Combine(output, "hello.hpkg");
        using var held = BuildLock();
        if (System.IO.File.Exists(package))
        {
            return package;
        }

        var staging = Path.Combine(output, "src");
        if (Directory.Exists(staging))
        {
            Directory.Delete(staging, recursive: true);
        }

        Directory.CreateDirectory(staging);
        System.IO.File.Copy(Path.Combine(SampleDirectory, "service.yaml"), Path.Combine(staging, "service.yaml"));
        foreach (var (project, role) in new[] { ("HelloWeb", "web"), ("HelloWorker", "worker") })
        {
            var result = ProcessRunner.Run("dotnet",
                ["publish", Path.Combine(SampleDirectory, "src", project, $"{project}.csproj"), "-c", "Release", "-o", Path.Combine(staging, "roles", role), "--nologo", "-v", "quiet"],
                TimeSpan.FromMinutes(5));
            if (result.ExitCode != 0)
            {
                throw new InvalidOperationException($"publishing {project} failed: {result}");
            }

            foreach (var pdb in Directory.EnumerateFiles(Path.Combine(staging, "roles", role), "*.pdb"))
            {
                System.IO.File.Delete(pdb);
            }
        }

        var diagnostics = new DiagnosticBag();
        if (PackageBuilder.Pack(staging, package, diagnostics) is null)
        {
            throw new InvalidOperationException($"packing the sample failed: {string.Join("; ", diagnostics.Items)}");
        }

        return package;
    }

    private static string SourceHash()
    {
        var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        foreach (var file in Directory.EnumerateFiles(SampleDirectory, "*", SearchOption.AllDirectories)
                     .Where(f => !f.Contains("/bin/") && !f.Contains("/obj/") && !f.Contains("/roles/"))
                     .Order(StringComparer.Ordinal))
        {
            hash.AppendData(Encoding.UTF8.GetBytes(file));
            hash.AppendData(System.IO.File.ReadAllBytes(file));
        }

        return Convert.ToHexStringLower(hash.GetHashAndReset())[..16];
    }
}
