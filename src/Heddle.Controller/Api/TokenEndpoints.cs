using Heddle.Contracts.Api;
using Heddle.Contracts.Trust;
using Heddle.Controller.Store;
using Heddle.Controller.Trust;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;

namespace Heddle.Controller.Api;

/// <summary>/v1/tokens (admin only): make, list and revoke API and join tokens. A token is shown once, when made.</summary>
internal static class TokenEndpoints
{
    public static void Map(IEndpointRouteBuilder app)
    {
        app.MapPost("/v1/tokens", Create);
        app.MapGet("/v1/tokens", (Tokens tokens) => Results.Ok(tokens.List().Select(Status).ToList()));
        app.MapDelete("/v1/tokens/{id}", async (string id, Tokens tokens, EventLog events) =>
        {
            if (await tokens.RevokeAsync(id) is not { } revoked)
            {
                return Problems.NotFound($"no single token has an id starting with '{Printable.Of(id)}' (give at least 4 characters of an id from 'heddle token list')");
            }

            await events.AddAsync(EventKind.TokenRevoked, revoked.Id, $"{revoked.Kind} token {revoked.Id} ({Scope(revoked)}) revoked");
            return Results.Ok(Status(revoked));
        });
    }

    private static async Task<IResult> Create(TokenCreateRequest request, Tokens tokens, CertificateAuthority ca, EventLog events)
    {
        if (request.Tenant is { } tenant && Caller.TenantNameError(tenant) is { } error)
        {
            return Problems.Invalid(ProblemTypes.InvalidRequest, "Bad tenant name", error);
        }

        if (request.Join && request.Tenant is not null)
        {
            return Problems.Invalid(ProblemTypes.InvalidRequest, "Bad token request", "a join token enrols a node for the whole cluster and has no tenant");
        }

        if (request.Metrics && (request.Join || request.Tenant is not null))
        {
            return Problems.Invalid(ProblemTypes.InvalidRequest, "Bad token request", "a metrics token reads the whole cluster's /metrics: it is neither a join token nor a tenant's");
        }

        if (request.Boot && (request.Join || request.Metrics || request.Tenant is not null))
        {
            return Problems.Invalid(ProblemTypes.InvalidRequest, "Bad token request", "a boot token asks for boot decisions for the whole cluster: it is neither a join, metrics nor tenant's token");
        }

        if (request.TtlSeconds is <= 0 or > 10L * 365 * 86400 || request.Uses is <= 0 or > 1_000_000 || request.Description is { Length: > 200 })
        {
            return Problems.Invalid(ProblemTypes.InvalidRequest, "Bad token request", "ttl must be between 1 s and 10 years, uses between 1 and 1,000,000, a description at most 200 characters");
        }

        // A join token is a key to the cluster: it lives a day at most unless asked otherwise.
        var ttl = request.TtlSeconds is { } seconds ? TimeSpan.FromSeconds(seconds) : request.Join ? TimeSpan.FromHours(24) : (TimeSpan?)null;
        var (token, record) = await tokens.CreateAsync(request.Join ? TokenKinds.Join : request.Metrics ? TokenKinds.Metrics : request.Boot ? TokenKinds.Boot : TokenKinds.Api, request.Tenant, ttl, request.Uses, request.Description);
        await events.AddAsync(EventKind.TokenCreated, record.Id, $"{record.Kind} token {record.Id} created ({Scope(record)}{(record.Expires is { } e ? $", expires {e:u}" : string.Empty)}{(record.UsesLeft is { } u ? $", {u} use(s)" : string.Empty)})");
        return Results.Ok(new TokenCreated(record.Id, token, record.Kind, record.Tenant, record.Expires, record.UsesLeft,
            request.Join ? JoinString.Format(token, ca.PublicKeyHash) : null));
    }

    private static TokenStatus Status(TokenRecord t) => new(t.Id, t.Kind, Scope(t), t.Created, t.Expires, t.UsesLeft, t.Revoked, t.Description);

    private static string Scope(TokenRecord t) => t.Kind switch
    {
        TokenKinds.Join => t.Machine is { } machine ? $"join (machine {machine})" : "join",
        TokenKinds.Metrics => "metrics",
        TokenKinds.Boot => "boot",
        _ => t.Tenant is null ? "admin" : $"tenant {t.Tenant}",
    };

}
