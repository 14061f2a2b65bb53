using System.Net;
using System.Net.Http.Json;
using Heddle.Contracts.Api;

namespace Heddle.Controller.Tests.Api;

/// <summary>
/// The client's rollback answer is typed by the controller's status code, not by the names in its body: 202 Accepted
/// is a new revision, 200 OK the upgrade in progress turned around. The bodies are the API's JSON as it answers.
/// </summary>
public sealed class RollbackAnswerTests
{
    [Fact]
    public async Task RollbackAsync_Accepted_IsANewRevision()
    {
        using var api = new HeddleApiClient(new Uri("http://controller.invalid/"), "t",
            new Answer(HttpStatusCode.Accepted, """{"service":"hello","revision":4,"packageSha256":"abc","changes":"rollback to revision 2","upgrade":true,"slot":"production","deployment":"hello"}"""));

        var answer = await api.RollbackAsync("hello", to: 2);

        var accepted = Assert.IsType<RollbackResult.NewRevision>(answer).Accepted;
        Assert.Equal((4L, "rollback to revision 2", true), (accepted.Revision, accepted.Changes, accepted.Upgrade));
    }

    [Fact]
    public async Task RollbackAsync_Ok_IsTheWalkTurnedBack()
    {
        var walk = new UpgradeStatus
        {
            Service = "hello", Revision = 3, Previous = 2, State = UpgradeStates.RollingBack, Reason = "rolled back by a user ('heddle upgrade rollback')",
            Mode = "auto", FailureAction = "rollback", HealthCheckStableSeconds = 10, UpgradeDomainTimeoutSeconds = 300, Started = DateTimeOffset.UnixEpoch, Domains = [],
        };
        using var api = new HeddleApiClient(new Uri("http://controller.invalid/"), "t", new Answer(HttpStatusCode.OK, JsonContent.Create(walk, options: HeddleApiClient.Json)));

        var answer = await api.RollbackAsync("hello");

        var turned = Assert.IsType<RollbackResult.WalkTurnedBack>(answer).Walk;
        Assert.Equal((3L, 2L, UpgradeStates.RollingBack, walk.Reason), (turned.Revision, turned.Previous, turned.State, turned.Reason));
    }

    private sealed class Answer(HttpStatusCode status, HttpContent body) : HttpMessageHandler
    {
        public Answer(HttpStatusCode status, string json)
            : this(status, new StringContent(json, System.Text.Encoding.UTF8, "application/json"))
        {
        }

        protected override Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken)
        {
            Assert.Equal((HttpMethod.Post, "/v1/services/hello/rollback"), (request.Method, request.RequestUri!.AbsolutePath));
            return Task.FromResult(new HttpResponseMessage(status) { Content = body });
        }
    }
}
