using Heddle.Controller.Trust;

namespace Heddle.Controller.Dashboard;

/// <summary>
/// The control plane, for admins: controllers (which leads, how the store is followed), load balancers and DNS servers
/// with their health, and when each node's certificate expires. Its balancers' problems name every tenant's services,
/// so a tenant is told it is an admin's page.
/// </summary>
internal static class ControlPlanePage
{
    private static readonly TimeSpan LeaderLookup = TimeSpan.FromSeconds(1);

    /// <summary>A node certificate this close to expiry is marked: its agent renews well before (a third of its life left).</summary>
    private static readonly TimeSpan ExpiresSoon = TimeSpan.FromDays(7);

    public static async Task<Page> RenderAsync(PageData data, Caller caller, CancellationToken cancellationToken)
    {
        var html = new Html();
        if (!caller.IsAdmin)
        {
            return new Page(html.Tag("p", "The control plane is an admin's to see: it names every tenant's services.", ("class", "muted")).ToString());
        }

        html.Tag("h2", "Controllers").Raw("<table class=\"controllers\"><thead>").HeaderRow("Controller", "API", "Role").Raw("</thead><tbody>");
        var leader = await LeaderAsync(data, cancellationToken);
        var self = data.Info.ApiUrl?.ToString();
        var peers = data.Peers.All().Select(p => (p.Name, Api: p.ApiUrl.ToString())).ToList();
        if (peers.Count == 0 && self is not null)
        {
            peers.Add(("this controller", self));
        }

        foreach (var (name, api) in peers.OrderBy(p => p.Api, StringComparer.Ordinal))
        {
            var leads = leader is not null && (leader == name || leader == api || (api == self && data.Term.Current is not null));
            html.Open("tr", ("data-controller", api), ("data-leader", leads ? "true" : null)).Tag("td", api == self ? $"{name} (this one)" : name).Tag("td", api)
                .Tag("td", leads ? "leader" : "follower", ("class", leads ? "state-Ready" : null)).Raw("</tr>");
        }

        html.Raw("</tbody></table>").Raw("<p>Leader: ").Text(leader ?? "none elected now").Raw("</p>")
            .Raw("<p>Store: ").Text(data.Opened.Description).Text(" · ");
        if (data.Opened.Mirror.Lagging is { } lagging)
        {
            html.Tag("span", $"not following: {lagging}", ("class", "error"));
        }
        else
        {
            html.Tag("span", "following", ("class", "state-Ready"));
        }

        html.Raw("</p>");
        Balancers(html, data);
        Dns(html, data);
        Certificates(html, data);
        return new Page(html.ToString(), Follow: "balancers");
    }

    private static async Task<string?> LeaderAsync(PageData data, CancellationToken cancellationToken)
    {
        if (data.Term.Election is not { } election)
        {
            return data.Term.Current?.Holder;
        }

        using var bounded = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        bounded.CancelAfter(LeaderLookup);
        try
        {
            return await election.LeaderAsync(bounded.Token).WaitAsync(bounded.Token);
        }
        catch (Exception e) when (e is OperationCanceledException or Grpc.Core.RpcException or Store.Kv.KvUnavailableException && !cancellationToken.IsCancellationRequested)
        {
            return $"unknown: {(e is OperationCanceledException ? $"the store did not say within {LeaderLookup.TotalSeconds:0} s" : e.Message)}";
        }
    }

    private static void Balancers(Html html, PageData data)
    {
        var balancers = data.Balancers.List();
        html.Tag("h2", "Load balancers");
        if (balancers.Count == 0)
        {
            html.Tag("p", "No load balancer has joined ('heddle lb' joins one).", ("class", "muted"));
            return;
        }

        html.Raw("<table class=\"balancers\"><thead>").HeaderRow("Balancer", "Address", "Mode", "State", "Heard", "Announced", "Problems").Raw("</thead><tbody>");
        foreach (var b in balancers.OrderBy(b => b.Name, StringComparer.Ordinal))
        {
            html.Open("tr", ("data-balancer", b.Name)).Tag("td", b.Name).Tag("td", b.Address).Tag("td", b.Interface is null ? b.Mode : $"{b.Mode} on {b.Interface}")
                .Raw("<td>").Tag("span", b.State, ("class", b.State == "Ready" ? "state-Ready" : "state-Faulted")).Raw("<div class=\"muted\">").Text(b.Detail).Raw("</div></td>")
                .Raw("<td>").Time(b.HeardAt, data.Now).Raw("</td>").Tag("td", string.Join(", ", b.Announced))
                .Tag("td", string.Join("; ", b.Problems.Select(p => p.ToString())), ("class", b.Problems.Count > 0 ? "error" : null)).Raw("</tr>");
        }

        html.Raw("</tbody></table>");
    }

    private static void Dns(Html html, PageData data)
    {
        var info = data.Info.Describe();
        html.Tag("h2", "DNS");
        html.Tag("p", info.DnsAddress is null ? "No DNS server answers for this cluster ('heddle dns' starts one)." : $"Answering for {info.Zone} at {info.DnsAddress}",
            ("class", info.DnsAddress is null ? "muted" : null), ("data-dns", info.DnsAddress));
    }

    private static void Certificates(Html html, PageData data)
    {
        var now = data.Now;
        var current = data.Trust.ListCertificates().Where(c => !c.Revoked).GroupBy(c => c.Node, StringComparer.Ordinal)
            .Select(g => g.MaxBy(c => c.NotAfter)!).OrderBy(c => c.NotAfter).ToList();
        html.Tag("h2", "Node certificates");
        if (current.Count == 0)
        {
            html.Tag("p", "No node has a certificate yet.", ("class", "muted"));
            return;
        }

        html.Raw("<table class=\"certificates\"><thead>").HeaderRow("Node", "Serial", "Expires", "In").Raw("</thead><tbody>");
        foreach (var c in current)
        {
            var left = c.NotAfter - now;
            var mark = left <= TimeSpan.Zero ? "state-Faulted" : left < ExpiresSoon ? "state-Starting" : null;
            html.Open("tr", ("data-node", c.Node)).Tag("td", c.Node).Tag("td", c.Serial[..Math.Min(12, c.Serial.Length)]).Tag("td", c.NotAfter.UtcDateTime.ToString("u"))
                .Tag("td", left <= TimeSpan.Zero ? "expired" : left.TotalDays >= 2 ? $"{left.TotalDays:0} days" : $"{left.TotalHours:0} h", ("class", mark)).Raw("</tr>");
        }

        html.Raw("</tbody></table>");
    }
}
