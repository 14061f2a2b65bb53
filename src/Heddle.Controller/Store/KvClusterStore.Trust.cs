using Heddle.Controller.Store.Kv;

namespace Heddle.Controller.Store;

/// <summary>Tokens (under their hash) and node certificates (under their serial).</summary>
public sealed partial class KvClusterStore
{
    public Task<bool> PutTokenAsync(TokenRecord token, CancellationToken cancellationToken = default) =>
        CommitAsync([new(Keys.Token(token.Hash), 0)], [Put(Keys.Token(token.Hash), token)], cancellationToken);

    public TokenRecord? GetTokenByHash(string hash) => Read<TokenRecord>(Keys.Token(hash));

    public IReadOnlyList<TokenRecord> ListTokens() =>
        [.. ReadAll<TokenRecord>("tokens/").OrderBy(t => t.Created).ThenBy(t => t.Id, StringComparer.Ordinal)];

    public Task<bool> UseTokenAsync(string hash, CancellationToken cancellationToken = default)
    {
        var key = Keys.Token(hash);
        if (Read<TokenRecord>(key) is not { } token)
        {
            return Task.FromResult(false);
        }

        // A token without a count of uses has nothing to count: it is not written. Written, every enrolment changed the
        // one record of the join token that all nodes share, each with a condition on the last change; at 10,000 nodes
        // enrolling at once one of them got through per store round trip, and the enrolments slowed to two a second.
        if (token.UsesLeft is null)
        {
            return Task.FromResult(true);
        }

        // A counted token's uses asked for together are taken in one write (UseCombiner). The combiner of a token nobody
        // is using is forgotten; one made twice for a token in a race only costs a write that may conflict.
        return _tokenUses.GetOrAdd(hash, _ => new UseCombiner(asked => TakeUsesAsync(key, asked), idle => _tokenUses.TryRemove(new(hash, idle)))).UseAsync().WaitAsync(cancellationToken);
    }

    /// <summary>Takes up to <paramref name="asked"/> uses of a counted token in one write; how many it got.</summary>
    private async Task<int> TakeUsesAsync(string key, int asked)
    {
        var granted = 0;
        return await ChangeAsync<TokenRecord>(key, t => t.UsesLeft is { } left && (granted = Math.Min(asked, left)) > 0 ? t with { UsesLeft = left - granted } : null, CancellationToken.None)
            ? granted
            : 0;
    }

    private readonly System.Collections.Concurrent.ConcurrentDictionary<string, UseCombiner> _tokenUses = new(StringComparer.Ordinal);

    public async Task<TokenRecord?> RevokeTokenAsync(string idPrefix, CancellationToken cancellationToken = default)
    {
        var matches = ListTokens().Where(t => t.Id.StartsWith(idPrefix, StringComparison.Ordinal)).ToList();
        if (matches.Count != 1)
        {
            return null;
        }

        return await ChangeAsync<TokenRecord>(Keys.Token(matches[0].Hash), t => t with { Revoked = true }, cancellationToken) ? matches[0] with { Revoked = true } : null;
    }

    public Task PutCertificateAsync(CertificateRecord certificate, CancellationToken cancellationToken = default) =>
        CommitAsync([new(Keys.Certificate(certificate.Serial), 0)], [Put(Keys.Certificate(certificate.Serial), certificate)], cancellationToken);

    public IReadOnlyList<CertificateRecord> ListCertificates() => ReadAll<CertificateRecord>("certificates/");

    public IReadOnlyList<CertificateRecord> ListCertificatesOf(string node) => _certificatesByNode.Of(node);

    /// <summary>Every node's certificates, kept grouped: an enrolment asks for its node's.</summary>
    private readonly MirrorGrouping<CertificateRecord> _certificatesByNode;

    public CertificateRecord? GetCertificate(string serial) => Read<CertificateRecord>(Keys.Certificate(serial));

    public async Task<int> RevokeCertificatesAsync(string node, CancellationToken cancellationToken = default)
    {
        for (var attempt = 0; attempt < Retries; attempt++)
        {
            var inForce = _mirror.List("certificates/").Select(e => (Entry: e, Record: Decode<CertificateRecord>(e))).Where(c => c.Record.Node == node && !c.Record.Revoked).ToList();
            if (inForce.Count == 0 || await CommitAsync(
                [.. inForce.Select(c => new KvCondition(c.Entry.Key, c.Entry.ModRevision))], [.. inForce.Select(c => Put(c.Entry.Key, c.Record with { Revoked = true }))], cancellationToken))
            {
                return inForce.Count;
            }
        }

        throw new KvUnavailableException($"store busy: the certificates of {node} changed under {Retries} writes in a row");
    }

    public async Task<bool> RemoveNodeAsync(string node, CancellationToken cancellationToken = default, NewEvent? told = null)
    {
        if (_mirror.Get(Keys.Node(node)) is null)
        {
            return false;
        }

        await CommitToldAsync([], [KvWrite.Delete(Keys.Node(node)), KvWrite.Delete(Keys.Seen(node)), KvWrite.Delete(Keys.Session(node))], Told(told), ChangeSource.Here, cancellationToken);
        return true;
    }
}
