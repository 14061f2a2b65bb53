namespace Heddle.Model.Yaml;

/// <summary>
/// A YAML node that remembers where it stood in its file. Built from parser events rather than
/// YamlDotNet's representation model so that duplicate keys and every position survive, and a
/// validator can report each problem with its line and column.
/// </summary>
public abstract class YNode(int line, int column)
{
    public int Line { get; } = line;

    public int Column { get; } = column;

    /// <summary>A short word for error messages: "a text", "a list", "a mapping".</summary>
    public abstract string KindDescription { get; }
}

public sealed class YScalar(int line, int column, string value, bool isPlain) : YNode(line, column)
{
    public string Value { get; } = value;

    /// <summary>True for unquoted scalars; only those may be read as numbers or null.</summary>
    public bool IsPlain { get; } = isPlain;

    public bool IsNull => IsPlain && Value is "" or "~" or "null" or "Null" or "NULL";

    public override string KindDescription => IsNull ? "empty" : IsPlain ? $"'{Value}'" : $"the text \"{Value}\"";
}

public sealed class YSequence(int line, int column, IReadOnlyList<YNode> items) : YNode(line, column)
{
    public IReadOnlyList<YNode> Items { get; } = items;

    public override string KindDescription => "a list";
}

public sealed record YEntry(YScalar Key, YNode Value);

public sealed class YMapping(int line, int column, IReadOnlyList<YEntry> entries) : YNode(line, column)
{
    public IReadOnlyList<YEntry> Entries { get; } = entries;

    public override string KindDescription => "a mapping";
}
