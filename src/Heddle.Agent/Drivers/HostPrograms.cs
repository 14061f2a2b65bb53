namespace Heddle.Agent.Drivers;

/// <summary>
/// The programs the agent runs as root to start an instance, by absolute path, and the only environment they get.
/// Nothing of a role (its PATH, LD_PRELOAD, BASH_ENV, ENV, IFS, a file in its folder named like one of these) can
/// choose what runs before privileges are dropped: the role's variables are read by the instance's own shell, as its
/// service's uid, after <see cref="Setpriv"/>.
/// </summary>
public static class HostPrograms
{
    public const string Shell = "/bin/sh";
    public const string Setsid = "/usr/bin/setsid";
    public const string Taskset = "/usr/bin/taskset";
    public const string Setpriv = "/usr/bin/setpriv";
    public const string Unshare = "/usr/bin/unshare";
    public const string Nsenter = "/usr/bin/nsenter";
    public const string Mount = "/usr/bin/mount";

    public const string SafePath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

    /// <summary>The whole environment of every program the agent starts on an instance's behalf.</summary>
    public static IReadOnlyDictionary<string, string> Environment { get; } = new Dictionary<string, string>(StringComparer.Ordinal)
    {
        ["PATH"] = SafePath,
        ["LANG"] = "C.UTF-8",
    };

    /// <summary>How the agent starts one of these (or any host program): by absolute path, with <see cref="Environment"/> alone.</summary>
    public static System.Diagnostics.ProcessStartInfo StartInfo(string program, params IEnumerable<string> args)
    {
        var start = new System.Diagnostics.ProcessStartInfo(program, args) { UseShellExecute = false };
        start.Environment.Clear();
        foreach (var (name, value) in Environment)
        {
            start.Environment[name] = value;
        }

        return start;
    }

    /// <summary>The programs the process driver needs that this host lacks (util-linux, a POSIX shell).</summary>
    public static IReadOnlyList<string> Missing(bool root) =>
        [.. new[] { Shell, Setsid, Taskset }.Concat(root ? [Setpriv, Unshare, Nsenter, Mount] : []).Where(p => !File.Exists(p))];
}
