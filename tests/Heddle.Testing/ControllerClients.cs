using Heddle.Contracts.Api;
using Heddle.Controller;

namespace Heddle.Testing;

/// <summary>API clients of an in-process controller that check its certificate against its CA, as the CLI does.</summary>
public static class ControllerClients
{
    /// <summary>A client with <paramref name="token"/>, by default the admin token made at cluster init.</summary>
    public static HeddleApiClient Client(this ControllerHost controller, string? token = null) =>
        new(controller.ApiUrl, token ?? controller.ApiToken, controller.CaCertificate);

    /// <summary>A raw HTTP client of the API that trusts the cluster CA, with no token.</summary>
    public static HttpClient Http(this ControllerHost controller, HttpMessageHandler? handler = null) =>
        new(handler ?? Heddle.Contracts.Trust.ClusterTrust.Handler(controller.CaCertificate)) { BaseAddress = controller.ApiUrl };
}
