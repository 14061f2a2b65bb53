using Heddle.Contracts.Api;
using Microsoft.AspNetCore.Http;

namespace Heddle.Controller.Api;

/// <summary>RFC 7807 problem details with a stable <c>type</c> for each kind of error.</summary>
internal static class Problems
{
    public static IResult NotFound(string detail) => Problem(StatusCodes.Status404NotFound, ProblemTypes.NotFound, "Not found", detail);

    public static IResult Unauthorized(bool tokenGiven) => Problem(StatusCodes.Status401Unauthorized, ProblemTypes.Unauthorized, "Unauthorized",
        tokenGiven
            ? "the API token was not accepted; use the token of this cluster (written by 'heddle up' to $HEDDLE_HOME/config.json, and by the controller to <state>/api-token)"
            : "this call needs 'Authorization: Bearer <token>' with the cluster's API token (see $HEDDLE_HOME/config.json or <state>/api-token)");

    public static IResult Invalid(string type, string title, string detail, IEnumerable<string>? errors = null) =>
        Problem(StatusCodes.Status400BadRequest, type, title, detail, errors);

    public static IResult Problem(int status, string type, string title, string detail, IEnumerable<string>? errors = null)
    {
        var extensions = errors is null ? null : new Dictionary<string, object?> { ["errors"] = errors.ToList() };
        return Results.Problem(detail: detail, statusCode: status, title: title, type: type, extensions: extensions);
    }
}
