using Heddle.Agent.Logs;
using Heddle.Testing;

namespace Heddle.Agent.Tests.Logs;

public sealed class LogRotationTests
{
    [Fact]
    public void RotateIfLarge_OverTheCap_CopiesToDotOneTruncatesAndKeepsTheNewest()
    {
        using var dir = new TempDirectory();
        var log = dir.Combine("stdout.log");
        using var writer = new FileStream(log, FileMode.Append, FileAccess.Write, FileShare.ReadWrite);

        for (var round = 1; round <= 4; round++)
        {
            writer.Write(System.Text.Encoding.UTF8.GetBytes(new string((char)('a' + round), 100)));
            writer.Flush();
            LogRotation.RotateIfLarge(log, maxBytes: 50, kept: 2);
        }

        writer.Write("after"u8);
        writer.Flush();
        Assert.Equal("after", File.ReadAllText(log).TrimStart('\0'));
        Assert.Equal(new string('e', 100), File.ReadAllText(log + ".1").TrimStart('\0'));
        Assert.Equal(new string('d', 100), File.ReadAllText(log + ".2").TrimStart('\0'));
        Assert.False(File.Exists(log + ".3"));
    }

    [Fact]
    public void RotateIfLarge_UnderTheCap_LeavesTheFileAlone()
    {
        using var dir = new TempDirectory();
        var log = dir.Combine("stdout.log");
        File.WriteAllText(log, "short");

        LogRotation.RotateIfLarge(log, maxBytes: 50, kept: 3);

        Assert.Equal("short", File.ReadAllText(log));
        Assert.False(File.Exists(log + ".1"));
    }
}
