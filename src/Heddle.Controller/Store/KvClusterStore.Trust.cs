using Heddle.Controller.Store.Kv;

namespace Heddle.Controller.Store;

/// <summary>Tokens (under their hash) and node certificates (under their serial).</summary>
public sealed partial class KvClusterStore
{
    public bool PutToken(TokenRecord token) => Commit([new(Keys.Token(token.Hash), 0)], [Put(Keys.Token(token.Hash), token)]);

    public TokenRecord? GetTokenByHash(string hash) => Read<TokenRecord>(Keys.Token(hash));

    public IReadOnlyList<TokenRecord> ListTokens() =>
        [.. ReadAll<TokenRecord>("tokens/").OrderBy(t => t.Created).ThenBy(t => t.Id, StringComparer.Ordinal)];

    public bool UseToken(string hash) =>
        Change<TokenRecord>(Keys.Token(hash), t => t.UsesLeft is not { } left ? t : left > 0 ? t with { UsesLeft = left - 1 } : null);

    public TokenRecord? RevokeToken(string idPrefix)
    {
        var matches = ListTokens().Where(t => t.Id.StartsWith(idPrefix, StringComparison.Ordinal)).ToList();
        if (matches.Count != 1)
        {
            return null;
        }

        return Change<TokenRecord>(Keys.Token(matches[0].Hash), t => t with { Revoked = true }) ? matches[0] with { Revoked = true } : null;
    }

    public void PutCertificate(CertificateRecord certificate) =>
        Commit([new(Keys.Certificate(certificate.Serial), 0)], [Put(Keys.Certificate(certificate.Serial), certificate)]);

    public IReadOnlyList<CertificateRecord> ListCertificates() => ReadAll<CertificateRecord>("certificates/");

    public CertificateRecord? GetCertificate(string serial) => Read<CertificateRecord>(Keys.Certificate(serial));

    public int RevokeCertificates(string node)
    {
        for (var attempt = 0; attempt < Retries; attempt++)
        {
            var inForce = _mirror.List("certificates/").Select(e => (Entry: e, Record: Decode<CertificateRecord>(e))).Where(c => c.Record.Node == node && !c.Record.Revoked).ToList();
            if (inForce.Count == 0 || Commit([.. inForce.Select(c => new KvCondition(c.Entry.Key, c.Entry.ModRevision))], [.. inForce.Select(c => Put(c.Entry.Key, c.Record with { Revoked = true }))]))
            {
                return inForce.Count;
            }
        }

        throw new KvUnavailableException($"store busy: the certificates of {node} changed under {Retries} writes in a row");
    }

    public bool RemoveNode(string node)
    {
        if (_mirror.Get(Keys.Node(node)) is null)
        {
            return false;
        }

        Commit([], [KvWrite.Delete(Keys.Node(node))]);
        return true;
    }
}
