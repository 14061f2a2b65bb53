using Microsoft.Data.Sqlite;

namespace Heddle.Controller.Store;

/// <summary>Tokens (hashed) and node certificates, in the same file and under the same lock as the rest of the store.</summary>
public sealed partial class SqliteClusterStore
{
    private const string TokenSelect = "SELECT id, hash, kind, tenant, created, expires, uses_left, revoked, description FROM tokens";

    private void CreateTrustTables()
    {
        Execute("""
            CREATE TABLE IF NOT EXISTS tokens(hash TEXT PRIMARY KEY, id TEXT NOT NULL, kind TEXT NOT NULL, tenant TEXT, created TEXT NOT NULL, expires TEXT,
                uses_left INTEGER, revoked INTEGER NOT NULL DEFAULT 0, description TEXT);
            CREATE TABLE IF NOT EXISTS certificates(serial TEXT PRIMARY KEY, node TEXT NOT NULL, not_after TEXT NOT NULL, revoked INTEGER NOT NULL DEFAULT 0);
            CREATE INDEX IF NOT EXISTS certificates_by_node ON certificates(node);
            """);
        AddColumns("images", ("tenant", "TEXT"));
        // Older stores kept the API and join tokens in clear; the API token is hashed into the token list at start
        // (from <state>/api-token), and the shared join token proves nothing any more.
        Execute("DELETE FROM meta WHERE key LIKE 'secret:%'");
    }

    public bool PutToken(TokenRecord token)
    {
        lock (_lock)
        {
            return Execute("INSERT OR IGNORE INTO tokens(hash, id, kind, tenant, created, expires, uses_left, revoked, description) VALUES($h, $i, $k, $t, $c, $e, $u, 0, $d)",
                ("$h", token.Hash), ("$i", token.Id), ("$k", token.Kind), ("$t", token.Tenant), ("$c", Format(token.Created)),
                ("$e", token.Expires is { } e ? Format(e) : null), ("$u", token.UsesLeft), ("$d", token.Description)) == 1;
        }
    }

    public TokenRecord? GetTokenByHash(string hash)
    {
        lock (_lock)
        {
            return Query($"{TokenSelect} WHERE hash = $h", ReadToken, ("$h", hash)).FirstOrDefault();
        }
    }

    public IReadOnlyList<TokenRecord> ListTokens()
    {
        lock (_lock)
        {
            return Query($"{TokenSelect} ORDER BY created, id", ReadToken);
        }
    }

    public bool UseToken(string hash)
    {
        lock (_lock)
        {
            return Execute("UPDATE tokens SET uses_left = uses_left - 1 WHERE hash = $h AND (uses_left IS NULL OR uses_left > 0)", ("$h", hash)) == 1;
        }
    }

    public TokenRecord? RevokeToken(string idPrefix)
    {
        lock (_lock)
        {
            var matches = Query($"{TokenSelect} WHERE id LIKE $p ESCAPE '\\'", ReadToken, ("$p", idPrefix.Replace("\\", "\\\\").Replace("%", "\\%").Replace("_", "\\_") + "%"));
            if (matches.Count != 1)
            {
                return null;
            }

            Execute("UPDATE tokens SET revoked = 1 WHERE hash = $h", ("$h", matches[0].Hash));
            return matches[0] with { Revoked = true };
        }
    }

    public void PutCertificate(CertificateRecord certificate)
    {
        lock (_lock)
        {
            Execute("INSERT INTO certificates(serial, node, not_after, revoked) VALUES($s, $n, $a, $r)",
                ("$s", certificate.Serial), ("$n", certificate.Node), ("$a", Format(certificate.NotAfter)), ("$r", certificate.Revoked ? 1 : 0));
        }
    }

    public IReadOnlyList<CertificateRecord> ListCertificates()
    {
        lock (_lock)
        {
            return Query("SELECT serial, node, not_after, revoked FROM certificates", r => new CertificateRecord(r.GetString(0), r.GetString(1), Parse(r.GetString(2)), r.GetInt64(3) != 0));
        }
    }

    public CertificateRecord? GetCertificate(string serial)
    {
        lock (_lock)
        {
            return Query("SELECT serial, node, not_after, revoked FROM certificates WHERE serial = $s",
                r => new CertificateRecord(r.GetString(0), r.GetString(1), Parse(r.GetString(2)), r.GetInt64(3) != 0), ("$s", serial)).FirstOrDefault();
        }
    }

    public int RevokeCertificates(string node)
    {
        lock (_lock)
        {
            return Execute("UPDATE certificates SET revoked = 1 WHERE node = $n AND revoked = 0", ("$n", node));
        }
    }

    public bool RemoveNode(string node)
    {
        lock (_lock)
        {
            return Execute("DELETE FROM nodes WHERE name = $n", ("$n", node)) == 1;
        }
    }

    private static TokenRecord ReadToken(SqliteDataReader r) => new(
        r.GetString(0), r.GetString(1), r.GetString(2), r.IsDBNull(3) ? null : r.GetString(3), Parse(r.GetString(4)), r.IsDBNull(5) ? null : Parse(r.GetString(5)),
        r.IsDBNull(6) ? null : r.GetInt32(6), r.GetInt64(7) != 0, r.IsDBNull(8) ? null : r.GetString(8));
}
