using Heddle.Model.Definition;

namespace Heddle.Placement.Feasibility;

/// <summary>What one instance needs from a node, with the tenant interned to an id.</summary>
internal readonly record struct Ask(int Tenant, int Cpus, int MemoryMiB, IReadOnlyDictionary<string, string> Constraints, string Driver = DriverNames.Process);
