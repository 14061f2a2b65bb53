namespace Heddle.Controller.Store;

/// <summary>
/// What a node record says of its node. Stored and answered by name ("Ready", "Down", "Draining": the store's JSON
/// writes enums as strings), as when these were string constants.
/// </summary>
public enum NodeCondition
{
    /// <summary>Placements go there.</summary>
    Ready,

    /// <summary>Silent past the node timeout: its instances move.</summary>
    Down,

    /// <summary>Being emptied: keeps what it runs, receives nothing new.</summary>
    Draining,
}
