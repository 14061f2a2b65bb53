using System.Net;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Runtime.CompilerServices;
using System.Security.Cryptography;
using System.Text.Json;
using System.Text.Json.Serialization;

namespace Heddle.Contracts.Api;

/// <summary>A problem the API answered with (RFC 7807), or a controller that could not be reached.</summary>
public sealed class HeddleApiException(HttpStatusCode? status, string type, string message, IReadOnlyList<string> errors) : Exception(message)
{
    public HttpStatusCode? Status { get; } = status;

    public string Type { get; } = type;

    public IReadOnlyList<string> Errors { get; } = errors;
}

/// <summary>The user API (/v1), typed: what the CLI, the tests and other tools call.</summary>
public sealed class HeddleApiClient : IDisposable
{
    public static readonly JsonSerializerOptions Json = new(JsonSerializerDefaults.Web) { Converters = { new JsonStringEnumConverter() } };

    private readonly HttpClient _http;

    /// <summary>A client that trusts only controllers whose certificate the cluster CA signed (the CA that `heddle up` writes into the client configuration).</summary>
    public HeddleApiClient(Uri apiUrl, string token, System.Security.Cryptography.X509Certificates.X509Certificate2 ca)
        : this(apiUrl, token, Trust.ClusterTrust.Handler(ca))
    {
    }

    /// <summary>A client of a cluster with several controllers: requests go to one, and to the next when it cannot be reached.</summary>
    public HeddleApiClient(IReadOnlyList<Uri> apiUrls, string token, System.Security.Cryptography.X509Certificates.X509Certificate2? ca)
        : this(apiUrls, token, ca, ApiTimeouts.Default, checkNames: false)
    {
    }

    /// <summary>
    /// A client of a cluster's controllers with bounded waits (<paramref name="timeouts"/>); with <paramref name="checkNames"/>
    /// a controller's certificate must also name the host it is reached by (as the CLI asks).
    /// </summary>
    /// <param name="moved">Told when a request was answered by another controller than the first of <paramref name="apiUrls"/>.</param>
    public HeddleApiClient(IReadOnlyList<Uri> apiUrls, string token, System.Security.Cryptography.X509Certificates.X509Certificate2? ca, ApiTimeouts timeouts, bool checkNames, Action<Uri>? moved = null)
        : this(apiUrls[0], token, Failover(apiUrls, ca, timeouts, checkNames, moved))
    {
        _timeouts = timeouts;
    }

    private static ControllerFailover Failover(IReadOnlyList<Uri> apiUrls, System.Security.Cryptography.X509Certificates.X509Certificate2? ca, ApiTimeouts timeouts, bool checkNames, Action<Uri>? moved)
    {
        var failover = new ControllerFailover(apiUrls, timeouts, moved);
        failover.InnerHandler = failover.CreateInnerHandler(ca, checkNames);
        return failover;
    }

    public HeddleApiClient(Uri apiUrl, string token, HttpMessageHandler? handler = null)
    {
        _http = handler is null ? new HttpClient() : new HttpClient(handler);
        _http.BaseAddress = apiUrl;
        _http.Timeout = Timeout.InfiniteTimeSpan;
        _http.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", token);
        ApiUrl = apiUrl;
        _failover = handler as ControllerFailover;
    }

    private readonly ControllerFailover? _failover;

    // Clients made without timeouts (the tests' own handlers) keep HttpClient's classic bound on reading an answer.
    private readonly ApiTimeouts _timeouts = new() { Answer = TimeSpan.FromSeconds(100) };

    /// <summary>The controller the last request went to (the first, unless it could not be reached).</summary>
    public Uri CurrentUrl => _failover?.Current ?? ApiUrl;

    public Uri ApiUrl { get; }

    public Task<ClusterInfo> InfoAsync(CancellationToken ct = default) => GetAsync<ClusterInfo>("v1/info", ct);

