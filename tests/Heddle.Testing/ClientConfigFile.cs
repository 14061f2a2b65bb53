using System.Net.Http.Headers;
using System.Text.Json;
using Heddle.Contracts.Api;
using Heddle.Contracts.Trust;

namespace Heddle.Testing;

/// <summary>The client configuration `heddle up` writes ($HEDDLE_HOME/config.json): API URL, token and cluster CA.</summary>
public sealed record ClientConfigFile(Uri ApiUrl, string Token, string CaPem)
{
    public static ClientConfigFile Read(string home)
    {
        using var config = JsonDocument.Parse(File.ReadAllText(Path.Combine(home, "config.json")));
        var root = config.RootElement;
        return new(new Uri(root.GetProperty("apiUrl").GetString()!), root.GetProperty("token").GetString()!, root.GetProperty("ca").GetString()!);
    }

    public HeddleApiClient Connect(string? token = null) => new(ApiUrl, token ?? Token, ClusterTrust.Load(CaPem));

    /// <summary>A raw HTTP client of the API that trusts the cluster CA and sends the token.</summary>
    public HttpClient Http(TimeSpan? timeout = null)
    {
        var http = new HttpClient(ClusterTrust.Handler(ClusterTrust.Load(CaPem))) { BaseAddress = ApiUrl, Timeout = timeout ?? TimeSpan.FromSeconds(100) };
        http.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", Token);
        return http;
    }

    /// <summary>Writes the CA to a file (for curl --cacert); the path.</summary>
    public string WriteCa(string directory)
    {
        var path = Path.Combine(directory, "ca.crt");
        File.WriteAllText(path, CaPem);
        return path;
    }
}
