using System.Text.Json;
using System.Text.Json.Serialization;
using Heddle.Contracts.Api;
using Heddle.Model.Configuration;

namespace Heddle.Controller.Upgrades;

/// <summary>
/// One upgrade of a service, stored with it so that a restarted controller carries on where the last one stopped:
/// which revision it is for, which upgrade domains are done, which one is being walked and in what phase. Moving
/// forward it brings instances to <see cref="Revision"/>; rolling back it brings them back to <see cref="Previous"/>,
/// through the domains already walked, in reverse order. The record of a finished walk stays until the next one, so
/// `heddle upgrade status` can say how it ended.
/// </summary>
public sealed record UpgradeWalk
{
    /// <summary>The revision this upgrade is for.</summary>
    public required long Revision { get; init; }

    /// <summary>The revision the instances ran before; a rollback goes back to it.</summary>
    public required long Previous { get; init; }

    public required UpgradePolicy Policy { get; init; }

    /// <summary>The upgrade domains in the order they are walked.</summary>
    public required IReadOnlyList<int> Order { get; init; }

    /// <summary>Index into <see cref="Order"/> of the domain being walked.</summary>
    public int Position { get; init; }

    public WalkPhase Phase { get; init; } = WalkPhase.Draining;

    public bool RollingBack { get; init; }

    /// <summary>Why the walk rolled back or paused (a failed domain, or a user's command).</summary>
    public string? Reason { get; init; }

    /// <summary>Set by `heddle upgrade pause`: the walk holds where it is until `heddle upgrade resume`.</summary>
    public bool PausedByUser { get; init; }

    public required DateTimeOffset Started { get; init; }

    /// <summary>When the current phase began: the domain timeout counts from the start of <see cref="WalkPhase.Updating"/>.</summary>
    public required DateTimeOffset PhaseStarted { get; init; }

    public DateTimeOffset? Finished { get; init; }

    /// <summary>The revision the instances are being brought to now.</summary>
    public long Destination => RollingBack ? Previous : Revision;

    /// <summary>The revision they are coming from.</summary>
    public long Source => RollingBack ? Revision : Previous;

    public int? CurrentDomain => IsFinished || Position >= Order.Count ? null : Order[Position];

    public bool IsFinished => Phase is WalkPhase.Completed or WalkPhase.RolledBack;

    /// <summary>What `heddle history` says of the walk's revision while it runs and once it has ended.</summary>
    public RevisionOutcome Outcome => Phase switch
    {
        WalkPhase.Completed => RevisionOutcome.Completed,
        WalkPhase.RolledBack => new(RevisionState.RolledBack, Reason ?? string.Empty),
        WalkPhase.Paused or WalkPhase.WaitingForResume => RevisionOutcome.Paused,
        _ when PausedByUser => RevisionOutcome.Paused,
        _ when RollingBack => new(RevisionState.RollingBack, Reason ?? string.Empty),
        _ => RevisionOutcome.InProgress,
    };
}

public enum WalkPhase
{
    /// <summary>The domain's instances that will restart are out of the load balancer and DNS; waiting until every data plane has been told.</summary>
    Draining,

    /// <summary>The domain's instances run (or are starting at) the destination revision; waiting for the health gate.</summary>
    Updating,

    /// <summary>Manual mode: the domain is healthy; waiting for `heddle upgrade resume`.</summary>
    WaitingForResume,

    /// <summary>A domain failed and the failure action is pause (or a rollback failed): waiting for a person.</summary>
    Paused,

    Completed,

    RolledBack,
}

/// <summary>
/// The states a revision's outcome names: the words of its upgrade's state (<see cref="UpgradeStates"/>), and
/// <see cref="Superseded"/>.
/// </summary>
public enum RevisionState
{
    InProgress,
    Completed,
    Paused,
    RollingBack,
    RolledBack,

    /// <summary>A newer revision was accepted before this one (which needed no walk) had all its instances Ready.</summary>
    Superseded,
}

/// <summary>
/// How a revision ended, as `heddle history` shows it: a state, and for a walk rolling or rolled back, why. Stored and
/// shown as the words it always had: the state's name, or "RolledBack: why".
/// </summary>
[JsonConverter(typeof(RevisionOutcomeJson))]
public sealed record RevisionOutcome(RevisionState State, string? Reason = null)
{
    public static readonly RevisionOutcome InProgress = new(RevisionState.InProgress);
    public static readonly RevisionOutcome Completed = new(RevisionState.Completed);
    public static readonly RevisionOutcome Paused = new(RevisionState.Paused);
    public static readonly RevisionOutcome Superseded = new(RevisionState.Superseded);

    private static readonly Dictionary<string, RevisionState> States = Enum.GetValues<RevisionState>().ToDictionary(s => s.ToString(), StringComparer.Ordinal);

    /// <summary>The words: the state, then ": " and the reason when there is one (an empty reason still has its ": ").</summary>
    public override string ToString() => Reason is null ? State.ToString() : $"{State}: {Reason}";

    /// <summary>An outcome from its words (<see cref="ToString"/>); throws <see cref="FormatException"/> for words that name no state.</summary>
    public static RevisionOutcome Parse(string text)
    {
        var colon = text.IndexOf(": ", StringComparison.Ordinal);
        var word = colon < 0 ? text : text[..colon];
        return States.TryGetValue(word, out var state)
            ? new RevisionOutcome(state, colon < 0 ? null : text[(colon + 2)..])
            : throw new FormatException($"'{text}' is not a revision outcome (one of {string.Join(", ", States.Keys)}, optionally followed by ': ' and a reason)");
    }
}

/// <summary>A <see cref="RevisionOutcome"/> in JSON: its words, as a string.</summary>
internal sealed class RevisionOutcomeJson : JsonConverter<RevisionOutcome>
{
    public override RevisionOutcome Read(ref Utf8JsonReader reader, Type typeToConvert, JsonSerializerOptions options)
    {
        try
        {
            return RevisionOutcome.Parse(reader.GetString() ?? throw new JsonException("a revision outcome is a string"));
        }
        catch (FormatException e)
        {
            throw new JsonException(e.Message, e);
        }
    }

    public override void Write(Utf8JsonWriter writer, RevisionOutcome value, JsonSerializerOptions options) => writer.WriteStringValue(value.ToString());
}
