using System.Net.Http.Headers;
using Heddle.Contracts.Api;
using Heddle.Contracts.Files;
using Heddle.Contracts.Trust;

namespace Heddle.Testing;

/// <summary>The client configuration `heddle up` writes ($HEDDLE_HOME/config.json, a <see cref="ClientFile"/>): API URL, token and cluster CA.</summary>
public sealed record ClientConfigFile(Uri ApiUrl, string Token, string CaPem)
{
    public static ClientConfigFile Read(string home)
    {
        var file = ClientFile.Read(Path.Combine(home, "config.json")) ?? throw new InvalidDataException($"{home}/config.json holds null");
        return new(file.ApiUrl, file.Token, file.Ca ?? throw new InvalidDataException($"{home}/config.json has no 'ca'"));
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
