using System.Buffers;
using System.Collections.Concurrent;
using System.Text.Json;
using Heddle.Contracts.Api;
using Heddle.Controller.Store;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.Json;
using Microsoft.Extensions.Options;

namespace Heddle.Controller.Api;

/// <summary>
/// Instances as the API shows them (<see cref="InstanceStatus"/>: the record with its node's address), and
/// <c>GET /v1/instances</c> written from JSON kept per service.
/// <para>
/// Made and serialised afresh for every call, a listing of 25,000 instances was built and serialised whole for each call
/// of a client polling it. The store hands out a service's listing as the same array until one of its placements or
/// reports changes, so each service's part of the JSON is kept with the array it was made from, and a call serialises
/// only the services that changed since the last. (The call still takes seconds at that size while the controller is
/// busy: most of it is the 15 MB answer reaching a client on the same cores, and pauses for collections caused by the
/// rest of the controller's work.)
/// </para>
/// </summary>
public sealed class InstanceListing(IOptions<JsonOptions> json)
{
    /// <summary>What a response flushes after: the parts are written as they are, not copied into one buffer.</summary>
    private const int FlushEvery = 256 << 10;

    private static volatile NodeAddresses? _addresses;

    [ThreadStatic]
    private static ArrayBufferWriter<byte>? _scratch;

    private readonly JsonSerializerOptions _options = json.Value.SerializerOptions;
    private readonly ConcurrentDictionary<string, Part> _parts = new(StringComparer.Ordinal);

    /// <summary>Each node's address, made again only when the store's node listing (the same object while no node changes) does.</summary>
    private sealed record NodeAddresses(IReadOnlyList<NodeRecord> Nodes, Dictionary<string, string?> ByName);

    /// <summary>One service's instances as JSON (the array's items, without its brackets), with the listing and addresses it was made from.</summary>
    private sealed record Part(IReadOnlyList<InstanceRecord> Listing, Dictionary<string, string?> Addresses, ReadOnlyMemory<byte> Json);

    private static Dictionary<string, string?> Addresses(IClusterStore store)
    {
        var nodes = store.ListNodes();
        var known = _addresses;
        if (known is not null && ReferenceEquals(known.Nodes, nodes))
        {
            return known.ByName;
        }

        var byName = nodes.ToDictionary(n => n.Name, n => (string?)n.Address, StringComparer.Ordinal);
        _addresses = new NodeAddresses(nodes, byName);
        return byName;
    }

    /// <summary>One service's instances as the API shows them (a list the caller may add to).</summary>
    public static List<InstanceStatus> List(IClusterStore store, string service)
    {
        var addresses = Addresses(store);
        return [.. store.ListInstances(service).Select(i => Status(i, addresses.GetValueOrDefault(i.Node)))];
    }

    public static InstanceStatus Status(InstanceRecord i, string? nodeAddress) => new()
    {
        Id = i.Id,
        Service = i.Service,
        Role = i.Role,
        Index = i.Index,
        UpgradeDomain = i.UpgradeDomain,
        Node = i.Node,
        NodeAddress = nodeAddress,
        Cpus = i.Cpus,
        MemoryMiB = i.MemoryMiB,
        State = i.State.ToString(),
        Reason = i.Reason,
        Ports = i.Ports,
        Restarts = i.Restarts,
        DiskUsedMiB = i.DiskUsedMiB,
        DiskSizeMiB = i.DiskSizeMiB,
        Pid = i.Pid,
        Generation = i.Generation,
        Revision = i.Revision,
        RunningRevision = i.RunningRevision,
        Draining = i.Draining,
        Updated = i.Updated,
    };

    /// <summary>
    /// The instances of <paramref name="services"/>, in that order, as one JSON array: the same document as serialising
    /// <see cref="List"/> of each, concatenated. With <paramref name="everyService"/>, the parts of services not named
    /// are let go (they were deleted).
    /// </summary>
    public IResult Json(IClusterStore store, IReadOnlyCollection<string> services, bool everyService = false)
    {
        var addresses = Addresses(store);
        var parts = new List<ReadOnlyMemory<byte>>(services.Count);
        foreach (var service in services)
        {
            var json = PartOf(store, service, addresses);
            if (!json.IsEmpty)
            {
                parts.Add(json);
            }
        }

        if (everyService && _parts.Count > services.Count)
        {
            var named = services.ToHashSet(StringComparer.Ordinal);
            foreach (var gone in _parts.Keys.Where(s => !named.Contains(s)).ToList())
            {
                _parts.TryRemove(gone, out _);
            }
        }

        return new Parts(parts);
    }

    private ReadOnlyMemory<byte> PartOf(IClusterStore store, string service, Dictionary<string, string?> addresses)
    {
        var listing = store.ListInstances(service);
        if (_parts.TryGetValue(service, out var part) && ReferenceEquals(part.Listing, listing))
        {
            if (ReferenceEquals(part.Addresses, addresses))
            {
                return part.Json;
            }

            // A node changed (one went Down, one joined): the part holds while its own nodes' addresses are the same.
            if (listing.All(i => addresses.GetValueOrDefault(i.Node) == part.Addresses.GetValueOrDefault(i.Node)))
            {
                _parts[service] = part with { Addresses = addresses };
                return part.Json;
            }
        }

        if (listing.Count == 0)
        {
            _parts.TryRemove(service, out _);
            return ReadOnlyMemory<byte>.Empty;
        }

        // Written into this thread's scratch buffer, then copied once at its length: while a deployment changes every
        // service between two calls, each call serialises them all again, and a growing stream per part was a tenth of
        // what the deploying controller allocated.
        var scratch = _scratch ??= new ArrayBufferWriter<byte>(64 << 10);
        scratch.ResetWrittenCount();
        using (var writer = new Utf8JsonWriter(scratch))
        {
            JsonSerializer.Serialize(writer, listing.Select(i => Status(i, addresses.GetValueOrDefault(i.Node))).ToList(), _options);
        }

        ReadOnlyMemory<byte> items = scratch.WrittenSpan[1..^1].ToArray();
        _parts[service] = new Part(listing, addresses, items);
        return items;
    }

    /// <summary>Writes the parts as one array.</summary>
    private sealed class Parts(List<ReadOnlyMemory<byte>> parts) : IResult
    {
        public async Task ExecuteAsync(HttpContext context)
        {
            context.Response.ContentType = "application/json; charset=utf-8";
            context.Response.ContentLength = 2 + parts.Sum(p => (long)p.Length) + Math.Max(0, parts.Count - 1);
            var body = context.Response.BodyWriter;
            var unflushed = 0L;
            body.Write("["u8);
            for (var i = 0; i < parts.Count; i++)
            {
                if (i > 0)
                {
                    body.Write(","u8);
                }

                body.Write(parts[i].Span);
                unflushed += parts[i].Length;
                if (unflushed >= FlushEvery)
                {
                    unflushed = 0;
                    var flushed = await body.FlushAsync(context.RequestAborted);
                    if (flushed.IsCanceled || flushed.IsCompleted)
                    {
                        return;
                    }
                }
            }

            body.Write("]"u8);
            await body.FlushAsync(context.RequestAborted);
        }
    }
}
