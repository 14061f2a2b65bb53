namespace Heddle.Controller.Store;

/// <summary>What a node record says of its node: Ready (placements go there), Down (silent past the node timeout: its instances move), Draining (being emptied).</summary>
public static class NodeConditions
{
    public const string Ready = "Ready";
    public const string Down = "Down";
    public const string Draining = "Draining";
}
