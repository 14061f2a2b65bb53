using System.Runtime.InteropServices;

namespace Heddle.Cli;

/// <summary>
/// Gives the long-running processes that allocate the most (the controller, and the benchmark's hollow nodes) a
/// young-generation budget of their own (<see cref="Budgets"/>) before the runtime starts them.
/// <para>
/// The runtime sizes that budget from the CPU's cache, read from /sys/devices/system/cpu/cpu0/cache. Where a virtual
/// machine does not show it (Firecracker's do not), the runtime falls back to about 2 MiB: a collection every 2 MiB
/// allocated. A controller holding 2,500 nodes then spent more than half of its time paused for collections, each
/// walking its whole old generation, and calls went unanswered for seconds (measured; see README).
/// </para>
/// <para>
/// The value is the budget's floor: the runtime raises it while much of what is allocated survives (a deployment) and
/// comes back to it when little does. The controller's floor is 16 MiB: an idle controller allocates little, and the
/// young generation it fills before each collection is memory it holds (at 10,000 idle nodes a floor of 64 MiB held
/// ~30 MiB more). Capping the raised budget at 64 MiB as well (DOTNET_GCgen0MaxBudget) paused a deploying controller
/// longer (34 s of a 99 s deployment of 25,000 instances, against 14-27 s), so the ceiling is the runtime's own.
/// The hollow nodes keep 64 MiB.
/// </para>
/// <para>
/// The budget can only be set before the runtime starts (DOTNET_GCgen0size; runtimeconfig.json's System.GC.Gen0Size is
/// not read), so the process starts itself again, as the same pid with the same arguments, with the variable set. A
/// DOTNET_GCgen0size already set is kept as it is (0: the runtime's own choice).
/// </para>
/// </summary>
internal static partial class GcBudget
{
    public const string Variable = "DOTNET_GCgen0size";

    /// <summary>Each command's floor, in the hexadecimal the runtime reads: the controller 16 MiB, the hollow nodes 64 MiB.</summary>
    public static readonly IReadOnlyDictionary<string, string> Budgets = new Dictionary<string, string>(StringComparer.Ordinal)
    {
        ["controller"] = "0x1000000",
        ["hollow"] = "0x4000000",
    };

    /// <summary>Starts this process again with the budget set when it runs one of the commands in <see cref="Budgets"/> without it; else returns.</summary>
    public static void Apply(string[] args)
    {
        if (!OperatingSystem.IsLinux() || args.Length == 0 || !Budgets.TryGetValue(args[0], out var budget) || Environment.GetEnvironmentVariable(Variable) is not null)
        {
            return;
        }

        // The exact argument vector this process was started with (`dotnet heddle.dll controller …` as well as `heddle controller …`).
        string[] argv;
        try
        {
            argv = File.ReadAllText("/proc/self/cmdline").TrimEnd('\0').Split('\0');
        }
        catch (IOException)
        {
            return;
        }

        var environment = Environment.GetEnvironmentVariables().Cast<System.Collections.DictionaryEntry>()
            .Select(e => $"{e.Key}={e.Value}").Append($"{Variable}={budget}").ToArray();
        ReleaseDiagnosticsSocket();
        // What this runtime opened (its assemblies, its diagnostics socket, its event fds) is not the new one's: closed at
        // the exec. Only standard input, output and error, and sockets systemd hands over (LISTEN_FDS), stay open.
        _ = close_range((uint)(3 + ListenFds()), uint.MaxValue, CloseRangeCloexec);
        // By its path, not /proc/self/exe: the process keeps its name (heddle, or dotnet) in ps and pgrep.
        Exec(Environment.ProcessPath ?? "/proc/self/exe", argv, environment);
        // Only reached if execve failed: this process runs on with the runtime's own budget, as before.
    }

    /// <summary>
    /// Removes the diagnostics socket this runtime made (dotnet-diagnostic-PID-START-socket in the temporary folder). The
    /// runtime started again has the same pid and start time, so the same name: with the old file left, it could not listen
    /// there, and dotnet-counters, dotnet-trace and dotnet-dump could not reach it.
    /// </summary>
    private static void ReleaseDiagnosticsSocket()
    {
        try
        {
            foreach (var socket in Directory.EnumerateFiles(Path.GetTempPath(), $"dotnet-diagnostic-{Environment.ProcessId}-*-socket"))
            {
                File.Delete(socket);
            }
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            // The new runtime then does without its diagnostics port, as this one would have.
        }
    }

    private static int ListenFds() =>
        Environment.GetEnvironmentVariable("LISTEN_PID") == $"{Environment.ProcessId}" && int.TryParse(Environment.GetEnvironmentVariable("LISTEN_FDS"), out var n) && n > 0 ? n : 0;

    private static void Exec(string path, string[] argv, string[] environment)
    {
        var pointers = new List<nint>();
        try
        {
            nint Terminated(string[] strings)
            {
                var block = Marshal.AllocCoTaskMem(nint.Size * (strings.Length + 1));
                pointers.Add(block);
                for (var i = 0; i < strings.Length; i++)
                {
                    var s = Marshal.StringToCoTaskMemUTF8(strings[i]);
                    pointers.Add(s);
                    Marshal.WriteIntPtr(block, i * nint.Size, s);
                }

                Marshal.WriteIntPtr(block, strings.Length * nint.Size, 0);
                return block;
            }

            _ = execve(path, Terminated(argv), Terminated(environment));
        }
        finally
        {
            foreach (var pointer in pointers)
            {
                Marshal.FreeCoTaskMem(pointer);
            }
        }
    }

    [LibraryImport("libc", StringMarshalling = StringMarshalling.Utf8, SetLastError = true)]
    private static partial int execve(string path, nint argv, nint envp);

    private const uint CloseRangeCloexec = 4; // CLOSE_RANGE_CLOEXEC: marked, not closed (this runtime goes on using them until the exec, or if it fails)

    [LibraryImport("libc", SetLastError = true)]
    private static partial int close_range(uint first, uint last, uint flags);
}
