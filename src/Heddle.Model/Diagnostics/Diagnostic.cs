namespace Heddle.Model.Diagnostics;

/// <summary>A place in a user's file. Line and column are 1-based; 0 means "the file as a whole".</summary>
public readonly record struct SourceLocation(string File, int Line, int Column)
{
    public static SourceLocation WholeFile(string file) => new(file, 0, 0);

    public override string ToString() => Line > 0 ? $"{File}:{Line}:{Column}" : File;
}

/// <summary>One problem found in user input: where, a stable code, and a sentence that says what to change.</summary>
public sealed record Diagnostic(SourceLocation Location, string Code, string Message)
{
    public override string ToString() => $"{Location}: {Code}: {Message}";
}
