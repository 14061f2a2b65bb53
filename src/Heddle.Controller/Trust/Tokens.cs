using System.Security.Cryptography;
using System.Text;
using Heddle.Contracts.Trust;
using Heddle.Controller.Store;

namespace Heddle.Controller.Trust;

/// <summary>Who a request comes from: an admin (everything) or one tenant (its own services and images).</summary>
public sealed record Caller(string? Tenant, string TokenId)
{
    /// <summary>The controller acting for itself.</summary>
    public static readonly Caller Admin = new(null, "controller");

    public bool IsAdmin => Tenant is null;

    /// <summary>Whether this caller may see and change what belongs to <paramref name="owner"/> (null: shared by every tenant, read-only for them).</summary>
    public bool Owns(string? owner) => IsAdmin || owner == Tenant;

    public override string ToString() => IsAdmin ? "admin" : $"tenant {Tenant}";

    /// <summary>Why a name cannot be a tenant's, or null: tenant names follow the service-name rule.</summary>
    public static string? TenantNameError(string name) => Heddle.Model.Validation.Names.IsDnsLabel(name)
        ? null
        : $"'{Printable.Of(name)}' is not a tenant name: tenant names follow the service-name rule: {Heddle.Model.Validation.Names.DnsLabelRule}";

    /// <summary>Lets endpoints take the caller as a parameter: the authentication middleware has put it on the request.</summary>
    public static ValueTask<Caller?> BindAsync(Microsoft.AspNetCore.Http.HttpContext context) =>
        ValueTask.FromResult(context.Items.TryGetValue(typeof(Caller), out var caller) ? caller as Caller : null);
}

/// <summary>
/// Tokens: 40 random hex characters, kept only as their SHA-256 (the first 12 hex digits of which are the id that
/// lists and revokes them). An API token is an admin's or one tenant's; a join token enrols agents, limited in time
/// and, optionally, in uses. The first admin token is made at cluster init and written to the state folder (0600),
/// the one place it can be read again.
/// </summary>
public sealed class Tokens(ITrustStore store, TimeProvider time)
{
    public const string BootstrapFile = "api-token";

    /// <summary>Makes the first admin token when the cluster has none and writes it to the state folder; moves a token kept in clear by older versions into the hashed list.</summary>
    public static async Task BootstrapAsync(ITrustStore trust, string stateDirectory, TimeProvider time, CancellationToken cancellationToken = default)
    {
        var file = Path.Combine(stateDirectory, BootstrapFile);
        if (trust.ListTokens().Any(t => t.Kind == TokenKinds.Api && t.Tenant is null))
        {
            return;
        }

        // A store made before tokens were hashed kept the API token in clear: it stays valid, hashed from now on.
        var token = File.Exists(file) ? File.ReadAllText(file).Trim() : null;
        if (token is null || token.Length < 32)
        {
            token = NewSecret();
        }

        var hash = Hash(token);
        // The description says where the one readable copy is: controllers that share the store and start later have none.
        await trust.PutTokenAsync(new TokenRecord(hash[..12], hash, TokenKinds.Api, null, time.GetUtcNow(), null, null, false, $"{InitDescription} {WrittenTo} {file} on {Environment.MachineName}"), cancellationToken);
        PrivateFile.Write(file, token);
    }

    private const string InitDescription = "created at cluster init";
    private const string WrittenTo = "by the controller that wrote it to";

    /// <summary>
    /// Where the admin token made at cluster init can be read, as a sentence for the controller's start: this state
    /// folder's file when it is there, else the first controller's (a controller sharing the store writes none).
    /// </summary>
    public static string WhereIsTheAdminToken(ITrustStore trust, string stateDirectory)
    {
        var file = Path.Combine(stateDirectory, BootstrapFile);
        if (File.Exists(file))
        {
            return $"admin token in {file} (mode 0600)";
        }

        var first = trust.ListTokens().Where(t => t.Kind == TokenKinds.Api && t.Tenant is null && t.Description?.StartsWith(InitDescription, StringComparison.Ordinal) == true)
            .OrderBy(t => t.Created).FirstOrDefault();
        var where = first?.Description?.IndexOf(WrittenTo, StringComparison.Ordinal) is { } at and >= 0 ? first.Description[(at + WrittenTo.Length + 1)..] : null;
        return where is not null
            ? $"admin token: made at cluster init by the first controller, in {where} (this controller writes none; 'heddle token create' with an admin token makes more)"
            : $"admin token: none in {file}; it was made at cluster init by the first controller, in its state folder's {BootstrapFile} ('heddle token create' with an admin token makes more)";
    }

    public async Task<(string Token, TokenRecord Record)> CreateAsync(string kind, string? tenant, TimeSpan? ttl, int? uses, string? description, CancellationToken cancellationToken = default)
    {
        var token = NewSecret();
        var hash = Hash(token);
        var now = time.GetUtcNow();
        var record = new TokenRecord(hash[..12], hash, kind, tenant, now, ttl is { } t ? now + t : null, uses, false, description);
        await store.PutTokenAsync(record, cancellationToken);
        return (token, record);
    }

