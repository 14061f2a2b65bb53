using System.Security.Cryptography;

namespace Heddle.Controller.Blobs;

/// <summary>Package and image blobs on disk, named by their SHA-256. A blob appears only whole and verified.</summary>
public sealed class BlobStore
{
    private readonly string _directory;

    public BlobStore(string directory)
    {
        _directory = directory;
        Directory.CreateDirectory(directory);
    }

    public string PathOf(string sha256) => Path.Combine(_directory, sha256);

    public bool Exists(string sha256) => File.Exists(PathOf(sha256));

    /// <summary>Streams a blob to a temporary file, then keeps it only if its hash is the one claimed.</summary>
    /// <returns>The size, or null when the content's hash differs from <paramref name="sha256"/>.</returns>
    public async Task<long?> PutAsync(string sha256, Stream content, long maxBytes, CancellationToken cancellationToken, string what = "package")
    {
        var temporary = Path.Combine(_directory, $".{sha256}.{Guid.NewGuid():N}.upload");
        try
        {
            long size = 0;
            using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
            await using (var file = new FileStream(temporary, FileMode.CreateNew, FileAccess.Write, FileShare.None, 81920, useAsync: true))
            {
                var buffer = new byte[81920];
                int read;
                while ((read = await content.ReadAsync(buffer, cancellationToken)) > 0)
                {
                    size += read;
                    if (size > maxBytes)
                    {
                        throw new InvalidDataException($"the {what} is larger than {maxBytes} bytes");
                    }

                    hash.AppendData(buffer, 0, read);
                    await file.WriteAsync(buffer.AsMemory(0, read), cancellationToken);
                }

                await file.FlushAsync(cancellationToken);
                file.Flush(flushToDisk: true);
            }

            if (Convert.ToHexStringLower(hash.GetHashAndReset()) != sha256)
            {
                return null;
            }

            File.Move(temporary, PathOf(sha256), overwrite: true);
            return size;
        }
        finally
        {
            File.Delete(temporary);
        }
    }
}
