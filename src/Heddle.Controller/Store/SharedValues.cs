using System.Collections.Concurrent;
using System.Collections.ObjectModel;
using System.Text.Json;
using System.Text.Json.Serialization;

namespace Heddle.Controller.Store;

/// <summary>
/// One copy of the values that node records repeat. Machines of one kind report the same core topology, and fault
/// domains, drivers, isolation words and labels come from a few; decoded into copies of their own they were about
/// 1.8 KB of every node record the controller holds (18 MB at 10,000 nodes: 32 arrays of one or two CPUs per 32-core
/// node). Records are immutable, so one copy serves every record that holds it. Bounded: past <see cref="Capacity"/>
/// distinct values of a kind, a value is kept as decoded and not shared, so a cluster of many kinds of machine (or a
/// store written by something else) costs what it did before and no more.
/// </summary>
internal static class SharedValues
{
    public const int Capacity = 4096;

    private static readonly Pool<string> Texts = new(StringComparer.Ordinal, Capacity);
    private static readonly Pool<IReadOnlyList<IReadOnlyList<int>>> Topologies = new(TopologyComparer.Instance, Capacity);
    private static readonly Pool<IReadOnlyList<string>> TextLists = new(TextListComparer.Instance, Capacity);

    public static string Text(string value) => Texts.Share(value);

    public static IReadOnlyList<IReadOnlyList<int>> Topology(IReadOnlyList<IReadOnlyList<int>> value) => Topologies.Share(value);

    public static IReadOnlyList<string> TextList(IReadOnlyList<string> value) => TextLists.Share(value);

    /// <summary>Whether two topologies list the same CPUs for the same cores (at once when they are the one shared copy).</summary>
    public static bool SameTopology(IReadOnlyList<IReadOnlyList<int>> a, IReadOnlyList<IReadOnlyList<int>> b) => TopologyComparer.Instance.Equals(a, b);

    /// <summary>The first <paramref name="capacity"/> distinct values given, each handed out for every value equal to it.</summary>
    internal sealed class Pool<T>(IEqualityComparer<T> comparer, int capacity)
        where T : class
    {
        private readonly ConcurrentDictionary<T, T> _values = new(comparer);
        private int _count; // ConcurrentDictionary.Count takes every lock of the table

        public T Share(T value)
        {
            if (_values.TryGetValue(value, out var shared))
            {
                return shared;
            }

            if (Volatile.Read(ref _count) >= capacity)
            {
                return value;
            }

            shared = _values.GetOrAdd(value, value);
            if (ReferenceEquals(shared, value))
            {
                Interlocked.Increment(ref _count);
            }

            return shared;
        }
    }

    private sealed class TopologyComparer : IEqualityComparer<IReadOnlyList<IReadOnlyList<int>>>
    {
        public static readonly TopologyComparer Instance = new();

        public bool Equals(IReadOnlyList<IReadOnlyList<int>>? x, IReadOnlyList<IReadOnlyList<int>>? y)
        {
            if (ReferenceEquals(x, y))
            {
                return true;
            }

            if (x is null || y is null || x.Count != y.Count)
            {
                return false;
            }

            for (var c = 0; c < x.Count; c++)
            {
                if (x[c].Count != y[c].Count)
                {
                    return false;
                }

                for (var t = 0; t < x[c].Count; t++)
                {
                    if (x[c][t] != y[c][t])
                    {
                        return false;
                    }
                }
            }

            return true;
        }

        public int GetHashCode(IReadOnlyList<IReadOnlyList<int>> value)
        {
            var hash = new HashCode();
            for (var c = 0; c < value.Count; c++)
            {
                hash.Add(value[c].Count);
                for (var t = 0; t < value[c].Count; t++)
                {
                    hash.Add(value[c][t]);
                }
            }

            return hash.ToHashCode();
        }
    }

    private sealed class TextListComparer : IEqualityComparer<IReadOnlyList<string>>
    {
        public static readonly TextListComparer Instance = new();

        public bool Equals(IReadOnlyList<string>? x, IReadOnlyList<string>? y)
        {
            if (ReferenceEquals(x, y))
            {
                return true;
            }

            if (x is null || y is null || x.Count != y.Count)
            {
                return false;
            }

            for (var i = 0; i < x.Count; i++)
            {
                if (!string.Equals(x[i], y[i], StringComparison.Ordinal))
                {
                    return false;
                }
            }

            return true;
        }

