using System.Diagnostics;
using System.Net.Http.Headers;
using System.Security.Cryptography;
using System.Text;
using Heddle.Testing;

namespace Heddle.Controller.Tests.Integration;

/// <summary>
/// Seeded mutation fuzzing of the API, bounded in time, on a real controller: mutated JSON bodies on every route that
/// takes one, mutated packages and image tarballs uploaded under their own hash. The property: a 2xx or 4xx answer,
/// never a 5xx, never a dropped connection, and the controller keeps answering; a refused upload leaves no record.
/// HEDDLE_FUZZ_SEED replays a failure.
/// </summary>
[Collection(nameof(ClusterCollection))]
public sealed class ApiFuzzTests
{
    private static readonly TimeSpan Budget = TimeSpan.FromSeconds(6);
    private static readonly byte[] JsonBytes = "{}[]:,\"\\-0123456789.eE truefalsenull\u00e9"u8.ToArray();

    private static int Seed => int.TryParse(Environment.GetEnvironmentVariable("HEDDLE_FUZZ_SEED"), out var seed) ? seed : 20261201;

    [Fact]
    public async Task MutatedBodiesAndUploads_AreAnswered2xxOr4x_NeverA5xx()
    {
        await using var cluster = await TestCluster.StartAsync(nodes: 1);
        await cluster.DeploySampleAsync();
        using var http = cluster.Controller.Http();
        http.Timeout = TimeSpan.FromSeconds(10);
        http.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", cluster.Controller.ApiToken);
        var sample = await File.ReadAllBytesAsync(SamplePackage.File);
        var sha = Convert.ToHexStringLower(SHA256.HashData(sample));
        var configuration = File.ReadAllText(SamplePackage.ConfigurationPath).Replace("\n", "\\n").Replace("\"", "\\\"");
        var bodies = new (string Method, string Route, string Json)[]
        {
            ("POST", "v1/deployments", $"{{\"packageSha256\":\"{sha}\",\"configuration\":\"{configuration}\",\"slot\":\"staging\"}}"),
            ("POST", "v1/services/hello/scale", "{\"role\":\"web\",\"instances\":2}"),
            ("POST", "v1/services/hello/rollback", "{\"to\":1}"),
            ("POST", "v1/services/hello/upgrade/pause", "{}"),
            ("POST", "v1/services/hello/swap", "{}"),
            ("PUT", "v1/quotas/fuzz", "{\"cores\":8,\"instances\":null,\"vips\":2,\"diskMiB\":16384}"),
        };
        var tar = await File.ReadAllBytesAsync(TestImages.Tar());
        var random = new Random(Seed);
        var clock = Stopwatch.StartNew();
        var requests = 0;
        while (clock.Elapsed < Budget)
        {
            requests++;
            var kind = random.Next(4);
            HttpResponseMessage response;
            string what;
            if (kind < 2)
            {
                var (method, route, json) = bodies[random.Next(bodies.Length)];
                var mutated = Mutate(random, Encoding.UTF8.GetBytes(json));
                what = $"{method} {route} {Encoding.UTF8.GetString(mutated)}";
                using var content = new ByteArrayContent(mutated);
                content.Headers.ContentType = new MediaTypeHeaderValue("application/json");
                using var request = new HttpRequestMessage(new HttpMethod(method), route) { Content = content };
                response = await http.SendAsync(request);
            }
            else if (kind == 2)
            {
                var mutated = FlipSome(random, sample);
                var hash = Convert.ToHexStringLower(SHA256.HashData(mutated));
                what = $"PUT v1/packages/{hash}";
                response = await http.PutAsync($"v1/packages/{hash}", new ByteArrayContent(mutated));
                if (!response.IsSuccessStatusCode)
                {
                    Assert.False(File.Exists(Path.Combine(cluster.StateDirectory, "controller", "blobs", hash)), $"{what}: a refused package was kept");
                }
            }
            else
            {
                var mutated = FlipSome(random, tar);
                var hash = Convert.ToHexStringLower(SHA256.HashData(mutated));
                var name = $"fuzz-{requests}";
                what = $"PUT v1/images/{name}";
                response = await http.PutAsync($"v1/images/{name}?sha256={hash}", new ByteArrayContent(mutated));
                if (!response.IsSuccessStatusCode)
                {
                    Assert.DoesNotContain(await cluster.Api.ListImagesAsync(), i => i.Name == name);
                }
            }

            using (response)
            {
                Assert.True((int)response.StatusCode < 500, $"seed {Seed}, request {requests}: {what} → {(int)response.StatusCode} {await response.Content.ReadAsStringAsync()}");
            }
        }

        Assert.True(requests > 20, $"only {requests} requests in {Budget.TotalSeconds} s");
        Assert.Contains(await cluster.Api.ListServicesAsync(), s => s.Name == "hello");
    }

    private static byte[] Mutate(Random random, byte[] input)
    {
        var bytes = new List<byte>(input);
        for (var e = 0; e < 1 + random.Next(5) && bytes.Count > 0; e++)
        {
            var at = random.Next(bytes.Count);
            switch (random.Next(4))
            {
                case 0:
                    bytes[at] = JsonBytes[random.Next(JsonBytes.Length)];
                    break;
                case 1:
                    bytes.RemoveRange(at, Math.Min(bytes.Count - at, 1 + random.Next(12)));
                    break;
                case 2:
                    bytes.Insert(at, JsonBytes[random.Next(JsonBytes.Length)]);
                    break;
                default:
                    bytes[at] = (byte)random.Next(256);
                    break;
            }
        }

        return [.. bytes];
    }

    private static byte[] FlipSome(Random random, byte[] input)
    {
        var bytes = (byte[])input.Clone();
        for (var i = 0; i < 1 + random.Next(4); i++)
        {
            bytes[random.Next(bytes.Length)] = (byte)random.Next(256);
        }

        return bytes;
    }
}