    /// <summary>Uploads a package file under its SHA-256; the controller keeps one copy of each package.</summary>
    public async Task<PackageUploaded> UploadPackageAsync(string path, CancellationToken ct = default)
    {
        string sha256;
        await using (var file = File.OpenRead(path))
        {
            sha256 = Convert.ToHexStringLower(await SHA256.HashDataAsync(file, ct));
        }

        return await SendAsync<PackageUploaded>(Upload(HttpMethod.Put, $"v1/packages/{sha256}", path, "application/zip"), ct);
    }

    /// <summary>Uploads an uncompressed root file system tarball as the base image <paramref name="name"/>.</summary>
    public async Task<ImageImported> UploadImageAsync(string name, string tarPath, CancellationToken ct = default)
    {
        string sha256;
        await using (var file = File.OpenRead(tarPath))
        {
            sha256 = Convert.ToHexStringLower(await SHA256.HashDataAsync(file, ct));
        }

        return await SendAsync<ImageImported>(Upload(HttpMethod.Put, $"v1/images/{Uri.EscapeDataString(name)}?sha256={sha256}", tarPath, "application/x-tar"), ct);
    }

    /// <summary>A request whose body is a file: its answer deadline is pushed back as the body goes out (see <see cref="ApiTimeouts.Answer"/>).</summary>
    private HttpRequestMessage Upload(HttpMethod method, string url, string path, string contentType)
    {
        var file = File.OpenRead(path);
        var deadline = new AnswerDeadline(_timeouts.Answer, _timeouts.Answer + TimeSpan.FromSeconds(file.Length / (8 << 20)));
        var body = new StreamContent(new DeadlineStream(file, deadline));
        body.Headers.ContentType = new MediaTypeHeaderValue(contentType);
        body.Headers.ContentLength = file.Length;
        var request = new HttpRequestMessage(method, url) { Content = body };
        request.Options.Set(AnswerDeadline.Key, deadline);
        return request;
    }

    public Task<List<ImageStatus>> ListImagesAsync(CancellationToken ct = default) => GetAsync<List<ImageStatus>>("v1/images", ct);

    /// <summary>Deletes the caller's own image of that name (a tenant), or the shared one (an admin; with <paramref name="tenant"/>, that tenant's own).</summary>
    public async Task DeleteImageAsync(string name, string? tenant = null, CancellationToken ct = default) =>
        await SendAsync<JsonElement?>(new HttpRequestMessage(HttpMethod.Delete, $"v1/images/{Uri.EscapeDataString(name)}{(tenant is null ? string.Empty : $"?tenant={Uri.EscapeDataString(tenant)}")}"), ct);

    public Task<DeploymentAccepted> DeployAsync(DeploymentRequest request, CancellationToken ct = default) =>
        SendAsync<DeploymentAccepted>(new HttpRequestMessage(HttpMethod.Post, "v1/deployments") { Content = JsonContent.Create(request, options: Json) }, ct);

    public Task<ServiceStatus> GetServiceAsync(string name, CancellationToken ct = default) => GetAsync<ServiceStatus>($"v1/services/{Uri.EscapeDataString(name)}", ct);

    /// <summary>One slot of a service (production when <paramref name="slot"/> is null).</summary>
    public Task<ServiceStatus> GetServiceAsync(string name, string? slot, CancellationToken ct = default) =>
        GetAsync<ServiceStatus>($"v1/services/{Uri.EscapeDataString(name)}{SlotQuery(slot)}", ct);

    /// <summary>Exchanges the service's production and staging slots (their VIPs follow the slot names).</summary>
    public Task<SwapDone> SwapAsync(string name, CancellationToken ct = default) =>
        SendAsync<SwapDone>(new HttpRequestMessage(HttpMethod.Post, $"v1/services/{Uri.EscapeDataString(name)}/swap"), ct);

    /// <summary>Deletes one slot of a service, or (slot null) the whole service.</summary>
    public async Task DeleteServiceAsync(string name, string? slot, CancellationToken ct = default) =>
        await SendAsync<JsonElement?>(new HttpRequestMessage(HttpMethod.Delete, $"v1/services/{Uri.EscapeDataString(name)}{SlotQuery(slot)}"), ct);

    private static string SlotQuery(string? slot) => slot is null ? string.Empty : $"?slot={Uri.EscapeDataString(slot)}";

