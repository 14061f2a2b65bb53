using System.CommandLine;
using System.Diagnostics;
using System.IO.Compression;
using Heddle.Cli.Client;
using Heddle.Contracts.Api;

namespace Heddle.Cli.Commands;

/// <summary>`heddle image build|import|list|delete`: the base images container roles run in.</summary>
internal static class ImageCommands
{
    private const string DebianSources = "/etc/apt/sources.list.d/debian.sources";

    public static Command Create(CliConsole console)
    {
        var command = new Command("image", "Base images for roles with driver: container (root file systems kept by the controller)");
        command.Subcommands.Add(Build(console));
        command.Subcommands.Add(Import(console));
        command.Subcommands.Add(List(console));
        command.Subcommands.Add(Delete(console));
        return command;
    }

    private static Command Build(CliConsole console)
    {
        var name = new Argument<string>("name") { Description = "The image's name, as roles name it in 'image:' (for example debian-12)" };
        var suite = new Option<string>("--suite") { Description = "The Debian release", DefaultValueFactory = _ => "bookworm" };
        var include = new Option<string?>("--include") { Description = "Packages to add, comma-separated (for example python3,ca-certificates)" };
        var mirror = new Option<string?>("--mirror") { Description = $"Where packages come from (default: this machine's apt sources, {DebianSources})" };
        var keep = new Option<string?>("--keep") { Description = "Also keep the tarball at this path (to import it into other clusters)" };
        var format = CommonOptions.Format();
        var command = new Command("build", "Build a minimal Debian root file system with mmdebstrap (needs root, about a minute) and import it") { name, suite, include, mirror, keep, format };
        command.SetAction(async (parse, ct) =>
        {
            var imageName = parse.GetValue(name)!;
            var temporary = Directory.CreateTempSubdirectory("heddle-image-");
            try
            {
                var tar = Path.Combine(temporary.FullName, $"{imageName}.tar");
                var args = new List<string> { "--variant=minbase", "--quiet" };
                if (parse.GetValue(include) is { Length: > 0 } packages)
                {
                    args.Add($"--include={packages}");
                }

                // Documentation and translations are left out: a base image is for running, not reading.
                args.AddRange(["--dpkgopt=path-exclude=/usr/share/man/*", "--dpkgopt=path-exclude=/usr/share/locale/*", "--dpkgopt=path-include=/usr/share/locale/locale.alias",
                    "--dpkgopt=path-exclude=/usr/share/doc/*", "--dpkgopt=path-include=/usr/share/doc/*/copyright"]);
                args.Add(parse.GetValue(suite)!);
                args.Add(tar);
                var source = parse.GetValue(mirror) ?? (File.Exists(DebianSources) ? DebianSources : null);
                if (source is not null)
                {
                    args.Add(source);
                }

                console.Error.WriteLine($"building {imageName}: mmdebstrap {string.Join(' ', args)}");
                var started = Stopwatch.StartNew();
                var (code, error) = await RunAsync("mmdebstrap", args, ct);
                if (code != 0)
                {
                    console.Error.WriteLine($"heddle: mmdebstrap failed (exit {code}): {Tail(error)}");
                    return ExitCodes.Invalid;
                }

                console.Error.WriteLine($"built in {started.Elapsed.TotalSeconds:0.0} s ({CommonOptions.FormatBytes(new FileInfo(tar).Length)})");
                if (parse.GetValue(keep) is { } copy)
                {
                    File.Copy(tar, copy, overwrite: true);
                }

                return await UploadAsync(console, imageName, tar, parse.GetValue(format) == "json", ct);
            }
            finally
            {
                temporary.Delete(recursive: true);
            }
        });
        return command;
    }

    private static Command Import(CliConsole console)
    {
        var name = new Argument<string>("name") { Description = "The image's name, as roles name it in 'image:'" };
        var file = new Argument<string>("file") { Description = "A root file system tarball: .tar, .tar.gz or .tar.zst" };
        var format = CommonOptions.Format();
        var command = new Command("import", "Import a root file system tarball as a base image") { name, file, format };
        command.SetAction(async (parse, ct) =>
        {
            var path = CommonOptions.RequireExistingFile(parse.GetValue(file)!, "image file");
            var temporary = Directory.CreateTempSubdirectory("heddle-image-");
            try
            {
                var tar = await DecompressAsync(path, Path.Combine(temporary.FullName, "image.tar"), ct);
                return await UploadAsync(console, parse.GetValue(name)!, tar, parse.GetValue(format) == "json", ct);
            }
            finally
            {
                temporary.Delete(recursive: true);
            }
        });
        return command;
    }

