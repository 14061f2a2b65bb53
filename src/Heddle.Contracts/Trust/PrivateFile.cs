using System.Text;

namespace Heddle.Contracts.Trust;

/// <summary>Writes a file only its owner can read (mode 0600), atomically: keys, tokens, the client configuration.</summary>
public static class PrivateFile
{
    public static void Write(string path, string content)
    {
        var temporary = path + ".tmp";
        using (var file = new FileStream(temporary, new FileStreamOptions
        {
            Mode = FileMode.Create, Access = FileAccess.Write, UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite,
        }))
        {
            file.Write(Encoding.UTF8.GetBytes(content.EndsWith('\n') ? content : content + "\n"));
            file.Flush(flushToDisk: true); // on disk before the rename makes it the file: a crash leaves the old or the new, whole
        }

        File.SetUnixFileMode(temporary, UnixFileMode.UserRead | UnixFileMode.UserWrite);
        File.Move(temporary, path, overwrite: true);
    }
}
