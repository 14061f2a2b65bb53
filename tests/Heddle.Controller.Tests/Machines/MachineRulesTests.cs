using Heddle.Contracts.Api;
using Heddle.Contracts.Machines;
using Heddle.Controller.Machines;
using Heddle.Controller.Store;

namespace Heddle.Controller.Tests.Machines;

/// <summary>The pure parts of machines: MAC spellings, registration rules, the boot decision, the event throttle, the enrolment rule.</summary>
public sealed class MachineRulesTests
{
    [Theory]
    [InlineData("52:54:00:12:34:56")]
    [InlineData("52:54:00:12:34:56 ")]
    [InlineData("52-54-00-12-34-56")]
    [InlineData("5254.0012.3456")]
    [InlineData("525400123456")]
    public void Normalise_UsualSpellings_AreLowerCaseWithColons(string text)
    {
        Assert.Equal("52:54:00:12:34:56", MacAddress.Normalise(text, out var error));
        Assert.Null(error);
    }

    [Fact]
    public void Normalise_UpperCase_IsLowerCase() => Assert.Equal("52:54:00:ab:cd:ef", MacAddress.Normalise("52:54:00:AB:CD:EF", out _));

    [Theory]
    [InlineData("", "is not a MAC address")]
    [InlineData("52:54:00:12:34", "is not a MAC address")]
    [InlineData("52:54:00:12:34:5g", "is not a MAC address")]
    [InlineData("52:54-00:12:34:56", "is not a MAC address")]
    [InlineData("5254:0012:3456", "is not a MAC address")]
    [InlineData("52:54:00:12:34:56:78", "is not a MAC address")]
    [InlineData("ff:ff:ff:ff:ff:ff", "group (multicast or broadcast) address")]
    [InlineData("01:00:5e:00:00:01", "group (multicast or broadcast) address")]
    [InlineData("00:00:00:00:00:00", "is not a network card's address")]
    public void Normalise_WhatNoCardHas_IsRefusedWithASentence(string text, string says)
    {
        Assert.Null(MacAddress.Normalise(text, out var error));
        Assert.Contains(says, error);
    }

    [Fact]
    public void Check_EveryErrorAtOnce()
    {
        var (mac, errors) = MachineRules.Check(new MachineAddRequest("nope", "Bad_Name", "rack 1", new Dictionary<string, string> { ["k k"] = "v" }));

        Assert.Null(mac);
        Assert.Equal(4, errors.Count);
        Assert.Contains(errors, e => e.StartsWith("'nope' is not a MAC address", StringComparison.Ordinal));
        Assert.Contains(errors, e => e.StartsWith("machine name: 'Bad_Name' is not a node name", StringComparison.Ordinal));
        Assert.Contains(errors, e => e.StartsWith("fault domain 'rack 1'", StringComparison.Ordinal));
        Assert.Contains(errors, e => e.StartsWith("label key 'k k'", StringComparison.Ordinal));
    }

    [Fact]
    public void Check_AGoodRequest_GivesTheNormalMac()
    {
        var (mac, errors) = MachineRules.Check(new MachineAddRequest("52-54-00-AA-BB-CC", "m1", "rack-1", new Dictionary<string, string> { ["disk"] = "ssd" }));

        Assert.Equal("52:54:00:aa:bb:cc", mac);
        Assert.Empty(errors);
    }

    [Fact]
    public void Decide_UnknownRegisteredAndEnrolled_GetNoImageInstallAndBootLocal()
    {
        Assert.Equal(BootAction.NoImage, BootDecisions.Decide("52:54:00:00:00:01", null, false).Action);
        Assert.Equal(BootAction.Install, BootDecisions.Decide("52:54:00:00:00:01", "m1", false).Action);
        var (action, message) = BootDecisions.Decide("52:54:00:00:00:01", "m1", true);
        Assert.Equal(BootAction.BootLocal, action);
        Assert.Contains("nothing to install", message);
    }