    public Task<DeploymentAccepted> ScaleAsync(string service, string role, int instances, CancellationToken ct = default) =>
        SendAsync<DeploymentAccepted>(new HttpRequestMessage(HttpMethod.Post, $"v1/services/{Uri.EscapeDataString(service)}/scale")
        {
            Content = JsonContent.Create(new ScaleRequest(role, instances), options: Json),
        }, ct);

    /// <summary>
    /// Walks back to revision <paramref name="to"/> (default: the one before): a new revision, accepted; during an upgrade,
    /// rolls that upgrade back: its walk, turned around.
    /// </summary>
    public async Task<RollbackResult> RollbackAsync(string service, long? to = null, CancellationToken ct = default)
    {
        using var response = await SendRawAsync(new HttpRequestMessage(HttpMethod.Post, $"v1/services/{Uri.EscapeDataString(service)}/rollback")
        {
            Content = JsonContent.Create(new RollbackRequest(to), options: Json),
        }, ct);

        // The controller says which by its status: 202 Accepted with the new revision, 200 OK with the walk it turned around.
        return response.StatusCode == HttpStatusCode.Accepted
            ? new RollbackResult.NewRevision(await ReadAsync<DeploymentAccepted>(response, ct))
            : new RollbackResult.WalkTurnedBack(await ReadAsync<UpgradeStatus>(response, ct));
    }

    public Task<List<RevisionStatus>> ListRevisionsAsync(string service, CancellationToken ct = default) =>
        GetAsync<List<RevisionStatus>>($"v1/services/{Uri.EscapeDataString(service)}/revisions", ct);

    public Task<UpgradeStatus> GetUpgradeAsync(string service, CancellationToken ct = default) =>
        GetAsync<UpgradeStatus>($"v1/services/{Uri.EscapeDataString(service)}/upgrade", ct);

    /// <summary>pause, resume or rollback the service's upgrade in progress.</summary>
    public Task<UpgradeStatus> UpgradeActionAsync(string service, string action, CancellationToken ct = default) =>
        SendAsync<UpgradeStatus>(new HttpRequestMessage(HttpMethod.Post, $"v1/services/{Uri.EscapeDataString(service)}/upgrade/{Uri.EscapeDataString(action)}"), ct);

    public Task<List<ServiceStatus>> ListServicesAsync(CancellationToken ct = default) => GetAsync<List<ServiceStatus>>("v1/services", ct);

    public async Task DeleteServiceAsync(string name, CancellationToken ct = default) =>
        await SendAsync<JsonElement?>(new HttpRequestMessage(HttpMethod.Delete, $"v1/services/{Uri.EscapeDataString(name)}"), ct);

    public Task<List<InstanceStatus>> ListInstancesAsync(string? service = null, CancellationToken ct = default) =>
        GetAsync<List<InstanceStatus>>(service is null ? "v1/instances" : $"v1/instances?service={Uri.EscapeDataString(service)}", ct);

    public Task<List<NodeStatus>> ListNodesAsync(CancellationToken ct = default) => GetAsync<List<NodeStatus>>("v1/nodes", ct);

    public Task<List<EventRecord>> ListEventsAsync(long after = 0, CancellationToken ct = default) => GetAsync<List<EventRecord>>($"v1/events?after={after}", ct);

    /// <summary>Every event after <paramref name="after"/>, then each new one as it happens (server-sent events).</summary>
    public async IAsyncEnumerable<EventRecord> FollowEventsAsync(long after, [EnumeratorCancellation] CancellationToken ct = default)
    {
        using var response = await SendRawAsync(new HttpRequestMessage(HttpMethod.Get, $"v1/events?after={after}&follow=true"), ct);
        using var reader = new StreamReader(await response.Content.ReadAsStreamAsync(ct));
        while (await reader.ReadLineAsync(ct) is { } line)
        {
            if (line.StartsWith("data: ", StringComparison.Ordinal) && JsonSerializer.Deserialize<EventRecord>(line[6..], Json) is { } record)
            {
                yield return record;
            }
        }
    }

    public Task<DnsRecordSet> GetDnsRecordsAsync(CancellationToken ct = default) => GetAsync<DnsRecordSet>("v1/dns/records", ct);

