using System.Globalization;
using Heddle.Contracts.Api;
using Heddle.Controller.Api;
using Heddle.Controller.Store;
using Heddle.Controller.Trust;

namespace Heddle.Controller.Dashboard;

/// <summary>One service: its roles, instances (state, node, CPUs, ports, revision, restarts, reason), upgrade, revisions, recent events, and a live tail of any instance's log.</summary>
internal static class ServicePage
{
    private const int RecentEvents = 30;

    public static string PathOf(ServiceRecord service) =>
        $"/services/{Html.Url(service.Family)}{(service.Slot == Slots.Production ? string.Empty : $"?slot={Html.Url(service.Slot)}")}";

    public static ServiceRecord? Find(PageData data, Caller caller, string name, string? slot) =>
        slot is null || Slots.IsKnown(slot) ? ServiceSlots.Find(data.Store, caller, name, slot).Service : null;

    public static Page Missing(PageData data, Caller caller, string name, string? slot)
    {
        var names = ApiEndpoints.Visible(data.Store, caller).Select(s => s.Family).Distinct().ToList();
        var html = new Html().Tag("p", slot is null ? $"There is no service '{name}'." : $"There is no {slot} slot of a service '{name}'.", ("class", "error"));
        if (Heddle.Model.Validation.Suggestions.Nearest(name, names) is { } nearest)
        {
            html.Raw("<p>Did you mean ").Link($"/services/{Html.Url(nearest)}", nearest).Raw("?</p>");
        }

        return new Page(html.Raw("<p>").Link("/services", "All services").Raw("</p>").ToString());
    }

    public static Page Render(PageData data, Caller caller, ServiceRecord service)
    {
        var status = ApiEndpoints.Describe(service, data.Store, data.Models, data.Reconciler, data.Conflicts);
        var html = new Html();
        html.Raw("<div class=\"summary\">");
        Box(html, "slot", service.Slot);
        if (caller.IsAdmin)
        {
            Box(html, "tenant", service.Tenant);
        }

        Box(html, "revision", service.Revision.ToString(CultureInfo.InvariantCulture));
        Box(html, "ready", $"{status.ReadyInstances} / {status.DesiredInstances}");
        Box(html, "VIP", service.Vip ?? "none");
        Box(html, "DNS name", ServicesPage.DnsName(data, service));
        Box(html, "package", service.PackageSha256[..Math.Min(12, service.PackageSha256.Length)]);
        html.Raw("</div>");
        if (service.Deleting)
        {
            html.Tag("p", "Being deleted: its instances are being stopped.", ("class", "error"));
        }

        html.Tag("h2", "Upgrade");
        WalkView.Render(html, data, service, compact: false);
        Roles(html, data, service, status);
        Instances(html, status.Instances);
        Revisions(html, data, service);
        Events(html, data, caller, service);
        return new Page(html.ToString(), After: LogTail(status.Instances));
    }

    private static void Box(Html html, string label, string value) => html.Raw("<div>").Tag("b", value).Text(label).Raw("</div>");

    private static void Roles(Html html, PageData data, ServiceRecord service, ServiceStatus status)
    {
        if (data.Models.For(service)?.Configuration.Roles is not { } roles)
        {
            return;
        }

        html.Tag("h2", "Roles").Raw("<table><thead>").HeaderRow("Role", "Instances", "Ready").Raw("</thead><tbody>");
        foreach (var role in roles)
        {
            html.Row(role.Name, role.Instances.ToString(CultureInfo.InvariantCulture),
                status.Instances.Count(i => i.Role == role.Name && i.State == InstanceStates.Ready).ToString(CultureInfo.InvariantCulture));
        }

        html.Raw("</tbody></table>");
    }

    private static void Instances(Html html, IReadOnlyList<InstanceStatus> instances)
    {
        html.Tag("h2", "Instances").Raw("<table class=\"instances\"><thead>")
            .HeaderRow("Instance", "State", "Node", "CPUs", "Memory", "Ports", "Revision", "Restarts", "Reason", string.Empty).Raw("</thead><tbody>");
        foreach (var i in instances.OrderBy(i => i.Role, StringComparer.Ordinal).ThenBy(i => i.Index))
        {
            var revision = i.RunningRevision == i.Revision || i.RunningRevision == 0 ? $"{i.Revision}" : $"{i.RunningRevision} → {i.Revision}";
            html.Open("tr", ("data-instance", i.Id), ("data-state", i.State), ("data-restarts", i.Restarts.ToString(CultureInfo.InvariantCulture)),
                    ("data-pid", i.Pid.ToString(CultureInfo.InvariantCulture)))
                .Tag("td", i.Id).Tag("td", i.Draining ? $"{i.State} (draining)" : i.State, ("class", $"state-{i.State}"))
                .Tag("td", i.Node).Tag("td", string.Join(",", i.Cpus)).Tag("td", i.MemoryMiB > 0 ? $"{i.MemoryMiB} MiB" : string.Empty)
                .Tag("td", string.Join(" ", i.Ports.Select(p => $"{p.Key}:{p.Value}")))
                .Tag("td", revision).Tag("td", i.Restarts.ToString(CultureInfo.InvariantCulture)).Tag("td", i.Reason)
                .Raw("<td>");
            if (i.State != InstanceStates.Unplaced)
            {
                html.Tag("button", "log", ("type", "button"), ("data-tail", i.Id));
            }

            html.Raw("</td></tr>");
        }

        html.Raw("</tbody></table>");
    }

    private static void Revisions(Html html, PageData data, ServiceRecord service)
    {
        html.Tag("h2", "Revisions").Raw("<table><thead>").HeaderRow("Revision", "Created", "Changes", "Outcome").Raw("</thead><tbody>");
        foreach (var revision in data.Store.ListRevisions(service.Name).OrderByDescending(r => r.Number).Take(20))
        {
            html.Open("tr", ("class", revision.Number == service.Revision ? "current" : null))
                .Tag("td", $"{revision.Number}{(revision.Number == service.Revision ? " (current)" : string.Empty)}")
                .Raw("<td>").Time(revision.Created, data.Now).Raw("</td>").Tag("td", revision.Changes).Tag("td", revision.Outcome.ToString()).Raw("</tr>");
        }

        html.Raw("</tbody></table>");
    }

    private static void Events(Html html, PageData data, Caller caller, ServiceRecord service)
    {
        var recent = EventsPage.Matching(data, caller, service.Name, null).TakeLast(RecentEvents).Reverse().ToList();
        html.Raw("<h2>Recent events · ").Link($"/events?service={Html.Url(service.Name)}", "all").Raw("</h2>");
        EventsPage.Table(html, data, recent);
    }

    /// <summary>The log tail's controls and output: outside the live part, so an update does not cut a tail being read.</summary>
    private static string LogTail(IReadOnlyList<InstanceStatus> instances)
    {
        var html = new Html();
        html.Tag("h2", "Log").Raw("<form id=\"log-form\" class=\"filter\"><select name=\"instance\" aria-label=\"instance\">");
        foreach (var i in instances.Where(i => i.State != InstanceStates.Unplaced).OrderBy(i => i.Id, StringComparer.Ordinal))
        {
            html.Tag("option", i.Id, ("value", i.Id));
        }

        html.Raw("</select><select name=\"stream\" aria-label=\"stream\"><option>stdout</option><option>stderr</option></select>")
            .Raw("<button type=\"submit\">Tail</button></form><pre id=\"log-output\" aria-live=\"polite\"></pre>");
        return html.ToString();
    }
}
