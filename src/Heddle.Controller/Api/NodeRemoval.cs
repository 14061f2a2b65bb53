using Heddle.Controller.Store;
using Heddle.Controller.Trust;
using Microsoft.AspNetCore.Http;

namespace Heddle.Controller.Api;

/// <summary>
/// `heddle nodes remove NODE`: revokes the node's certificate (its stream is cut at once and every later call
/// refused), forgets the node, and lets the reconcilers place its instances elsewhere. The machine must enrol again,
/// with a new join token, to come back.
/// </summary>
public sealed class NodeRemoval(IClusterStore store, ITrustStore trust, NodeCertificates certificates)
{
    internal async Task<IResult> RemoveAsync(string name)
    {
        var node = store.GetNode(name);
        var revoked = await certificates.RevokeAsync(name);
        if (node is null && !revoked)
        {
            var names = store.ListNodes().Select(n => n.Name).ToList();
            var nearest = Heddle.Model.Validation.Suggestions.Nearest(name, names);
            return Problems.NotFound($"no node '{Printable.Of(name)}'{(nearest is not null ? $"; did you mean '{nearest}'?" : string.Empty)}");
        }

        // The change feed ends the node's stream (the certificate revoked) and queues the services it ran (the node gone).
        var instances = store.ListInstancesOnNode(name);
        await trust.RemoveNodeAsync(name, told: new NewEvent(EventKind.NodeRemoved, name, $"node {name} removed: its certificate is revoked, its {instances.Count} instance(s) are placed elsewhere"));

        return Results.NoContent();
    }
}
