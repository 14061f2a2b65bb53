using System.Text.Json;

namespace Heddle.Agent.Instances;

/// <summary>What the agent must remember about a running instance to adopt it after its own restart.</summary>
/// <param name="SettingsKey">The settings the process last had (started with, or reloaded on SIGHUP): an adopted instance whose goal has others is signalled.</param>
/// <param name="Driver">The driver that started it (a journal written before the container driver existed names none: process).</param>
public sealed record JournalEntry(string Id, string SpecKey, long Generation, int Pid, long StartTime, Dictionary<string, int> Ports, string Directory, int Restarts, string? SettingsKey = null, string? Driver = null);

/// <summary>The instances this agent runs, on disk (written whole and renamed into place), so a new agent process can adopt them.</summary>
public sealed class InstanceJournal(string path)
{
    private readonly Lock _lock = new();

    public IReadOnlyList<JournalEntry> Load()
    {
        try
        {
            return File.Exists(path) ? JsonSerializer.Deserialize<List<JournalEntry>>(File.ReadAllText(path)) ?? [] : [];
        }
        catch (JsonException)
        {
            return [];
        }
    }

    public void Save(IEnumerable<JournalEntry> entries)
    {
        lock (_lock)
        {
            var temporary = path + ".tmp";
            File.WriteAllText(temporary, JsonSerializer.Serialize(entries.ToList()));
            File.Move(temporary, path, overwrite: true);
        }
    }
}