    /// <summary>The caller an Authorization header proves, or null (no header, unknown, revoked or expired token, or a join token).</summary>
    public Caller? Authenticate(string? header)
    {
        const string Bearer = "Bearer ";
        if (header is null || !header.StartsWith(Bearer, StringComparison.Ordinal))
        {
            return null;
        }

        var record = Find(header[Bearer.Length..].Trim(), TokenKinds.Api);
        return record is null ? null : new Caller(record.Tenant, record.Id);
    }

    /// <summary>
    /// Whether an Authorization header may read <c>/metrics</c>: true for an admin API token or a metrics token, false
    /// for a tenant's token (a valid token that may not), null when it proves nothing.
    /// </summary>
    public bool? AuthenticateMetrics(string? header)
    {
        const string Bearer = "Bearer ";
        if (header is null || !header.StartsWith(Bearer, StringComparison.Ordinal))
        {
            return null;
        }

        var token = header[Bearer.Length..].Trim();
        if (Find(token, TokenKinds.Metrics) is not null)
        {
            return true;
        }

        return Find(token, TokenKinds.Api) is { } record ? record.Tenant is null : null;
    }

    /// <summary>Whether a join token would be accepted now, without using it up (checks that cost the controller something come first).</summary>
    public bool IsUsableJoinToken(string token) => Find(token, TokenKinds.Join) is not null;

    /// <summary>The record of a join token that would be accepted now (without using it up), or null.</summary>
    public TokenRecord? UsableJoinToken(string token) => Find(token, TokenKinds.Join);

    /// <summary>
    /// The caller a boot token proves (for <c>/v1/boot</c> only; the middleware keeps it there), or null. An API token
    /// proves its caller as anywhere else (a tenant's is then refused by <see cref="Scopes"/>).
    /// </summary>
    public Caller? AuthenticateBoot(string? header)
    {
        const string Bearer = "Bearer ";
        if (header is null || !header.StartsWith(Bearer, StringComparison.Ordinal))
        {
            return null;
        }

        var token = header[Bearer.Length..].Trim();
        return Find(token, TokenKinds.Boot) is { } boot ? new Caller(null, boot.Id) : Find(token, TokenKinds.Api) is { } api ? new Caller(api.Tenant, api.Id) : null;
    }

    /// <summary>
    /// A join token for one boot of a registered machine: it enrols node <paramref name="machine"/> once, within
    /// <paramref name="ttl"/>. Every earlier one of the machine not used yet is revoked first, so at most one is in force.
    /// </summary>
    public async Task<(string Token, TokenRecord Record)> CreateMachineJoinAsync(string machine, string mac, TimeSpan ttl, CancellationToken cancellationToken = default)
    {
        await RevokeMachineJoinsAsync(machine, cancellationToken);
        var token = NewSecret();
        var hash = Hash(token);
        var now = time.GetUtcNow();
        var record = new TokenRecord(hash[..12], hash, TokenKinds.Join, null, now, now + ttl, 1, false, $"boot of machine {machine} ({mac})", machine);
        await store.PutTokenAsync(record, cancellationToken);
        return (token, record);
    }

    /// <summary>Revokes a machine's join tokens still in force; how many were.</summary>
    public async Task<int> RevokeMachineJoinsAsync(string machine, CancellationToken cancellationToken = default)
    {
        var now = time.GetUtcNow();
        var inForce = store.ListTokens().Where(t => t.Machine == machine && !t.Revoked && t.UsesLeft is null or > 0 && (t.Expires is null || t.Expires > now)).ToList();
        foreach (var token in inForce)
        {
            await store.RevokeTokenAsync(token.Id, cancellationToken);
        }

        return inForce.Count;
    }

    public async Task<TokenRecord?> UseJoinTokenAsync(string token, CancellationToken cancellationToken = default)
    {
        var record = Find(token, TokenKinds.Join);
        return record is not null && await store.UseTokenAsync(record.Hash, cancellationToken) ? record : null;
    }

    public IReadOnlyList<TokenRecord> List() => store.ListTokens();

    public async Task<TokenRecord?> RevokeAsync(string idPrefix, CancellationToken cancellationToken = default) =>
        idPrefix.Length < 4 ? null : await store.RevokeTokenAsync(idPrefix, cancellationToken);

    private TokenRecord? Find(string token, string kind)
    {
        if (token.Length is < 32 or > 128)
        {
            return null;
        }

        var hash = Hash(token);
        var record = store.GetTokenByHash(hash);
        // The lookup is by hash, so a near miss tells an attacker nothing; compare in fixed time all the same.
        if (record is null || !CryptographicOperations.FixedTimeEquals(Encoding.ASCII.GetBytes(record.Hash), Encoding.ASCII.GetBytes(hash)))
        {
            return null;
        }

        return record.Kind == kind && !record.Revoked && (record.Expires is null || record.Expires > time.GetUtcNow()) && record.UsesLeft is null or > 0 ? record : null;
    }

    public static string Hash(string token) => Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(token)));

    private static string NewSecret() => Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(20));
}
