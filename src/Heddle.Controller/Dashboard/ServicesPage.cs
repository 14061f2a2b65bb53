using System.Globalization;
using Heddle.Contracts.Api;
using Heddle.Controller.Api;
using Heddle.Controller.Store;
using Heddle.Controller.Trust;

namespace Heddle.Controller.Dashboard;

/// <summary>Every service the caller may see: slot, revision, VIP and DNS name, Ready count, and an upgrade walking its domains.</summary>
internal static class ServicesPage
{
    public static Page Render(PageData data, Caller caller)
    {
        var services = ApiEndpoints.Visible(data.Store, caller).OrderBy(s => s.Family, StringComparer.Ordinal).ThenBy(s => s.Slot, StringComparer.Ordinal).ToList();
        var html = new Html();
        if (services.Count == 0)
        {
            html.Tag("p", "No service is deployed: 'heddle deploy PACKAGE --config CONFIG' deploys one.", ("class", "muted"));
            return new Page(html.ToString());
        }

        html.Raw("<table class=\"services\"><thead>")
            .HeaderRow([.. new[] { "Service", "Slot" }, .. caller.IsAdmin ? new[] { "Tenant" } : [], "Revision", "VIP", "DNS name", "Ready", "Upgrade"])
            .Raw("</thead><tbody>");
        foreach (var service in services)
        {
            var status = ApiEndpoints.Describe(service, data.Store, data.Models, data.Reconciler, data.Conflicts);
            html.Open("tr", ("data-service", service.Name), ("data-ready", status.ReadyInstances.ToString(CultureInfo.InvariantCulture)))
                .Raw("<td>").Link(ServicePage.PathOf(service), service.Family).Raw("</td>")
                .Tag("td", service.Slot);
            if (caller.IsAdmin)
            {
                html.Tag("td", service.Tenant);
            }

            html.Tag("td", service.Revision.ToString(CultureInfo.InvariantCulture))
                .Raw("<td>").Text(service.Vip ?? "none");
            if (status.VipProblem is { } problem)
            {
                html.Tag("div", problem, ("class", "error"));
            }

            html.Raw("</td>").Tag("td", DnsName(data, service))
                .Tag("td", $"{status.ReadyInstances} / {status.DesiredInstances}", ("class", status.ReadyInstances >= status.DesiredInstances ? "state-Ready" : "state-Starting"))
                .Raw("<td>");
            WalkView.Render(html, data, service, compact: true);
            html.Raw("</td></tr>");
        }

        html.Raw("</tbody></table>");
        return new Page(html.ToString());
    }

    internal static string DnsName(PageData data, ServiceRecord service) => data.Info.Describe().Zone is { } zone ? $"{service.DnsName}.{zone}" : service.DnsName;
}

/// <summary>An upgrade drawn as its upgrade domains filling in, in walk order, with the health gate's countdown and the failure reason.</summary>
internal static class WalkView
{
    public static void Render(Html html, PageData data, ServiceRecord service, bool compact)
    {
        if (service.Walk is not { } walk)
        {
            html.Tag("span", "none yet", ("class", "muted"));
            return;
        }

        var status = UpgradeControl.Describe(service, walk, data.Store.ListInstances(service.Name), data.Now);
        if (walk.IsFinished)
        {
            html.Open("span", ("class", "walk-done"), ("data-upgrade", status.State)).Text($"to revision {status.Revision}: {status.State}");
            if (status.Finished is { } finished)
            {
                html.Text(" ").Time(finished, data.Now);
            }

            html.Close("span");
            if (!compact && status.Reason is { } why)
            {
                html.Tag("div", why, ("class", "error"));
            }

            return;
        }

        html.Open("div", ("class", "walk"), ("data-upgrade", status.State), ("data-revision", status.Revision.ToString(CultureInfo.InvariantCulture)))
            .Tag("span", $"{status.Previous} → {status.Revision} · {status.State}{(status.Phase is { } phase ? $" ({phase})" : string.Empty)}");
        foreach (var domain in status.Domains)
        {
            var total = domain.Instances.Count;
            var done = domain.Instances.Count(i => i.Revision == walk.Destination && i.RunningRevision == walk.Destination && i.State == InstanceStates.Ready);
            html.Open("div", ("class", $"ud {domain.State}"), ("data-domain", domain.Domain.ToString(CultureInfo.InvariantCulture)), ("data-state", domain.State),
                    ("title", $"upgrade domain {domain.Domain}: {domain.State}, {done} of {total} instance(s) at revision {walk.Destination} and Ready"))
                .Text($"UD {domain.Domain} · {domain.State}")
                .Raw("<div class=\"bar\">").Tag("span", null, ("class", Html.Width(total == 0 ? 100 : done * 100.0 / total))).Raw("</div>")
                .Close("div");
        }

        if (status.GateRemainingSeconds is { } gate)
        {
            var deadline = data.Now.AddSeconds(gate).UtcDateTime.ToString("O", CultureInfo.InvariantCulture);
            html.Raw("<span class=\"gate\">health gate: ").Tag("span", $"{gate:0} s", ("data-deadline", deadline)).Raw("</span>");
        }

        html.Close("div");
        if (status.Reason is { } reason)
        {
            html.Tag("div", reason, ("class", "error"), ("data-upgrade-reason", "true"));
        }
    }
}
