using Heddle.Contracts.Api;
using Heddle.Controller.Api;
using Heddle.Controller.Trust;

namespace Heddle.Controller.Dashboard;

/// <summary>The event log, newest first and live, filtered by service and kind; a tenant sees the events written for it.</summary>
internal static class EventsPage
{
    private const int Shown = 200;

    /// <summary>Every kind the controller writes, for the filter.</summary>
    private static readonly string[] Kinds = [.. Enum.GetNames<EventKind>().Order(StringComparer.Ordinal)];

    public static Page Render(PageData data, Caller caller, string? service, string? kind)
    {
        service = string.IsNullOrEmpty(service) ? null : service;
        kind = string.IsNullOrEmpty(kind) ? null : kind;
        var events = Matching(data, caller, service, kind).TakeLast(Shown).Reverse().ToList();
        var html = new Html();
        if (events.Count == 0)
        {
            html.Tag("p", service is null && kind is null ? "No event yet." : "No event matches.", ("class", "muted"));
        }
        else
        {
            Table(html, data, events);
        }

        return new Page(html.ToString(), Controls: Filter(data, caller, service, kind));
    }

    /// <summary>The events the caller may see, oldest first: about a service (itself and its instances) and of a kind, when given.</summary>
    internal static IEnumerable<EventRecord> Matching(PageData data, Caller caller, string? service, string? kind) =>
        data.Store.ListEvents(0, int.MaxValue).Where(e => Events.Sees(caller, e)
            && (kind is null || e.Kind == kind)
            && (service is null || e.Subject == service || e.Subject.StartsWith(service + "/", StringComparison.Ordinal)));

    internal static void Table(Html html, PageData data, IReadOnlyList<EventRecord> events)
    {
        html.Raw("<table class=\"events\"><thead>").HeaderRow("Time", "Kind", "Subject", "Message").Raw("</thead><tbody>");
        foreach (var e in events)
        {
            html.Open("tr", ("data-event", e.Id.ToString(System.Globalization.CultureInfo.InvariantCulture)), ("data-kind", e.Kind))
                .Raw("<td>").Time(e.Time, data.Now).Raw("</td>").Tag("td", e.Kind).Tag("td", e.Subject).Tag("td", e.Message).Raw("</tr>");
        }

        html.Raw("</tbody></table>");
    }

    private static string Filter(PageData data, Caller caller, string? service, string? kind)
    {
        var html = new Html();
        html.Raw("<form class=\"filter\" method=\"get\" action=\"/events\"><label>Service <select name=\"service\"><option value=\"\">all</option>");
        foreach (var name in ApiEndpoints.Visible(data.Store, caller).Select(s => s.Name).Order(StringComparer.Ordinal))
        {
            html.Tag("option", name, ("value", name), ("selected", name == service ? "selected" : null));
        }

        html.Raw("</select></label><label>Kind <select name=\"kind\"><option value=\"\">all</option>");
        foreach (var k in Kinds)
        {
            html.Tag("option", k, ("value", k), ("selected", k == kind ? "selected" : null));
        }

        return html.Raw("</select></label><button type=\"submit\">Filter</button></form>").ToString();
    }
}
