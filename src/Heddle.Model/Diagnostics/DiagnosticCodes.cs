namespace Heddle.Model.Diagnostics;

/// <summary>
/// Stable error codes. A code never changes meaning once released; docs/diagnostics.md lists them for users.
/// HD1xxx: one file's content. HD2xxx: the configuration against the definition. HD3xxx: packages. HD4xxx: simulation inputs (cluster files and traces).
/// </summary>
public static class DiagnosticCodes
{
    public const string YamlSyntax = "HD1000";
    public const string UnknownKey = "HD1001";
    public const string WrongType = "HD1002";
    public const string MissingField = "HD1003";
    public const string OutOfRange = "HD1004";
    public const string BadName = "HD1005";
    public const string DuplicatePublicPort = "HD1006";
    public const string ProbeEndpointMissing = "HD1007";
    public const string NotAllowedValue = "HD1008";
    public const string ContainerWithoutImage = "HD1009";
    public const string DuplicateKey = "HD1010";
    public const string ImageOnProcessRole = "HD1011";
    public const string ProbeKindAmbiguous = "HD1012";
    public const string ProbeTimeoutTooLong = "HD1013";
    public const string InputEndpointInvalid = "HD1014";
    public const string NoRoles = "HD1015";
    public const string DuplicateSetting = "HD1016";
    public const string YamlTooDeep = "HD1017";
    public const string NetworkNotSupported = "HD1018";
    public const string ReservedServiceName = "HD1019";
    public const string ReservedEnvironmentName = "HD1020";

    public const string ServiceMismatch = "HD2001";
    public const string UnknownConfigRole = "HD2002";
    public const string RoleNotConfigured = "HD2003";
    public const string SettingNotDeclared = "HD2004";
    public const string SettingNotValued = "HD2005";
    public const string InstanceCountOutOfRange = "HD2006";

    public const string NotAZip = "HD3001";
    public const string UnsafePath = "HD3002";
    public const string SymbolicLink = "HD3003";
    public const string DuplicateEntry = "HD3004";
    public const string EntryTooLarge = "HD3005";
    public const string PackageTooLarge = "HD3006";
    public const string TooManyEntries = "HD3007";
    public const string CompressionRatio = "HD3008";
    public const string ManifestMismatch = "HD3009";
    public const string MissingPackageFile = "HD3010";
    public const string HashMismatch = "HD3011";
    public const string RoleFolderMissing = "HD3012";
    public const string UnknownRoleFolder = "HD3013";
    public const string ManifestInvalid = "HD3014";
    public const string TargetExists = "HD3015";

    public const string TraceSyntax = "HD4001";
    public const string TraceUnknownTarget = "HD4002";
    public const string DuplicateNode = "HD4003";
}
