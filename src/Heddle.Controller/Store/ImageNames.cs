namespace Heddle.Controller.Store;

/// <summary>
/// What a role's <c>image: X</c> means for a tenant's service: the tenant's own image X if it has one, else the shared
/// X. A tenant cannot import an image under a shared image's name, so a name it already uses never comes to mean
/// another image under it; a shared image the admin adds later under a name a tenant already has is not that tenant's.
/// </summary>
public static class ImageNames
{
    public static ImageRecord? Resolve(IClusterStore store, string tenant, string name) => store.GetImage(tenant, name) ?? store.GetImage(null, name);
}
