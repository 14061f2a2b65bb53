using System.Globalization;
using System.Text;

namespace Heddle.Testing;

/// <summary>
/// One scrape of a <c>/metrics</c> page in the Prometheus text format, as a scraper reads it: samples by metric name
/// and labels. <see cref="Sum"/> adds up the samples of a name whose labels include those given.
/// </summary>
public sealed class MetricsScrape
{
    private readonly List<(string Name, Dictionary<string, string> Labels, double Value)> _samples = [];

    public string Text { get; }

    private MetricsScrape(string text)
    {
        Text = text;
        foreach (var raw in text.Split('\n'))
        {
            var line = raw.TrimEnd('\r');
            if (line.Length == 0 || line[0] == '#')
            {
                continue;
            }

            _samples.Add(ParseLine(line));
        }
    }

    public static MetricsScrape Parse(string text) => new(text);

    /// <summary>GETs <paramref name="url"/> (with a bearer token when given) and parses it; throws unless it answers 200 in the text format.</summary>
    public static async Task<MetricsScrape> GetAsync(HttpClient http, Uri url, string? token = null)
    {
        using var request = new HttpRequestMessage(HttpMethod.Get, url);
        if (token is not null)
        {
            request.Headers.Authorization = new System.Net.Http.Headers.AuthenticationHeaderValue("Bearer", token);
        }

        using var response = await http.SendAsync(request);
        var body = await response.Content.ReadAsStringAsync();
        if (!response.IsSuccessStatusCode)
        {
            throw new InvalidOperationException($"GET {url}: {(int)response.StatusCode} {body}");
        }

        if (response.Content.Headers.ContentType?.MediaType is not ("text/plain" or "application/openmetrics-text"))
        {
            throw new InvalidOperationException($"GET {url}: content type {response.Content.Headers.ContentType}");
        }

        return Parse(body);
    }

    public bool Has(string name) => _samples.Any(s => s.Name == name);

    public double Sum(string name, params (string Label, string Value)[] labels) =>
        _samples.Where(s => s.Name == name && labels.All(l => s.Labels.TryGetValue(l.Label, out var v) && v == l.Value)).Sum(s => s.Value);

    public IEnumerable<IReadOnlyDictionary<string, string>> Series(string name) => _samples.Where(s => s.Name == name).Select(s => (IReadOnlyDictionary<string, string>)s.Labels);

    public override string ToString() => Text;

    private static (string, Dictionary<string, string>, double) ParseLine(string line)
    {
        var labels = new Dictionary<string, string>(StringComparer.Ordinal);
        var brace = line.IndexOf('{', StringComparison.Ordinal);
        var space = line.IndexOf(' ', StringComparison.Ordinal);
        string name;
        int rest;
        if (brace >= 0 && (space < 0 || brace < space))
        {
            name = line[..brace];
            var at = brace + 1;
            while (line[at] != '}')
            {
                var equals = line.IndexOf('=', at);
                var key = line[at..equals].Trim(',', ' ');
                var value = new StringBuilder();
                var i = equals + 2; // past ="
                for (; line[i] != '"'; i++)
                {
                    if (line[i] == '\\')
                    {
                        i++;
                        value.Append(line[i] == 'n' ? '\n' : line[i]);
                    }
                    else
                    {
                        value.Append(line[i]);
                    }
                }

                labels[key] = value.ToString();
                at = i + 1;
                if (line[at] == ',')
                {
                    at++;
                }
            }

            rest = at + 1;
        }
        else
        {
            name = line[..space];
            rest = space;
        }

        var fields = line[rest..].Split(' ', StringSplitOptions.RemoveEmptyEntries);
        var number = fields[0] switch
        {
            "+Inf" => double.PositiveInfinity,
            "-Inf" => double.NegativeInfinity,
            "NaN" => double.NaN,
            var f => double.Parse(f, CultureInfo.InvariantCulture),
        };
        return (name, labels, number);
    }
}
