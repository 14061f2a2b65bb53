using Heddle.Controller.Store;

namespace Heddle.Controller.Blobs;

/// <summary>Whether anything the store records names a blob: a package, a base image or a part of a host image. A blob nothing names may be deleted.</summary>
public static class BlobReferences
{
    public static bool IsNamed(IClusterStore store, IMachineStore machines, string sha256) =>
        store.GetPackage(sha256) is not null
        || store.ListImages().Any(i => i.Sha256 == sha256)
        || machines.ListHostImages().Any(h => h.KernelSha256 == sha256 || h.InitrdSha256 == sha256);

    /// <summary>Deletes the blob unless something names it.</summary>
    public static void DeleteIfUnnamed(BlobStore blobs, IClusterStore store, IMachineStore machines, string sha256)
    {
        if (!IsNamed(store, machines, sha256))
        {
            File.Delete(blobs.PathOf(sha256));
        }
    }
}
