namespace Heddle.Cli;

/// <summary>What the process's exit code tells a script.</summary>
internal static class ExitCodes
{
    public const int Ok = 0;

    /// <summary>The input was read and is invalid (validation errors, a refused package).</summary>
    public const int Invalid = 1;

    /// <summary>The command was used wrongly: unknown option, missing argument, a file that does not exist.</summary>
    public const int Usage = 2;
}
