namespace Heddle.Model.Definition;

/// <summary>
/// The names drivers go by, the same everywhere: a role's <c>driver:</c> in service.yaml, the drivers an agent says it
/// can run, what the allocator checks a node for, and an agent's journal of the instances it started.
/// </summary>
public static class DriverNames
{
    public const string Process = "process";

    public const string Container = "container";

    public static string Of(RoleDriver driver) => driver == RoleDriver.Container ? Container : Process;
}