    public Task<LoadBalancerConfig> GetLoadBalancerConfigAsync(CancellationToken ct = default) => GetAsync<LoadBalancerConfig>("v1/lb/config", ct);

    /// <summary>The DNS record set now, then a whole new one at each change (server-sent events).</summary>
    public IAsyncEnumerable<DnsRecordSet> FollowDnsRecordsAsync(CancellationToken ct = default) => FollowAsync<DnsRecordSet>("v1/dns/records?follow=true", ct);

    /// <summary>As <see cref="FollowDnsRecordsAsync(CancellationToken)"/>, telling the controller where this DNS server answers (shown by `heddle info`).</summary>
    public IAsyncEnumerable<DnsRecordSet> FollowDnsRecordsAsync(string server, string zone, CancellationToken ct = default) =>
        FollowAsync<DnsRecordSet>($"v1/dns/records?follow=true&server={Uri.EscapeDataString(server)}&zone={Uri.EscapeDataString(zone)}", ct);

    /// <summary>The load-balancer configuration now, then a whole new one at each change (server-sent events).</summary>
    public IAsyncEnumerable<LoadBalancerConfig> FollowLoadBalancerConfigAsync(CancellationToken ct = default) => FollowAsync<LoadBalancerConfig>("v1/lb/config?follow=true", ct);

    /// <summary>A load balancer's heartbeat; the answer says which VIPs it owns (arp mode) and for how long.</summary>
    public Task<BalancerLease> HeartbeatBalancerAsync(BalancerHeartbeat heartbeat, CancellationToken ct = default) =>
        SendAsync<BalancerLease>(new HttpRequestMessage(HttpMethod.Post, "v1/lb/heartbeat") { Content = JsonContent.Create(heartbeat, options: Json) }, ct);

    public Task<IReadOnlyList<BalancerStatus>> ListBalancersAsync(CancellationToken ct = default) => GetAsync<IReadOnlyList<BalancerStatus>>("v1/lb/balancers", ct);

    /// <summary>A balancer stops: it is forgotten and its VIPs go to the others at once.</summary>
    public async Task RemoveBalancerAsync(string name, CancellationToken ct = default) =>
        await SendAsync<JsonElement?>(new HttpRequestMessage(HttpMethod.Delete, $"v1/lb/balancers/{Uri.EscapeDataString(name)}"), ct);

    /// <summary>
    /// The DNS record set as <paramref name="copy"/> is kept from the controller's changes: the whole set first (or what
    /// changed since the version the copy holds), then each change; the whole set made from the copy is yielded each time.
    /// </summary>
    public IAsyncEnumerable<DnsRecordSet> FollowDnsRecordsAsync(ViewCopy<DnsService, DnsRecordSet> copy, string? server = null, string? zone = null, CancellationToken ct = default) =>
        FollowChangesAsync(server is null || zone is null ? "v1/dns/records?follow=true"
            : $"v1/dns/records?follow=true&server={Uri.EscapeDataString(server)}&zone={Uri.EscapeDataString(zone)}", copy, ct);

    /// <summary>The load-balancer configuration as <paramref name="copy"/> is kept from the controller's changes (as <see cref="FollowDnsRecordsAsync(ViewCopy{DnsService, DnsRecordSet}, string?, string?, CancellationToken)"/>).</summary>
    public IAsyncEnumerable<LoadBalancerConfig> FollowLoadBalancerConfigAsync(ViewCopy<VipListener, LoadBalancerConfig> copy, CancellationToken ct = default) =>
        FollowChangesAsync("v1/lb/config?follow=true", copy, ct);

    /// <summary>A stream of view changes into a copy; it ends (and the caller follows again from the copy's version) when a change does not follow on from the copy.</summary>
    private async IAsyncEnumerable<T> FollowChangesAsync<TPart, T>(string url, ViewCopy<TPart, T> copy, [EnumeratorCancellation] CancellationToken ct)
        where T : class
    {
        using var response = await SendRawAsync(new HttpRequestMessage(HttpMethod.Get, $"{url}&changes=true&since={copy.Version}&origin={Uri.EscapeDataString(copy.Origin)}"), ct);
        using var reader = new StreamReader(await response.Content.ReadAsStreamAsync(ct));
        while (await reader.ReadLineAsync(ct) is { } line)
        {
            if (line.StartsWith("data: ", StringComparison.Ordinal) && JsonSerializer.Deserialize<ViewChange<TPart>>(line[6..], Json) is { } change)
            {
                if (!copy.Follows(change))
                {
                    yield break;
                }

                yield return copy.Apply(change);
            }
        }
    }

