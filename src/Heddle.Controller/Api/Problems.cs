using Heddle.Contracts.Api;
using Microsoft.AspNetCore.Http;

namespace Heddle.Controller.Api;

/// <summary>RFC 7807 problem details with a stable <c>type</c> for each kind of error.</summary>
internal static class Problems
{
    public static IResult NotFound(string detail) => Problem(StatusCodes.Status404NotFound, ProblemTypes.NotFound, "Not found", detail);

    public static IResult Unauthorized(bool tokenGiven) => Problem(StatusCodes.Status401Unauthorized, ProblemTypes.Unauthorized, "Unauthorized",
        tokenGiven
            ? "the token was not accepted (unknown, revoked or expired, or a join token); use an API token of this cluster: 'heddle up' writes one to $HEDDLE_HOME/config.json, the controller to <state>/api-token, and an admin makes more with 'heddle token create'"
            : "this call needs 'Authorization: Bearer <token>' with an API token of this cluster (see $HEDDLE_HOME/config.json or <state>/api-token)");

    public static IResult Forbidden(string detail) => Problem(StatusCodes.Status403Forbidden, ProblemTypes.Forbidden, "Forbidden", detail);

    public static IResult Invalid(string type, string title, string detail, IEnumerable<string>? errors = null) =>
        Problem(StatusCodes.Status400BadRequest, type, title, detail, errors);

    public static IResult Problem(int status, string type, string title, string detail, IEnumerable<string>? errors = null)
    {
        var extensions = errors is null ? null : new Dictionary<string, object?> { ["errors"] = errors.ToList() };
        return Results.Problem(detail: detail, statusCode: status, title: title, type: type, extensions: extensions);
    }
}