    [Fact]
    public void Decide_AnEnrolledDisklessMachine_GetsItsImageAgainOnlyOnceItsNodeHasGoneSilent()
    {
        var within = TimeSpan.FromSeconds(5);

        var alive = BootDecisions.Decide("52:54:00:00:00:01", "m1", true, "img-1", TimeSpan.FromSeconds(1), within);
        var silent = BootDecisions.Decide("52:54:00:00:00:01", "m1", true, "img-1", TimeSpan.FromSeconds(6), within);
        var neverHeard = BootDecisions.Decide("52:54:00:00:00:01", "m1", true, "img-1", null, within);
        var installed = BootDecisions.Decide("52:54:00:00:00:01", "m1", true, null, TimeSpan.FromSeconds(60), within);

        Assert.Equal(BootAction.TryLater, alive.Action);
        Assert.Contains("heard from 1.0 s ago", alive.Message);
        Assert.Equal((BootAction.Install, BootAction.Install, BootAction.BootLocal), (silent.Action, neverHeard.Action, installed.Action));
        Assert.Contains("enrols node m1 again", silent.Message);
    }

    [Fact]
    public void TryTake_AFlood_IsOneEventPerKeyAndAtMostTheBurst_AndTellsWhatWasHeldBack()
    {
        var throttle = new EventThrottle(TimeSpan.FromMinutes(10), burst: 3, window: TimeSpan.FromMinutes(1));
        var start = new DateTimeOffset(2026, 12, 5, 0, 0, 0, TimeSpan.Zero);

        var first = Enumerable.Range(0, 100).Count(i => throttle.TryTake("aa", start, out _));
        var many = Enumerable.Range(0, 100).Count(i => throttle.TryTake($"k{i}", start.AddSeconds(1), out _));
        var later = throttle.TryTake("aa", start.AddMinutes(11), out var heldBack);

        Assert.Equal(1, first);
        Assert.Equal(2, many);
        Assert.True(later);
        Assert.Equal(98L, heldBack); // the 99 of the first key were told with the first event of the second minute
    }

    [Fact]
    public void TryTake_MoreKeysThanRemembered_HoldsBackInsteadOfGrowing()
    {
        var throttle = new EventThrottle(TimeSpan.FromMinutes(10), burst: 1000, window: TimeSpan.FromSeconds(1), maxKeys: 10);
        var now = DateTimeOffset.UnixEpoch;

        Assert.Equal(10, Enumerable.Range(0, 50).Count(i => throttle.TryTake($"k{i}", now, out _)));
        Assert.True(throttle.TryTake("late", now.AddMinutes(10), out _));
    }

    private static TokenRecord Join(string? machine) => new("id", "hash", TokenKinds.Join, null, DateTimeOffset.UnixEpoch, null, 1, false, null, machine);

    [Fact]
    public void Refusal_AMachinesJoinString_EnrolsItsNameOnly_AndAMachinesNameNeedsIt()
    {
        Assert.Null(MachineEnrolment.Refusal(Join("m1"), "m1", nodeIsARegisteredMachine: true));
        Assert.Contains("enrols node m1 only", MachineEnrolment.Refusal(Join("m1"), "m2", nodeIsARegisteredMachine: false));
        Assert.Contains("is a registered machine's", MachineEnrolment.Refusal(Join(null), "m1", nodeIsARegisteredMachine: true));
        Assert.Null(MachineEnrolment.Refusal(Join(null), "n1", nodeIsARegisteredMachine: false));
    }

    [Fact]
    public void Placement_AMachinesFaultDomainAndLabels_WinOverTheAgents()
    {
        var machine = new MachineRecord("m1", "52:54:00:00:00:01", "rack-2", new Dictionary<string, string> { ["disk"] = "ssd" }, DateTimeOffset.UnixEpoch);

        var (fd, labels) = MachineEnrolment.Placement(machine, "fd1", new Dictionary<string, string> { ["disk"] = "hdd", ["zone"] = "a" });
        var (agentFd, _) = MachineEnrolment.Placement(null, "fd1", new Dictionary<string, string>());

        Assert.Equal("rack-2", fd);
        Assert.Equal(new Dictionary<string, string> { ["disk"] = "ssd", ["zone"] = "a" }, labels);
        Assert.Equal("fd1", agentFd);
    }
}