    private static Command List(CliConsole console)
    {
        var format = CommonOptions.Format();
        var command = new Command("list", "List the cluster's base images and the services that use them") { format };
        command.SetAction(async (parse, ct) =>
        {
            using var api = ClientConfig.Load().Connect();
            var images = await api.ListImagesAsync(ct);
            if (parse.GetValue(format) == "json")
            {
                console.WriteJson(images);
                return ExitCodes.Ok;
            }

            var table = new Table("IMAGE", "OWNER", "SHA256", "SIZE", "FILES", "ADDED", "USED BY");
            foreach (var image in images)
            {
                table.Add(image.Name, image.Tenant ?? "shared", image.Sha256[..12], CommonOptions.FormatBytes(image.Bytes), image.Files, image.Added.ToString("u"), image.UsedBy.Count == 0 ? "-" : string.Join(",", image.UsedBy));
            }

            table.Write(console.Out);
            return ExitCodes.Ok;
        });
        return command;
    }

    private static Command Delete(CliConsole console)
    {
        var name = new Argument<string>("name") { Description = "The image" };
        var tenant = new Option<string?>("--tenant") { Description = "Admin only: delete that tenant's own image of the name, not the shared one" };
        var command = new Command("delete", "Delete a base image no kept revision of any service uses") { name, tenant };
        command.SetAction(async (parse, ct) =>
        {
            using var api = ClientConfig.Load().Connect();
            await api.DeleteImageAsync(parse.GetValue(name)!, parse.GetValue(tenant), ct);
            console.Out.WriteLine($"image {parse.GetValue(name)} deleted");
            return ExitCodes.Ok;
        });
        return command;
    }

    private static async Task<int> UploadAsync(CliConsole console, string name, string tar, bool json, CancellationToken ct)
    {
        using var api = ClientConfig.Load().Connect();
        var imported = await api.UploadImageAsync(name, tar, ct);
        if (json)
        {
            console.WriteJson(imported);
        }
        else
        {
            var devices = imported.DevicesSkipped > 0 ? $"; {imported.DevicesSkipped} device files left out (a container gets its own /dev)" : string.Empty;
            console.Out.WriteLine(imported.AlreadyPresent
                ? $"image {name} is already present ({imported.Sha256[..12]})"
                : $"image {name} imported: {imported.Sha256[..12]}, {CommonOptions.FormatBytes(imported.Bytes)}, {imported.Files} files{devices}");
        }

        return ExitCodes.Ok;
    }

    /// <summary>A tarball as given, or decompressed (gzip by .NET, zstd by the zstd command) to <paramref name="target"/>: the controller keeps plain tar.</summary>
    private static async Task<string> DecompressAsync(string path, string target, CancellationToken ct)
    {
        var magic = new byte[4];
        await using (var probe = File.OpenRead(path))
        {
            _ = await probe.ReadAtLeastAsync(magic, 4, throwOnEndOfStream: false, ct);
        }

        if (magic[0] == 0x1f && magic[1] == 0x8b)
        {
            await using var input = new GZipStream(File.OpenRead(path), CompressionMode.Decompress);
            await using var output = File.Create(target);
            await input.CopyToAsync(output, ct);
            return target;
        }

        if (magic is [0x28, 0xb5, 0x2f, 0xfd])
        {
            var (code, error) = await RunAsync("zstd", ["-d", "-q", "-f", "-o", target, path], ct);
            if (code != 0)
            {
                throw new UsageException($"'{path}' is zstd-compressed and 'zstd -d' failed (exit {code}): {Tail(error)}");
            }

            return target;
        }

        return path;
    }

    private static async Task<(int Code, string Error)> RunAsync(string program, IEnumerable<string> args, CancellationToken ct)
    {
        var start = new ProcessStartInfo(program) { UseShellExecute = false, RedirectStandardError = true };
        foreach (var arg in args)
        {
            start.ArgumentList.Add(arg);
        }

        Process process;
        try
        {
            process = Process.Start(start)!;
        }
        catch (System.ComponentModel.Win32Exception)
        {
            throw new UsageException($"{program} is not installed here (apt-get install {program})");
        }

        using (process)
        {
            var error = process.StandardError.ReadToEndAsync(ct);
            await process.WaitForExitAsync(ct);
            return (process.ExitCode, await error);
        }
    }

    private static string Tail(string text)
    {
        var lines = text.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        return lines.Length == 0 ? "(no message)" : string.Join(" | ", lines.TakeLast(3));
    }
}
