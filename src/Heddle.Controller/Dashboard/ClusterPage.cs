using System.Globalization;
using Heddle.Controller.Store;
using Heddle.Controller.Trust;

namespace Heddle.Controller.Dashboard;

/// <summary>
/// The cluster: every node by fault domain, drawn as its cores (hyperthread siblings side by side in one box), each CPU
/// coloured by the service whose instance holds it, with the memory its instances reserve. Down and draining nodes
/// are marked. A tenant sees the nodes its instances run on, and other tenants' CPUs only as taken. Past
/// <see cref="MostNodesDrawn"/> nodes the page summarises fault domains and draws one domain at a time, a page at a time.
/// </summary>
internal static class ClusterPage
{
    public const int MostNodesDrawn = 200;

    public static Page Render(IClusterStore store, Caller caller, string? faultDomain, int page)
    {
        var services = store.ListServices().ToDictionary(s => s.Name, StringComparer.Ordinal);
        var instances = store.ListInstances();
        var mine = instances.Where(i => services.TryGetValue(i.Service, out var s) && caller.Owns(s.Tenant)).ToList();
        var nodes = store.ListNodes();
        if (!caller.IsAdmin)
        {
            var used = mine.Select(i => i.Node).ToHashSet(StringComparer.Ordinal);
            nodes = [.. nodes.Where(n => used.Contains(n.Name))];
        }

        var byNode = instances.ToLookup(i => i.Node, StringComparer.Ordinal);
        var html = new Html();
        Summary(html, nodes, byNode);
        Legend(html, mine, services);
        if (nodes.Count == 0)
        {
            html.Tag("p", caller.IsAdmin ? "No node has joined yet: start an agent with a join string ('heddle token create --join')." : "None of your instances runs on a node yet.", ("class", "muted"));
            return new Page(html.ToString());
        }

        var domains = nodes.GroupBy(n => n.FaultDomain, StringComparer.Ordinal).OrderBy(g => g.Key, StringComparer.Ordinal).ToList();
        if (faultDomain is null && nodes.Count > MostNodesDrawn)
        {
            DomainTable(html, domains, byNode);
            return new Page(html.ToString());
        }

        html.Raw("<div class=\"domains\">");
        foreach (var domain in domains.Where(d => faultDomain is null || d.Key == faultDomain))
        {
            var members = domain.OrderBy(n => n.Name, StringComparer.Ordinal).ToList();
            var pages = Math.Max(1, (members.Count + MostNodesDrawn - 1) / MostNodesDrawn);
            var shown = Math.Clamp(page, 1, pages);
            html.Open("section", ("class", "domain"), ("data-fault-domain", domain.Key))
                .Tag("h2", $"Fault domain {domain.Key} · {members.Count} node{(members.Count == 1 ? string.Empty : "s")}");
            if (pages > 1)
            {
                Pager(html, domain.Key, shown, pages);
            }

            html.Raw("<div class=\"nodes\">");
            foreach (var node in members.Skip((shown - 1) * MostNodesDrawn).Take(MostNodesDrawn))
            {
                Node(html, node, byNode[node.Name], services, caller);
            }

            html.Raw("</div></section>");
        }

        return new Page(html.Raw("</div>").ToString());
    }

    private static void Summary(Html html, IReadOnlyList<NodeRecord> nodes, ILookup<string, InstanceRecord> byNode)
    {
        var cpus = nodes.Sum(n => n.Cores.Sum(c => c.Count));
        var held = nodes.Sum(n => byNode[n.Name].Sum(i => i.Cpus.Count));
        var memory = nodes.Sum(n => (long)n.MemoryMiB);
        var reserved = nodes.Sum(n => byNode[n.Name].Sum(i => (long)i.MemoryMiB));
        html.Raw("<div class=\"summary\">");
        Box(html, "nodes", nodes.Count.ToString(CultureInfo.InvariantCulture));
        foreach (var condition in new[] { NodeCondition.Ready, NodeCondition.Down, NodeCondition.Draining })
        {
            Box(html, condition.ToString().ToLowerInvariant(), nodes.Count(n => n.Condition == condition).ToString(CultureInfo.InvariantCulture));
        }

        Box(html, "CPUs held", $"{held} / {cpus}");
        Box(html, "memory reserved", $"{reserved / 1024.0:0.#} / {memory / 1024.0:0.#} GiB");
        Box(html, "instances", nodes.Sum(n => byNode[n.Name].Count()).ToString(CultureInfo.InvariantCulture));
        html.Raw("</div>");
    }

    private static void Box(Html html, string label, string value) => html.Raw("<div>").Tag("b", value).Text(label).Raw("</div>");

    private static void Legend(Html html, IReadOnlyList<InstanceRecord> mine, IReadOnlyDictionary<string, ServiceRecord> services)
    {
        html.Raw("<div class=\"legend\">");
        foreach (var name in mine.Select(i => i.Service).Distinct().Order(StringComparer.Ordinal))
        {
            var service = services[name];
            html.Raw("<span>").Tag("i", null, ("class", Html.ColourOf(service.Name))).Text(Label(service)).Raw("</span>");
        }

        html.Raw("<span><i class=\"cpu other\"></i>another tenant's</span><span><i class=\"cpu\"></i>free</span></div>");
    }

