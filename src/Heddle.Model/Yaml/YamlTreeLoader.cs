using Heddle.Model.Diagnostics;
using YamlDotNet.Core;
using YamlDotNet.Core.Events;

namespace Heddle.Model.Yaml;

/// <summary>Reads one YAML document into a <see cref="YNode"/> tree, turning syntax errors into diagnostics.</summary>
public static class YamlTreeLoader
{
    /// <summary>Aliases may not expand beyond this many nodes, so "billion laughs" documents stay small.</summary>
    private const int MaxNodes = 100_000;

    /// <summary>Lists and mappings may nest this deep: no model needs more, and deeper input would exhaust the stack.</summary>
    public const int MaxDepth = 64;

    /// <returns>The root node, or null when the document is empty or has a syntax error (then reported).</returns>
    public static YNode? Load(TextReader text, string file, DiagnosticBag diagnostics)
    {
        var parser = new Parser(text);
        var state = new LoaderState(parser, file);
        try
        {
            parser.Consume<StreamStart>();
            if (parser.TryConsume<StreamEnd>(out _))
            {
                return null;
            }

            parser.Consume<DocumentStart>();
            var root = ReadNode(state);
            parser.Consume<DocumentEnd>();
            if (parser.TryConsume<DocumentStart>(out var second))
            {
                diagnostics.Add(new SourceLocation(file, (int)second.Start.Line, (int)second.Start.Column), DiagnosticCodes.YamlSyntax,
                    "the file holds more than one YAML document; keep only one (remove the extra '---')");
                return null;
            }

            return root;
        }
        catch (TooDeepException e)
        {
            diagnostics.Add(new SourceLocation(file, (int)e.Start.Line, (int)e.Start.Column), DiagnosticCodes.YamlTooDeep,
                $"lists and mappings are nested more than {MaxDepth} deep here; no Heddle file needs that many levels");
            return null;
        }
        catch (YamlException e)
        {
            diagnostics.Add(new SourceLocation(file, (int)e.Start.Line, (int)e.Start.Column), DiagnosticCodes.YamlSyntax,
                $"YAML syntax error: {Describe(e)}");
            return null;
        }
        catch (InvalidOperationException)
        {
            // YamlDotNet's scanner gives up this way on some malformed input (found by the fuzz tests): still the
            // file's fault, reported where the parser last stood.
            var at = parser.Current?.Start;
            diagnostics.Add(new SourceLocation(file, (int)(at?.Line ?? 1), (int)(at?.Column ?? 1)), DiagnosticCodes.YamlSyntax,
                "YAML syntax error: the text after this point cannot be read as YAML (check quotes, brackets and indentation)");
            return null;
        }
    }

    private static string Describe(YamlException e)
    {
        // YamlDotNet prefixes messages with "(Line: x, Col: y, Idx: z) - (...): "; the location is reported separately.
        var message = e.Message;
        var cut = message.LastIndexOf("): ", StringComparison.Ordinal);
        message = cut >= 0 ? message[(cut + 3)..] : message;
        return message.TrimEnd('.').Trim();
    }

    private sealed class LoaderState(IParser parser, string file)
    {
        public IParser Parser { get; } = parser;

        public string File { get; } = file;

        public Dictionary<string, YNode> Anchors { get; } = new(StringComparer.Ordinal);

        public int NodeCount { get; set; }

        public int Depth { get; set; }
    }

    private sealed class TooDeepException(Mark start, Mark end) : YamlException(start, end, "nested too deep");

    private static YNode ReadNode(LoaderState state)
    {
        var parser = state.Parser;
        if (++state.NodeCount > MaxNodes)
        {
            throw new YamlException(parser.Current!.Start, parser.Current.End, $"the document has more than {MaxNodes} nodes");
        }

        switch (parser.Current)
        {
            case AnchorAlias alias:
                parser.MoveNext();
                if (!state.Anchors.TryGetValue(alias.Value.Value, out var target))
                {
                    throw new YamlException(alias.Start, alias.End, $"alias '*{alias.Value.Value}' refers to an anchor that is not defined before it");
                }

                return target;

            case Scalar scalar:
                parser.MoveNext();
                var node = new YScalar((int)scalar.Start.Line, (int)scalar.Start.Column, scalar.Value, scalar.Style == ScalarStyle.Plain);
                Remember(state, scalar.Anchor, node);
                return node;

            case SequenceStart start:
            {
                using var level = Enter(state, start);
                parser.MoveNext();
                var items = new List<YNode>();
                while (!parser.TryConsume<SequenceEnd>(out _))
                {
                    items.Add(ReadNode(state));
                }

                var sequence = new YSequence((int)start.Start.Line, (int)start.Start.Column, items);
                Remember(state, start.Anchor, sequence);
                return sequence;
            }

            case MappingStart start:
            {
                using var level = Enter(state, start);
                parser.MoveNext();
                var entries = new List<YEntry>();
                while (!parser.TryConsume<MappingEnd>(out _))
                {
                    var keyNode = ReadNode(state);
                    if (keyNode is not YScalar key)
                    {
                        throw new YamlException(new Mark(0, keyNode.Line, keyNode.Column), new Mark(0, keyNode.Line, keyNode.Column),
                            "a mapping key must be a plain name, not a list or a mapping");
                    }

                    entries.Add(new YEntry(key, ReadNode(state)));
                }

                var mapping = new YMapping((int)start.Start.Line, (int)start.Start.Column, entries);
                Remember(state, start.Anchor, mapping);
                return mapping;
            }

            default:
                var current = parser.Current!;
                throw new YamlException(current.Start, current.End, $"unexpected {current.GetType().Name}");
        }
    }

    /// <summary>One level deeper for as long as the returned scope lives; beyond <see cref="MaxDepth"/> the document is refused.</summary>
    private static Level Enter(LoaderState state, ParsingEvent start)
    {
        if (++state.Depth > MaxDepth)
        {
            throw new TooDeepException(start.Start, start.End);
        }

        return new Level(state);
    }

    private readonly struct Level(LoaderState state) : IDisposable
    {
        public void Dispose() => state.Depth--;
    }

    private static void Remember(LoaderState state, AnchorName anchor, YNode node)
    {
        if (!anchor.IsEmpty)
        {
            state.Anchors[anchor.Value] = node;
        }
    }
}
