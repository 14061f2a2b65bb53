using Heddle.Contracts.Api;
using Heddle.Controller.Machines;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;

namespace Heddle.Controller.Api;

/// <summary>
/// /v1/machines (admin only): register, list, set the host image of and remove the machines that join by network boot; /v1/hostimages (admin
/// only): what they boot (<see cref="HostImages"/>); /v1/hostrollout (admin only): updating them (<see cref="HostRollouts.HostRolloutControl"/>). /v1/boot/decisions and /v1/boot/images: what `heddle boot` asks for
/// each card that wants a boot script, and the host image parts it serves (a boot token or an admin's;
/// <c>ApiMiddleware</c> keeps a boot token to /v1/boot). A join string is only ever in a decision, never in a listing.
/// </summary>
internal static class MachineEndpoints
{
    public static void Map(IEndpointRouteBuilder app)
    {
        app.MapPost("/v1/machines", async (MachineAddRequest? request, MachineRegistry registry, CancellationToken ct) =>
        {
            if (request is null)
            {
                return Problems.Invalid(ProblemTypes.InvalidRequest, "Bad machine", "the request carries no machine; send {\"mac\": \"52:54:00:12:34:56\", \"name\": \"m1\", \"faultDomain\": \"rack-1\"}; nothing was changed");
            }

            var (added, errors, conflict) = await registry.AddAsync(request, ct);
            if (added is not null)
            {
                return Results.Ok(added);
            }

            return conflict
                ? Problems.Problem(StatusCodes.Status409Conflict, ProblemTypes.Conflict, "Machine exists", $"{errors[0]}; nothing was changed")
                : Problems.Invalid(ProblemTypes.InvalidRequest, "Bad machine", $"{string.Join("; ", errors)}; nothing was changed", errors);
        });
        app.MapGet("/v1/machines", (MachineRegistry registry) => Results.Ok(registry.List()));
        app.MapDelete("/v1/machines/{name}", async (string name, MachineRegistry registry, CancellationToken ct) =>
            await registry.RemoveAsync(name, ct) is { } removed
                ? Results.Ok(removed)
                : Problems.NotFound($"no machine named '{Printable.Of(name)}' ('heddle machine list' shows them); nothing was changed"));
        app.MapPut("/v1/machines/{name}/hostimage", async (string name, MachineHostImageRequest? request, MachineRegistry registry, CancellationToken ct) =>
        {
            var (machine, error, notFound) = await registry.SetHostImageAsync(name, request?.HostImage, ct);
            return machine is not null ? Results.Ok(machine)
                : notFound ? Problems.NotFound($"{error}; nothing was changed")
                : Problems.Invalid(ProblemTypes.InvalidRequest, "Bad host image", $"{error}; nothing was changed");
        });
        app.MapPut("/v1/hostimages/blobs/{sha256}", (string sha256, string? part, HttpRequest request, HostImages images, CancellationToken ct) => images.PutPartAsync(sha256, part, request, ct));
        app.MapPost("/v1/hostimages", (HostImageAddRequest? request, HostImages images, CancellationToken ct) => images.AddAsync(request, ct));
        app.MapGet("/v1/hostimages", (HostImages images) => images.List());
        app.MapDelete("/v1/hostimages/{name}", (string name, HostImages images, CancellationToken ct) => images.DeleteAsync(name, ct));
        app.MapPost("/v1/hostrollout", (HostRolloutRequest? request, HostRollouts.HostRolloutControl control, CancellationToken ct) => control.StartAsync(request, ct));
        app.MapGet("/v1/hostrollout", (HostRollouts.HostRolloutControl control) => control.Status());
        app.MapPost("/v1/hostrollout/{action}", (string action, HostRollouts.HostRolloutControl control, CancellationToken ct) =>
            action is "pause" or "resume" or "rollback" && Enum.TryParse<UpgradeAction>(action, ignoreCase: true, out var parsed)
                ? control.ActAsync(parsed, ct)
                : Task.FromResult(Problems.NotFound($"no host rollout action '{Printable.Of(action)}': pause, resume or rollback")));
        app.MapGet("/v1/boot/images/{sha256}", (string sha256, HostImages images, CancellationToken ct) => images.ServePartAsync(sha256, ct));
        app.MapPost("/v1/boot/decisions", async (BootRequest? request, BootDecider decider, CancellationToken ct) =>
        {
            var (decision, error) = await decider.DecideAsync(request?.Mac, ct);
            return decision is not null ? Results.Ok(decision) : Problems.Invalid(ProblemTypes.InvalidRequest, "Bad MAC", error!);
        });
    }
}