    private async IAsyncEnumerable<T> FollowAsync<T>(string url, [EnumeratorCancellation] CancellationToken ct)
    {
        using var response = await SendRawAsync(new HttpRequestMessage(HttpMethod.Get, url), ct);
        using var reader = new StreamReader(await response.Content.ReadAsStreamAsync(ct));
        while (await reader.ReadLineAsync(ct) is { } line)
        {
            if (line.StartsWith("data: ", StringComparison.Ordinal) && JsonSerializer.Deserialize<T>(line[6..], Json) is { } view)
            {
                yield return view;
            }
        }
    }

    /// <summary>An instance's stdout or stderr: the last <paramref name="tail"/> lines, then (when following) what follows.</summary>
    public async Task<Stream> LogsAsync(string service, string role, int index, string stream = "stdout", int tail = 100, bool follow = false, CancellationToken ct = default)
    {
        var url = $"v1/services/{service}/roles/{role}/instances/{index}/logs?stream={stream}&tail={tail}&follow={(follow ? "true" : "false")}";
        var response = await SendRawAsync(new HttpRequestMessage(HttpMethod.Get, url), ct);
        return await response.Content.ReadAsStreamAsync(ct);
    }

    public Task<TokenCreated> CreateTokenAsync(TokenCreateRequest request, CancellationToken ct = default) =>
        SendAsync<TokenCreated>(new HttpRequestMessage(HttpMethod.Post, "v1/tokens") { Content = JsonContent.Create(request, options: Json) }, ct);

    public Task<List<TokenStatus>> ListTokensAsync(CancellationToken ct = default) => GetAsync<List<TokenStatus>>("v1/tokens", ct);

    public Task<TokenStatus> RevokeTokenAsync(string id, CancellationToken ct = default) =>
        SendAsync<TokenStatus>(new HttpRequestMessage(HttpMethod.Delete, $"v1/tokens/{Uri.EscapeDataString(id)}"), ct);

    /// <summary>Every tenant's quota and use (an admin), or the caller's own (a tenant).</summary>
    public Task<List<QuotaStatus>> ListQuotasAsync(CancellationToken ct = default) => GetAsync<List<QuotaStatus>>("v1/quotas", ct);

    public Task<QuotaStatus> GetQuotaAsync(string tenant, CancellationToken ct = default) => GetAsync<QuotaStatus>($"v1/quotas/{Uri.EscapeDataString(tenant)}", ct);

    /// <summary>Sets a tenant's whole quota (a null limit is none); admin only.</summary>
    public Task<QuotaStatus> SetQuotaAsync(string tenant, QuotaLimits limits, CancellationToken ct = default) =>
        SendAsync<QuotaStatus>(new HttpRequestMessage(HttpMethod.Put, $"v1/quotas/{Uri.EscapeDataString(tenant)}") { Content = JsonContent.Create(limits, options: Json) }, ct);

    /// <summary>Forgets the quota set for a tenant: it has the controller's default again; admin only.</summary>
    public Task<QuotaStatus> ResetQuotaAsync(string tenant, CancellationToken ct = default) =>
        SendAsync<QuotaStatus>(new HttpRequestMessage(HttpMethod.Delete, $"v1/quotas/{Uri.EscapeDataString(tenant)}"), ct);

    /// <summary>Registers a machine by its MAC (admin only).</summary>
    public Task<MachineStatus> AddMachineAsync(MachineAddRequest request, CancellationToken ct = default) =>
        SendAsync<MachineStatus>(new HttpRequestMessage(HttpMethod.Post, "v1/machines") { Content = JsonContent.Create(request, options: Json) }, ct);

