using System.Text;
using Heddle.Contracts.Api;

namespace Heddle.Controller.Boot;

/// <summary>
/// The iPXE script a booting card gets for the controller's decision. Pure. An install boots the host image's kernel with
/// the controllers' agent endpoints, the node name and its join string on the command line (what the host image's init
/// hands the agent); "try later" says why and chains to <c>retry</c>, which the boot service answers after a pause, so the
/// card keeps asking without the firmware's own long wait; anything else says why and exits, so the firmware goes on to
/// its next boot device.
/// </summary>
public static class IpxeScripts
{
    /// <summary>Seconds the boot service waits before answering a card that was told to try again.</summary>
    public const int RetryAfterSeconds = 3;

    public static string For(BootDecision decision, Uri kernel, Uri initrd, string? append, Uri? retry = null)
    {
        if (decision.Action == BootAction.TryLater && retry is not null)
        {
            return Retry(decision.Message, retry);
        }

        var script = new StringBuilder("#!ipxe\n");
        script.Append("echo heddle: ").Append(Echo(decision.Message)).Append('\n');
        if (decision.Action != BootAction.Install || decision.JoinString is null || decision.Machine is null)
        {
            return script.Append("exit 1\n").ToString();
        }

        var arguments = new List<string>();
        if (!string.IsNullOrWhiteSpace(append))
        {
            arguments.Add(append.Trim());
        }

        arguments.Add($"heddle.controller={string.Join(',', decision.Controllers)}");
        arguments.Add($"heddle.node={decision.Machine}");
        arguments.Add($"heddle.fault-domain={decision.FaultDomain}");
        arguments.Add($"heddle.join={decision.JoinString}");
        script.Append("kernel ").Append(kernel).Append(' ').Append(string.Join(' ', arguments)).Append('\n');
        script.Append("initrd ").Append(initrd).Append('\n');
        script.Append("boot\n");
        return script.ToString();
    }

    /// <summary>Says why, then asks <paramref name="retry"/> (this card's script again, answered after a pause) in place of this script.</summary>
    public static string Retry(string why, Uri retry) => $"#!ipxe\necho heddle: {Echo(why)}\nchain --replace --autofree {retry}\n";

    /// <summary>This card's script URL on the boot service at <paramref name="self"/>, answered after <see cref="RetryAfterSeconds"/>.</summary>
    public static Uri RetryUrl(Uri self, string mac) => new(self, $"boot/ipxe?mac={Uri.EscapeDataString(mac)}&after={RetryAfterSeconds}");

    /// <summary>Why extra kernel arguments cannot go into a script, or null: one line, no iPXE settings (<c>${...}</c>).</summary>
    public static string? AppendError(string? append) =>
        append is not null && (append.Any(char.IsControl) || append.Contains('$', StringComparison.Ordinal))
            ? "--append: kernel arguments must be one line without '$' (iPXE would expand it)"
            : null;

    /// <summary>A message on one line of an iPXE script: no control characters, no settings to expand.</summary>
    private static string Echo(string message) => new([.. message.Select(c => char.IsControl(c) || c == '$' ? '?' : c)]);
}
