using System.Formats.Tar;
using System.Runtime.InteropServices;

namespace Heddle.Packaging;

/// <summary>Limits on a base image (a root file system tarball): what the controller accepts and an agent unpacks.</summary>
public sealed record RootfsLimits
{
    public static RootfsLimits Default { get; } = new();

    /// <summary>The tarball as uploaded. Default 4 GiB.</summary>
    public long MaxArchiveBytes { get; init; } = 4L << 30;

    /// <summary>The sum of the file sizes inside. Default 4 GiB.</summary>
    public long MaxUnpackedBytes { get; init; } = 4L << 30;

    public int MaxEntries { get; init; } = 500_000;

    public int MaxPathLength { get; init; } = 4096;

    public int MaxDepth { get; init; } = 128;
}

/// <summary>What a checked or unpacked image holds.</summary>
public sealed record RootfsSummary(int Files, int Directories, int Links, long Bytes, int DevicesSkipped);

public sealed class RootfsArchiveException(string message) : Exception(message);

/// <summary>
/// A base image is an uncompressed tar of a root file system (what `mmdebstrap` writes). It is read with the rules a
/// package has: every name stays inside the tree (no `..`, nothing written through a symbolic link the archive made,
/// hard links only to files already unpacked), no device files or fifos (they are skipped and counted: the container
/// gets its own /dev), setuid and setgid bits dropped, everything owned by root, sizes and counts limited. Symbolic
/// links may point anywhere: they are only ever followed inside the container, whose root is the image.
/// </summary>
public static partial class RootfsArchive
{
    /// <summary>Reads the whole archive and throws <see cref="RootfsArchiveException"/> saying what is wrong, and where.</summary>
    public static RootfsSummary Check(Stream tar, RootfsLimits limits) => Walk(tar, limits, target: null);

    /// <summary>
    /// Unpacks into <paramref name="targetDirectory"/> (which must not exist) through a temporary sibling renamed into
    /// place at the end: the target holds the whole image or does not exist.
    /// </summary>
    public static RootfsSummary Extract(Stream tar, string targetDirectory, RootfsLimits limits)
    {
        var target = Path.GetFullPath(targetDirectory);
        if (Directory.Exists(target))
        {
            throw new RootfsArchiveException($"'{target}' already exists");
        }

        var staging = $"{target}.{Guid.NewGuid():N}.partial";
        Directory.CreateDirectory(staging);
        try
        {
            var summary = Walk(tar, limits, staging);
            Directory.Move(staging, target);
            return summary;
        }
        finally
        {
            if (Directory.Exists(staging))
            {
                Directory.Delete(staging, recursive: true);
            }
        }
    }

    private static RootfsSummary Walk(Stream tar, RootfsLimits limits, string? target)
    {
        var reader = new TarReader(tar, leaveOpen: true);
        int files = 0, directories = 0, links = 0, devices = 0, entries = 0;
        long bytes = 0;
        var known = new Dictionary<string, TarEntryType>(StringComparer.Ordinal); // unpacked names → what they are
        var directoryModes = new List<(string Path, UnixFileMode Mode)>();
        TarEntry? entry;
        while ((entry = Next(reader, entries)) is not null)
        {
            if (++entries > limits.MaxEntries)
            {
                throw new RootfsArchiveException($"the image has more than {limits.MaxEntries} entries");
            }

            var name = Normalize(entry.Name, limits);
            if (name.Length == 0)
            {
                if (entry.EntryType == TarEntryType.Directory && target is not null)
                {
                    directoryModes.Add((target, Mode(entry.Mode)));
                }

                continue; // the root itself
            }

            var parent = Path.GetDirectoryName(name) ?? string.Empty;
            for (var above = parent; above.Length > 0; above = Path.GetDirectoryName(above) ?? string.Empty)
            {
                if (known.TryGetValue(above, out var aboveType) && aboveType != TarEntryType.Directory)
                {
                    throw new RootfsArchiveException($"entry '{entry.Name}' lies under '{above}', which the image made a {Describe(aboveType)}: nothing is written through it");
                }
            }

            var path = target is null ? null : Path.Combine(target, name);
            MakeParents(target, parent, known);
            switch (entry.EntryType)
            {
                case TarEntryType.Directory:
                    directories++;
                    if (path is not null)
                    {
                        RemoveIfNotDirectory(path, known, name);
                        Directory.CreateDirectory(path);
                        directoryModes.Add((path, Mode(entry.Mode)));
                    }

                    known[name] = TarEntryType.Directory;
                    break;
                case TarEntryType.RegularFile or TarEntryType.V7RegularFile or TarEntryType.ContiguousFile:
                    files++;
                    bytes += entry.Length;
                    if (bytes > limits.MaxUnpackedBytes)
                    {
                        throw new RootfsArchiveException($"the image holds more than {limits.MaxUnpackedBytes} bytes (at '{entry.Name}')");
                    }

                    if (path is not null)
                    {
                        RemoveExisting(path, known, name);
                        using (var output = new FileStream(path, FileMode.CreateNew, FileAccess.Write))
                        {
                            entry.DataStream?.CopyTo(output);
                        }

                        File.SetUnixFileMode(path, Mode(entry.Mode));
                    }

                    known[name] = TarEntryType.RegularFile;
                    break;
                case TarEntryType.SymbolicLink:
                    links++;
                    if (string.IsNullOrEmpty(entry.LinkName) || entry.LinkName.Length > limits.MaxPathLength || entry.LinkName.Contains('\0'))
                    {
                        throw new RootfsArchiveException($"symbolic link '{entry.Name}' has an empty or overlong target");
                    }

                    if (path is not null)
                    {
                        RemoveExisting(path, known, name);
                        File.CreateSymbolicLink(path, entry.LinkName);
                    }

                    known[name] = TarEntryType.SymbolicLink;
                    break;
                case TarEntryType.HardLink:
                    links++;
                    var source = Normalize(entry.LinkName, limits);
                    if (!known.TryGetValue(source, out var sourceType) || sourceType != TarEntryType.RegularFile)
                    {
                        throw new RootfsArchiveException($"hard link '{entry.Name}' names '{entry.LinkName}', which is not a file unpacked before it");
                    }

                    if (path is not null)
                    {
                        RemoveExisting(path, known, name);
                        if (link(Path.Combine(target!, source), path) != 0)
                        {
                            File.Copy(Path.Combine(target!, source), path);
                        }
                    }

                    known[name] = TarEntryType.RegularFile;
                    break;
                case TarEntryType.CharacterDevice or TarEntryType.BlockDevice or TarEntryType.Fifo:
                    devices++;
                    break;
                case TarEntryType.GlobalExtendedAttributes or TarEntryType.ExtendedAttributes:
                    break;
                default:
                    throw new RootfsArchiveException($"entry '{entry.Name}' is a {entry.EntryType}, which an image may not hold");
            }
        }

        if (entries == 0)
        {
            throw new RootfsArchiveException("the archive is empty");
        }

        // Directory modes last and deepest first, so a read-only directory does not stop its own children being written.
        foreach (var (path, mode) in directoryModes.OrderByDescending(d => d.Path.Length))
        {
            File.SetUnixFileMode(path, mode);
        }

        return new RootfsSummary(files, directories, links, bytes, devices);
    }

