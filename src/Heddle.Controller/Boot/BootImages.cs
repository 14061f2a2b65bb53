using System.Collections.Concurrent;
using System.Security.Cryptography;
using Heddle.Contracts.Api;

namespace Heddle.Controller.Boot;

/// <summary>
/// The kernels and initramfs images the boot service hands out: the host image a boot decision names, its two parts
/// fetched once from the controller by SHA-256 into a cache folder (each verified before it is served, so a corrupt
/// download is never booted), or else the boot service's own kernel and initramfs (`--kernel`, `--initrd`), if it has them.
/// </summary>
public sealed class BootImages(string? kernel, string? initrd, string cacheDirectory, Func<string, Stream, CancellationToken, Task> fetch)
{
    /// <summary>How long one part may take to fetch from the controller.</summary>
    public static readonly TimeSpan FetchDeadline = TimeSpan.FromMinutes(5);

    private readonly ConcurrentDictionary<string, Lazy<Task>> _fetches = new(StringComparer.Ordinal);

    /// <summary>The paths (under the boot server) of the kernel and initramfs for a decision to install, or null with why there are none.</summary>
    public async Task<(string? Kernel, string? Initrd, string? Missing)> PartsAsync(BootDecision decision, CancellationToken cancellationToken)
    {
        if (decision.Image is { } image)
        {
            await Task.WhenAll(EnsureAsync(image.KernelSha256, cancellationToken), EnsureAsync(image.InitrdSha256, cancellationToken));
            return ($"boot/images/{image.KernelSha256}", $"boot/images/{image.InitrdSha256}", null);
        }

        return kernel is not null && initrd is not null
            ? ("boot/kernel", "boot/initrd", null)
            : (null, null, $"machine {decision.Machine} is set to no host image and this boot service was given no --kernel and --initrd ('heddle machine add ... --host-image NAME')");
    }

    public string? Kernel => kernel;

    public string? Initrd => initrd;

    /// <summary>A cached part's file, or null (only parts fetched and verified are served).</summary>
    public string? PathOf(string sha256) => Heddle.Model.Packages.Sha256Hex.IsValid(sha256) && File.Exists(Path.Combine(cacheDirectory, sha256)) ? Path.Combine(cacheDirectory, sha256) : null;

    /// <summary>Fetches a part unless it is cached; cards booting at once wait on one fetch.</summary>
    private async Task EnsureAsync(string sha256, CancellationToken cancellationToken)
    {
        if (PathOf(sha256) is not null)
        {
            return;
        }

        var fetching = _fetches.GetOrAdd(sha256, s => new Lazy<Task>(() => FetchAsync(s)));
        try
        {
            await fetching.Value.WaitAsync(cancellationToken);
        }
        finally
        {
            if (fetching.Value.IsCompleted)
            {
                _fetches.TryRemove(new KeyValuePair<string, Lazy<Task>>(sha256, fetching));
            }
        }
    }

    private async Task FetchAsync(string sha256)
    {
        Directory.CreateDirectory(cacheDirectory);
        var temporary = Path.Combine(cacheDirectory, $".{sha256}.{Guid.NewGuid():N}.partial");
        using var deadline = new CancellationTokenSource(FetchDeadline);
        try
        {
            await using (var file = new FileStream(temporary, FileMode.CreateNew, FileAccess.Write, FileShare.None, 1 << 16, useAsync: true))
            {
                await fetch(sha256, file, deadline.Token);
            }

            string actual;
            await using (var written = File.OpenRead(temporary))
            {
                actual = Convert.ToHexStringLower(await SHA256.HashDataAsync(written, deadline.Token));
            }

            if (actual != sha256)
            {
                throw new InvalidDataException($"the controller sent a host image part whose SHA-256 is {actual[..12]}, not {sha256[..12]}");
            }

            File.Move(temporary, Path.Combine(cacheDirectory, sha256), overwrite: true);
        }
        finally
        {
            File.Delete(temporary);
        }
    }
}