    private static void DomainTable(Html html, IEnumerable<IGrouping<string, NodeRecord>> domains, ILookup<string, InstanceRecord> byNode)
    {
        html.Tag("p", $"Over {MostNodesDrawn} nodes: pick a fault domain to draw its nodes.", ("class", "muted"))
            .Raw("<table><thead>").HeaderRow("Fault domain", "Nodes", "Ready", "Down", "Draining", "CPUs held", "Instances").Raw("</thead><tbody>");
        foreach (var domain in domains)
        {
            html.Raw("<tr><td>").Link($"/?fd={Html.Url(domain.Key)}", domain.Key).Raw("</td>");
            foreach (var cell in new[]
            {
                domain.Count(), domain.Count(n => n.Condition == NodeCondition.Ready), domain.Count(n => n.Condition == NodeCondition.Down),
                domain.Count(n => n.Condition == NodeCondition.Draining),
            })
            {
                html.Tag("td", cell.ToString(CultureInfo.InvariantCulture));
            }

            html.Tag("td", $"{domain.Sum(n => byNode[n.Name].Sum(i => i.Cpus.Count))} / {domain.Sum(n => n.Cores.Sum(c => c.Count))}")
                .Tag("td", domain.Sum(n => byNode[n.Name].Count()).ToString(CultureInfo.InvariantCulture)).Raw("</tr>");
        }

        html.Raw("</tbody></table>");
    }

    private static void Pager(Html html, string domain, int shown, int pages)
    {
        html.Raw("<div class=\"pager\">");
        for (var p = 1; p <= pages; p++)
        {
            if (p == shown)
            {
                html.Tag("b", p.ToString(CultureInfo.InvariantCulture));
            }
            else
            {
                html.Link($"/?fd={Html.Url(domain)}&page={p}", p.ToString(CultureInfo.InvariantCulture));
            }
        }

        html.Raw("</div>");
    }

    private static void Node(Html html, NodeRecord node, IEnumerable<InstanceRecord> instances, IReadOnlyDictionary<string, ServiceRecord> services, Caller caller)
    {
        var holders = new Dictionary<int, InstanceRecord>();
        foreach (var instance in instances)
        {
            foreach (var cpu in instance.Cpus)
            {
                holders[cpu] = instance;
            }
        }

        html.Open("div", ("class", $"node {node.Condition}"), ("data-node", node.Name), ("data-condition", node.Condition.ToString()))
            .Tag("span", node.Name, ("class", "name"));
        if (node.Condition != NodeCondition.Ready)
        {
            html.Tag("span", node.Condition.ToString().ToUpperInvariant(), ("class", "flag"));
        }

        html.Raw("<div class=\"muted\">").Text(node.Address).Raw("</div><div class=\"cores\">");
        foreach (var core in node.Cores)
        {
            html.Raw("<div class=\"core\">");
            foreach (var cpu in core)
            {
                Cpu(html, cpu, holders.GetValueOrDefault(cpu), services, caller);
            }

            html.Raw("</div>");
        }

        html.Raw("</div><ul class=\"held\">");
        foreach (var instance in instances.OrderBy(i => i.Cpus.Count == 0 ? int.MaxValue : i.Cpus.Min()))
        {
            if (services.GetValueOrDefault(instance.Service) is { } service && caller.Owns(service.Tenant))
            {
                html.Open("li", ("data-holder", $"{instance.Service}/{instance.Role}/{instance.Index}"))
                    .Tag("i", null, ("class", Html.ColourOf(service.Name)))
                    .Text($"{instance.Service}/{instance.Role}/{instance.Index}").Tag("span", $" {instance.State}", ("class", $"state-{instance.State}")).Close("li");
            }
        }

        var reserved = instances.Sum(i => i.MemoryMiB);
        var share = node.MemoryMiB > 0 ? Math.Min(100, reserved * 100.0 / node.MemoryMiB) : 0;
        html.Raw("</ul>").Open("div", ("class", "memory"), ("title", $"{reserved} of {node.MemoryMiB} MiB reserved"))
            .Tag("span", null, ("class", Html.Width(share)), ("data-share", share.ToString("0", CultureInfo.InvariantCulture))).Close("div")
            .Tag("div", $"{reserved} / {node.MemoryMiB} MiB reserved", ("class", "muted"))
            .Close("div");
    }

    private static void Cpu(Html html, int cpu, InstanceRecord? holder, IReadOnlyDictionary<string, ServiceRecord> services, Caller caller)
    {
        var number = cpu.ToString(CultureInfo.InvariantCulture);
        if (holder is null)
        {
            html.Tag("span", number, ("class", "cpu"), ("data-cpu", number), ("title", $"CPU {number}: free"));
            return;
        }

        var service = services.GetValueOrDefault(holder.Service);
        if (service is null || !caller.Owns(service.Tenant))
        {
            html.Tag("span", number, ("class", "cpu other"), ("data-cpu", number), ("title", $"CPU {number}: held by another tenant"));
            return;
        }

        var id = $"{holder.Service}/{holder.Role}/{holder.Index}";
        html.Tag("span", number, ("class", $"cpu used {Html.ColourOf(service.Name)}"), ("data-cpu", number), ("data-instance", id), ("data-state", holder.State.ToString()),
            ("title", $"CPU {number}: {id} ({holder.State}){(caller.IsAdmin ? $", tenant {service.Tenant}" : string.Empty)}"));
    }

    internal static string Label(ServiceRecord service) => service.Slot == Slots.Production ? service.Family : $"{service.Family} ({service.Slot})";
}