    public Task<List<MachineStatus>> ListMachinesAsync(CancellationToken ct = default) => GetAsync<List<MachineStatus>>("v1/machines", ct);

    /// <summary>Forgets a machine and revokes its join strings not used yet; a node it became stays (remove it with RemoveNodeAsync).</summary>
    public Task<MachineStatus> SetMachineHostImageAsync(string name, string hostImage, CancellationToken ct = default) =>
        SendAsync<MachineStatus>(new HttpRequestMessage(HttpMethod.Put, $"v1/machines/{Uri.EscapeDataString(name)}/hostimage") { Content = JsonContent.Create(new MachineHostImageRequest(hostImage), options: Json) }, ct);

    public Task<MachineStatus> RemoveMachineAsync(string name, CancellationToken ct = default) =>
        SendAsync<MachineStatus>(new HttpRequestMessage(HttpMethod.Delete, $"v1/machines/{Uri.EscapeDataString(name)}"), ct);

    /// <summary>What a network card asking to boot gets (a boot token's or an admin's call).</summary>
    /// <summary>Uploads one part of a host image (a kernel or an initramfs) under its SHA-256, before <see cref="AddHostImageAsync"/> names it.</summary>
    public async Task<HostImageBlobUploaded> UploadHostImagePartAsync(string path, HostImagePart part, CancellationToken ct = default)
    {
        string sha256;
        await using (var file = File.OpenRead(path))
        {
            sha256 = Convert.ToHexStringLower(await SHA256.HashDataAsync(file, ct));
        }

        return await SendAsync<HostImageBlobUploaded>(Upload(HttpMethod.Put, $"v1/hostimages/blobs/{sha256}?part={part.ToString().ToLowerInvariant()}", path, "application/octet-stream"), ct);
    }

    public Task<HostImageAdded> AddHostImageAsync(HostImageAddRequest request, CancellationToken ct = default) =>
        SendAsync<HostImageAdded>(new HttpRequestMessage(HttpMethod.Post, "v1/hostimages") { Content = JsonContent.Create(request, options: Json) }, ct);

    public Task<HostRolloutStatus> StartHostRolloutAsync(HostRolloutRequest request, CancellationToken ct = default) =>
        SendAsync<HostRolloutStatus>(new HttpRequestMessage(HttpMethod.Post, "v1/hostrollout") { Content = JsonContent.Create(request, options: Json) }, ct);

    public Task<HostRolloutStatus> GetHostRolloutAsync(CancellationToken ct = default) => GetAsync<HostRolloutStatus>("v1/hostrollout", ct);

    /// <summary>pause, resume or rollback.</summary>
    public Task<HostRolloutStatus> HostRolloutActionAsync(string action, CancellationToken ct = default) =>
        SendAsync<HostRolloutStatus>(new HttpRequestMessage(HttpMethod.Post, $"v1/hostrollout/{Uri.EscapeDataString(action)}"), ct);

    public Task<List<HostImageStatus>> ListHostImagesAsync(CancellationToken ct = default) => GetAsync<List<HostImageStatus>>("v1/hostimages", ct);

    public async Task DeleteHostImageAsync(string name, CancellationToken ct = default) =>
        await SendAsync<JsonElement?>(new HttpRequestMessage(HttpMethod.Delete, $"v1/hostimages/{Uri.EscapeDataString(name)}"), ct);

    /// <summary>Writes a part of a host image (the boot service's question: a boot token may ask it) to <paramref name="destination"/>.</summary>
    public async Task DownloadBootImagePartAsync(string sha256, Stream destination, CancellationToken ct = default)
    {
        using var response = await SendRawAsync(new HttpRequestMessage(HttpMethod.Get, $"v1/boot/images/{Uri.EscapeDataString(sha256)}"), ct);
        await using var body = await response.Content.ReadAsStreamAsync(ct);
        await body.CopyToAsync(destination, ct);
    }

    public Task<BootDecision> DecideBootAsync(string mac, CancellationToken ct = default) =>
        SendAsync<BootDecision>(new HttpRequestMessage(HttpMethod.Post, "v1/boot/decisions") { Content = JsonContent.Create(new BootRequest(mac), options: Json) }, ct);