        public int GetHashCode(IReadOnlyList<string> value)
        {
            var hash = new HashCode();
            for (var i = 0; i < value.Count; i++)
            {
                hash.Add(value[i], StringComparer.Ordinal);
            }

            return hash.ToHashCode();
        }
    }

    /// <summary>A string property decoded into its shared copy.</summary>
    internal sealed class TextJson : JsonConverter<string>
    {
        public override string Read(ref Utf8JsonReader reader, Type typeToConvert, JsonSerializerOptions options) =>
            reader.TokenType == JsonTokenType.String ? Text(reader.GetString()!) : throw new JsonException($"expected a string, found {reader.TokenType}");

        public override void Write(Utf8JsonWriter writer, string value, JsonSerializerOptions options) => writer.WriteStringValue(value);
    }

    /// <summary>A list of strings decoded into its shared copy.</summary>
    internal sealed class TextListJson : JsonConverter<IReadOnlyList<string>>
    {
        public override IReadOnlyList<string> Read(ref Utf8JsonReader reader, Type typeToConvert, JsonSerializerOptions options)
        {
            if (reader.TokenType != JsonTokenType.StartArray)
            {
                throw new JsonException($"expected an array of strings, found {reader.TokenType}");
            }

            var values = new List<string>();
            while (reader.Read() && reader.TokenType != JsonTokenType.EndArray)
            {
                values.Add(reader.TokenType == JsonTokenType.String ? Text(reader.GetString()!) : throw new JsonException($"expected a string, found {reader.TokenType}"));
            }

            return TextList(values.ToArray());
        }

        public override void Write(Utf8JsonWriter writer, IReadOnlyList<string> value, JsonSerializerOptions options)
        {
            writer.WriteStartArray();
            for (var i = 0; i < value.Count; i++)
            {
                writer.WriteStringValue(value[i]);
            }

            writer.WriteEndArray();
        }
    }

    /// <summary>Labels whose names and values are shared copies; no labels at all, one empty dictionary.</summary>
    internal sealed class LabelsJson : JsonConverter<IReadOnlyDictionary<string, string>>
    {
        public override IReadOnlyDictionary<string, string> Read(ref Utf8JsonReader reader, Type typeToConvert, JsonSerializerOptions options)
        {
            if (reader.TokenType != JsonTokenType.StartObject)
            {
                throw new JsonException($"expected an object of labels, found {reader.TokenType}");
            }

            Dictionary<string, string>? labels = null;
            while (reader.Read() && reader.TokenType != JsonTokenType.EndObject)
            {
                var name = Text(reader.GetString()!);
                reader.Read();
                labels ??= new Dictionary<string, string>(StringComparer.Ordinal);
                labels[name] = reader.TokenType switch
                {
                    JsonTokenType.String => Text(reader.GetString()!),
                    JsonTokenType.Null => null!, // read as the serializer's own dictionary read it, so no stored record stops decoding
                    _ => throw new JsonException($"label '{name}': expected a string, found {reader.TokenType}"),
                };
            }

            return labels is null ? ReadOnlyDictionary<string, string>.Empty : labels;
        }

        public override void Write(Utf8JsonWriter writer, IReadOnlyDictionary<string, string> value, JsonSerializerOptions options)
        {
            writer.WriteStartObject();
            foreach (var (name, text) in value)
            {
                writer.WriteString(name, text);
            }

            writer.WriteEndObject();
        }
    }

    /// <summary>A node's cores (each a list of its hardware threads' CPU numbers) decoded into the shared copy of that topology.</summary>
    internal sealed class TopologyJson : JsonConverter<IReadOnlyList<IReadOnlyList<int>>>
    {
        private static readonly IntListJson Cpus = new();

        public override IReadOnlyList<IReadOnlyList<int>> Read(ref Utf8JsonReader reader, Type typeToConvert, JsonSerializerOptions options)
        {
            if (reader.TokenType != JsonTokenType.StartArray)
            {
                throw new JsonException($"expected an array of cores, found {reader.TokenType}");
            }

            var cores = new List<IReadOnlyList<int>>();
            while (reader.Read() && reader.TokenType != JsonTokenType.EndArray)
            {
                cores.Add(Cpus.Read(ref reader, typeof(IReadOnlyList<int>), options));
            }

            return Topology(cores.ToArray());
        }

        public override void Write(Utf8JsonWriter writer, IReadOnlyList<IReadOnlyList<int>> value, JsonSerializerOptions options)
        {
            writer.WriteStartArray();
            for (var c = 0; c < value.Count; c++)
            {
                Cpus.Write(writer, value[c], options);
            }

            writer.WriteEndArray();
        }
    }
}
