namespace Heddle.Controller.Store;

/// <summary>
/// The state of a placed instance, as its agent last reported it (Pending until it has). Stored and answered by name
/// (<see cref="Contracts.Api.InstanceStates"/> holds the same words for the API and the agents' protocol, which also
/// has "Unplaced", a state no record is in).
/// </summary>
public enum InstanceState
{
    Pending,
    Downloading,
    Starting,
    Ready,
    Unhealthy,
    Stopping,
    Stopped,
    Faulted,
}

public static class InstanceStateWords
{
    /// <summary>The state an agent's report names, or null when it names none (a report that is refused, not stored).</summary>
    public static InstanceState? Parse(string word) => Words.TryGetValue(word, out var state) ? state : null;

    /// <summary>Each state by its exact name (Enum.TryParse would also take numbers, lists and other cases).</summary>
    private static readonly Dictionary<string, InstanceState> Words = Enum.GetValues<InstanceState>().ToDictionary(s => s.ToString(), StringComparer.Ordinal);

    /// <summary>
    /// Stored by name; a word no agent says now (a store written when reports were kept as whatever the agent sent) is
    /// read as Pending, as if it had not reported, so one odd record never makes a listing fail.
    /// </summary>
    public sealed class Json : System.Text.Json.Serialization.JsonConverter<InstanceState>
    {
        public override InstanceState Read(ref System.Text.Json.Utf8JsonReader reader, Type typeToConvert, System.Text.Json.JsonSerializerOptions options) =>
            reader.TokenType == System.Text.Json.JsonTokenType.String && Parse(reader.GetString() ?? string.Empty) is { } state ? state : InstanceState.Pending;

        public override void Write(System.Text.Json.Utf8JsonWriter writer, InstanceState value, System.Text.Json.JsonSerializerOptions options) =>
            writer.WriteStringValue(value.ToString());
    }
}
