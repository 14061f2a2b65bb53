using System.Text.Json;
using System.Text.Json.Serialization;
using System.Text.Json.Serialization.Metadata;

namespace Heddle.Controller.Publishing;

/// <summary>
/// The serializer's options for a projection's fingerprints (<see cref="PerServiceProjection{T, TPart}"/>): the same JSON
/// as the defaults, but lists declared as <see cref="IReadOnlyList{T}"/> are written by index. The serializer's own
/// writer walks them through <see cref="IEnumerable{T}"/>, an enumerator object for every list of every part each time a
/// service changes: the largest allocation of the DNS and balancer views while a cluster deployed (2026-12-08).
/// </summary>
internal static class FingerprintJson
{
    public static readonly JsonSerializerOptions Options = new() { Converters = { new IndexedLists() } };

    private sealed class IndexedLists : JsonConverterFactory
    {
        public override bool CanConvert(Type typeToConvert) =>
            typeToConvert.IsGenericType && typeToConvert.GetGenericTypeDefinition() == typeof(IReadOnlyList<>);

        public override JsonConverter CreateConverter(Type typeToConvert, JsonSerializerOptions options) =>
            (JsonConverter)Activator.CreateInstance(typeof(IndexedList<>).MakeGenericType(typeToConvert.GetGenericArguments()[0]))!;
    }

    private sealed class IndexedList<T> : JsonConverter<IReadOnlyList<T>>
    {
        public override IReadOnlyList<T>? Read(ref Utf8JsonReader reader, Type typeToConvert, JsonSerializerOptions options) =>
            JsonSerializer.Deserialize<List<T>>(ref reader, options);

        public override void Write(Utf8JsonWriter writer, IReadOnlyList<T> value, JsonSerializerOptions options)
        {
            var element = (JsonTypeInfo<T>)options.GetTypeInfo(typeof(T));
            writer.WriteStartArray();
            for (var i = 0; i < value.Count; i++)
            {
                JsonSerializer.Serialize(writer, value[i], element);
            }

            writer.WriteEndArray();
        }
    }
}
