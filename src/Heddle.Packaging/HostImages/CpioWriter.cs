using System.Globalization;
using System.Text;

namespace Heddle.Packaging.HostImages;

/// <summary>
/// Writes the "new ASCII" cpio format (newc) the Linux kernel unpacks an initramfs from: per entry a 110-byte hex header,
/// the name, the data, each padded to 4 bytes; owned by root. Entries go out in the order written, so a folder must be
/// written before what it holds.
/// </summary>
public sealed class CpioWriter(Stream output)
{
    private const int DirectoryType = 0x4000;
    private const int FileType = 0x8000;
    private const int LinkType = 0xA000;

    private int _inode = 1;

    public void Directory(string name, int permissions = 0b111_101_101) => Header(name, DirectoryType | permissions, 2, 0);

    public void File(string name, ReadOnlySpan<byte> data, int permissions) => Entry(name, data, FileType | permissions);

    /// <summary>A file copied from <paramref name="source"/> as it is read (an executable of 100 MB is not held in memory).</summary>
    public void File(string name, string source, int permissions)
    {
        using var input = System.IO.File.OpenRead(source);
        var length = input.Length;
        if (length > int.MaxValue)
        {
            throw new IOException($"{source} is larger than a cpio entry can hold (4 GiB)");
        }

        Header(name, FileType | permissions, 1, (int)length);
        input.CopyTo(output);
        Pad((int)length);
    }

    public void Symlink(string name, string target) => Entry(name, Encoding.UTF8.GetBytes(target), LinkType | 0b111_111_111);

    public void Trailer() => Header("TRAILER!!!", 0, 1, 0);

    private void Entry(string name, ReadOnlySpan<byte> data, int mode)
    {
        Header(name, mode, 1, data.Length);
        output.Write(data);
        Pad(data.Length);
    }

    private void Header(string name, int mode, int links, int size)
    {
        var nameBytes = Encoding.UTF8.GetBytes(name + "\0");
        var fields = new[] { _inode++, mode, 0, 0, links, 0, size, 0, 0, 0, 0, nameBytes.Length, 0 };
        output.Write(Encoding.ASCII.GetBytes("070701" + string.Concat(fields.Select(f => f.ToString("X8", CultureInfo.InvariantCulture)))));
        output.Write(nameBytes);
        Pad(110 + nameBytes.Length);
    }

    private void Pad(int length)
    {
        for (var i = length; i % 4 != 0; i++)
        {
            output.WriteByte(0);
        }
    }
}
