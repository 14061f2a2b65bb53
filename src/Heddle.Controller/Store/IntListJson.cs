using System.Text.Json;
using System.Text.Json.Serialization;

namespace Heddle.Controller.Store;

/// <summary>
/// The store's lists of CPU numbers (a node's cores, an instance's CPUs) decoded into arrays. The serializer's own choice
/// for <see cref="IReadOnlyList{T}"/> is a <see cref="List{T}"/>: an object and a spare-capacity array for every list,
/// kept for the record's life, and a node record holds one per core (32 on a 32-core node). The JSON is unchanged.
/// </summary>
internal sealed class IntListJson : JsonConverter<IReadOnlyList<int>>
{
    public override IReadOnlyList<int> Read(ref Utf8JsonReader reader, Type typeToConvert, JsonSerializerOptions options)
    {
        if (reader.TokenType != JsonTokenType.StartArray)
        {
            throw new JsonException($"expected an array of integers, found {reader.TokenType}");
        }

        Span<int> first = stackalloc int[64];
        List<int>? more = null;
        var count = 0;
        while (reader.Read() && reader.TokenType != JsonTokenType.EndArray)
        {
            var value = reader.GetInt32(); // throws on anything but an integer
            if (count < first.Length)
            {
                first[count] = value;
            }
            else
            {
                more ??= [];
                more.Add(value);
            }

            count++;
        }

        if (count == 0)
        {
            return [];
        }

        var values = new int[count];
        first[..Math.Min(count, first.Length)].CopyTo(values);
        more?.CopyTo(values, first.Length);
        return values;
    }

    public override void Write(Utf8JsonWriter writer, IReadOnlyList<int> value, JsonSerializerOptions options)
    {
        writer.WriteStartArray();
        for (var i = 0; i < value.Count; i++) // by index: an interface's enumerator would be boxed for each list
        {
            writer.WriteNumberValue(value[i]);
        }

        writer.WriteEndArray();
    }
}
