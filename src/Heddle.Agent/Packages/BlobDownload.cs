using System.Net;
using System.Net.Http.Headers;
using System.Security.Cryptography;
using Heddle.Model.Diagnostics;

namespace Heddle.Agent.Packages;

/// <summary>Downloads a content-addressed blob from the controller, resuming with HTTP range requests, and keeps it only when its SHA-256 matches.</summary>
internal static class BlobDownload
{
    public static async Task<string> GetAsync(HttpClient http, string downloads, string sha256, string relativeUrl, string what, CancellationToken cancellationToken)
    {
        System.IO.Directory.CreateDirectory(downloads);
        var partial = Path.Combine(downloads, sha256 + ".partial");
        for (var attempt = 1; ; attempt++)
        {
            var have = File.Exists(partial) ? new FileInfo(partial).Length : 0;
            using var request = new HttpRequestMessage(HttpMethod.Get, relativeUrl);
            if (have > 0)
            {
                request.Headers.Range = new RangeHeaderValue(have, null);
            }

            using var response = await http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, cancellationToken);
            if (response.StatusCode == HttpStatusCode.RequestedRangeNotSatisfiable)
            {
                File.Delete(partial);
                continue;
            }

            if (!response.IsSuccessStatusCode)
            {
                throw new PackageCacheException($"downloading {what} {sha256[..12]} failed: HTTP {(int)response.StatusCode} {response.ReasonPhrase}");
            }

            // A server that ignores the range sends the whole blob: start over rather than append it.
            var append = have > 0 && response.StatusCode == HttpStatusCode.PartialContent;
            await using (var file = new FileStream(partial, append ? FileMode.Append : FileMode.Create, FileAccess.Write))
            {
                await response.Content.CopyToAsync(file, cancellationToken);
            }

            await using (var check = File.OpenRead(partial))
            {
                if (Convert.ToHexStringLower(await SHA256.HashDataAsync(check, cancellationToken)) == sha256)
                {
                    return partial;
                }
            }

            File.Delete(partial);
            if (attempt >= 3)
            {
                throw new PackageCacheException($"{what} {sha256[..12]} downloaded {attempt} times and never matched its hash ({DiagnosticCodes.HashMismatch})");
            }
        }
    }
}
