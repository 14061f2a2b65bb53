using System.Globalization;
using Heddle.Contracts;

namespace Heddle.Agent.Isolation;

/// <summary>
/// A block of uids leased for one cluster on a machine that runs several (`heddle up`, test clusters): blocks of
/// <see cref="Size"/> uids from <see cref="First"/> (above the default range of a real cluster), each held by an
/// exclusive lock on <c>/run/heddle/uid-blocks/&lt;first uid&gt;</c> for as long as the cluster runs, so two clusters
/// on one host never hand out the same uid. Not root: the default range, unleased (instances run as the user anyway).
/// </summary>
public sealed class UidBlock : IDisposable
{
    public const int First = 300000;
    public const int Size = 1000;
    public const int Blocks = 200;
    public const string DefaultFolder = "/run/heddle/uid-blocks";

    private readonly FileStream? _lock;

    private UidBlock(UidRange range, FileStream? held)
    {
        Range = range;
        _lock = held;
    }

    public UidRange Range { get; }

    /// <summary>
    /// Leases a free block; <paramref name="remembered"/> (a file in the cluster's state folder) names the block the
    /// cluster had before, which its services' uids come from: it takes that one again, or fails saying who holds it.
    /// </summary>
    public static UidBlock Lease(string? remembered = null, string folder = DefaultFolder)
    {
        if (!Drivers.Posix.IsRoot)
        {
            return new UidBlock(UidRange.Default, null);
        }

        Directory.CreateDirectory(folder);
        if (remembered is not null && File.Exists(remembered)
            && UidRange.Parse(File.ReadAllText(remembered).Trim(), out _) is { } before)
        {
            try
            {
                return new UidBlock(before, new FileStream(Path.Combine(folder, before.First.ToString(CultureInfo.InvariantCulture)), FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None));
            }
            catch (IOException)
            {
                throw new InvalidOperationException($"this cluster's services run as uids {before}, which another cluster on this machine holds now; stop that one first");
            }
        }

        for (var block = 0; block < Blocks; block++)
        {
            var first = First + (block * Size);
            try
            {
                var held = new FileStream(Path.Combine(folder, first.ToString(CultureInfo.InvariantCulture)), FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None);
                var range = new UidRange(first, first + Size - 1);
                if (remembered is not null)
                {
                    File.WriteAllText(remembered, range + "\n");
                }

                return new UidBlock(range, held);
            }
            catch (IOException)
            {
                // Held by another cluster on this machine.
            }
        }

        throw new InvalidOperationException($"all {Blocks} uid blocks of {First}-{First + (Blocks * Size) - 1} are held by clusters running on this machine; stop one");
    }

    public void Dispose()
    {
        if (_lock is { } held)
        {
            var path = held.Name;
            held.Dispose();
            try
            {
                File.Delete(path);
            }
            catch (IOException)
            {
            }
        }
    }
}
