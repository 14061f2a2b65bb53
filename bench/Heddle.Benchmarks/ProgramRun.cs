using System.Diagnostics;

namespace Heddle.Benchmarks;

/// <summary>Runs a program to its end (heddle pack, before a harness deploys what it packed); its errors in the exception when it fails.</summary>
internal static class ProgramRun
{
    public static void Run(string file, string[] args)
    {
        var start = new ProcessStartInfo(file) { UseShellExecute = false, RedirectStandardOutput = true, RedirectStandardError = true };
        args.ToList().ForEach(start.ArgumentList.Add);
        using var process = Process.Start(start)!;
        var error = process.StandardError.ReadToEndAsync();
        process.StandardOutput.ReadToEnd();
        process.WaitForExit();
        if (process.ExitCode != 0)
        {
            throw new InvalidOperationException($"{file} {string.Join(' ', args)} failed: {error.Result}");
        }
    }
}