    /// <summary>Revokes a node's certificate, forgets the node and has its instances placed elsewhere.</summary>
    public async Task RemoveNodeAsync(string name, CancellationToken ct = default) =>
        await SendAsync<JsonElement?>(new HttpRequestMessage(HttpMethod.Delete, $"v1/nodes/{Uri.EscapeDataString(name)}"), ct);

    public void Dispose() => _http.Dispose();

    private Task<T> GetAsync<T>(string url, CancellationToken ct) => SendAsync<T>(new HttpRequestMessage(HttpMethod.Get, url), ct);

    private async Task<T> SendAsync<T>(HttpRequestMessage request, CancellationToken ct)
    {
        using var response = await SendRawAsync(request, ct);
        return await ReadAsync<T>(response, ct);
    }

    /// <summary>A successful answer's body (default for an empty one), read within the answer timeout.</summary>
    private async Task<T> ReadAsync<T>(HttpResponseMessage response, CancellationToken ct)
    {
        if (response.StatusCode is HttpStatusCode.NoContent || response.Content.Headers.ContentLength == 0)
        {
            return default!;
        }

        using var reading = CancellationTokenSource.CreateLinkedTokenSource(ct);
        reading.CancelAfter(_timeouts.Answer);
        try
        {
            return (await response.Content.ReadFromJsonAsync<T>(Json, reading.Token))!;
        }
        catch (OperationCanceledException) when (!ct.IsCancellationRequested)
        {
            throw Stalled();
        }
    }

    private HeddleApiException Stalled() =>
        new(null, "unreachable", $"cannot reach the controller at {CurrentUrl} (its answer stopped coming: nothing more within {ApiTimeouts.Format(_timeouts.Answer)})", []);

    private async Task<HttpResponseMessage> SendRawAsync(HttpRequestMessage request, CancellationToken ct)
    {
        HttpResponseMessage response;
        try
        {
            using (request)
            {
                response = await _http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, ct);
            }
        }
        catch (HttpRequestException e) when (e.InnerException is System.Security.Authentication.AuthenticationException)
        {
            throw new HeddleApiException(null, "untrusted", $"the controller at {ApiUrl} was not trusted: its certificate is not signed by this cluster's CA "
                + "(the 'ca' of the client configuration); is this the right cluster? ('heddle up' writes the configuration with its CA)", []);
        }
        catch (HttpRequestException e)
        {
            var hint = ApiUrl.Scheme == Uri.UriSchemeHttp ? "; the API serves HTTPS unless the controller runs with --insecure-http: use an https:// URL" : "; is it running? ('heddle up' starts one)";
            throw new HeddleApiException(null, "unreachable", $"the controller at {ApiUrl} cannot be reached ({e.Message}){hint}", []);
        }

        if (response.IsSuccessStatusCode)
        {
            return response;
        }

        using (response)
        {
            string text;
            using (var reading = CancellationTokenSource.CreateLinkedTokenSource(ct))
            {
                reading.CancelAfter(_timeouts.Answer);
                try
                {
                    text = await response.Content.ReadAsStringAsync(reading.Token);
                }
                catch (OperationCanceledException) when (!ct.IsCancellationRequested)
                {
                    throw Stalled();
                }
            }

            try
            {
                using var problem = JsonDocument.Parse(text);
                var root = problem.RootElement;
                var errors = root.TryGetProperty("errors", out var list) && list.ValueKind == JsonValueKind.Array
                    ? list.EnumerateArray().Select(e => e.GetString() ?? string.Empty).ToList()
                    : [];
                var detail = root.TryGetProperty("detail", out var d) ? d.GetString() : root.TryGetProperty("title", out var t) ? t.GetString() : text;
                var type = root.TryGetProperty("type", out var ty) ? ty.GetString() ?? string.Empty : string.Empty;
                throw new HeddleApiException(response.StatusCode, type, detail ?? text, errors);
            }
            catch (JsonException)
            {
                throw new HeddleApiException(response.StatusCode, string.Empty, $"HTTP {(int)response.StatusCode}: {text}", []);
            }
        }
    }
}