    private static TarEntry? Next(TarReader reader, int read)
    {
        try
        {
            return reader.GetNextEntry(copyData: false);
        }
        catch (Exception e) when (e is InvalidDataException or FormatException or EndOfStreamException or ArgumentException)
        {
            throw new RootfsArchiveException(read == 0 ? $"not a tar archive ({e.Message}); give an uncompressed, .gz or .zst tarball of a root file system" : $"the archive is damaged after {read} entries ({e.Message})");
        }
    }

    /// <summary>"./usr/bin/" → "usr/bin"; refuses `..`, NUL, overlong names and too deep trees.</summary>
    private static string Normalize(string name, RootfsLimits limits)
    {
        if (name.Length > limits.MaxPathLength || name.Contains('\0'))
        {
            throw new RootfsArchiveException($"entry name '{name[..Math.Min(80, name.Length)]}…' is overlong or holds a NUL");
        }

        var parts = name.Split('/', StringSplitOptions.RemoveEmptyEntries).Where(p => p != ".").ToList();
        if (parts.Contains(".."))
        {
            throw new RootfsArchiveException($"entry '{name}' climbs out of the tree with '..'");
        }

        if (parts.Count > limits.MaxDepth)
        {
            throw new RootfsArchiveException($"entry '{name[..Math.Min(80, name.Length)]}…' is nested more than {limits.MaxDepth} deep");
        }

        return string.Join('/', parts);
    }

    /// <summary>Directories an archive names only implicitly (a file before its folder) are made as plain 0755 folders.</summary>
    private static void MakeParents(string? target, string parent, Dictionary<string, TarEntryType> known)
    {
        if (parent.Length == 0 || known.ContainsKey(parent))
        {
            return;
        }

        MakeParents(target, Path.GetDirectoryName(parent) ?? string.Empty, known);
        if (target is not null)
        {
            Directory.CreateDirectory(Path.Combine(target, parent));
        }

        known[parent] = TarEntryType.Directory;
    }

    /// <summary>A later entry of the same name replaces an earlier one (never writes through a link it made).</summary>
    private static void RemoveExisting(string path, Dictionary<string, TarEntryType> known, string name)
    {
        if (!known.TryGetValue(name, out var type))
        {
            return;
        }

        if (type == TarEntryType.Directory)
        {
            throw new RootfsArchiveException($"entry '{name}' would replace a directory of the same name");
        }

        File.Delete(path);
    }

    private static void RemoveIfNotDirectory(string path, Dictionary<string, TarEntryType> known, string name)
    {
        if (known.TryGetValue(name, out var type) && type != TarEntryType.Directory)
        {
            File.Delete(path);
            known.Remove(name);
        }
    }

    private static string Describe(TarEntryType type) => type == TarEntryType.SymbolicLink ? "symbolic link" : "file";

    /// <summary>Permission bits and the sticky bit (/tmp); never setuid or setgid.</summary>
    private static UnixFileMode Mode(UnixFileMode mode) => mode & (UnixFileMode)0b1_111_111_111 & ~(UnixFileMode.SetUser | UnixFileMode.SetGroup);

    [LibraryImport("libc", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int link(string oldPath, string newPath);
}
