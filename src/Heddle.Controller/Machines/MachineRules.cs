using Heddle.Contracts.Api;
using Heddle.Contracts.Machines;
using Heddle.Controller.Trust;

namespace Heddle.Controller.Machines;

/// <summary>
/// What a machine registration must be: a card's own MAC, a node name, a fault domain, labels and a host image name that can stand on a
/// kernel command line and in a certificate. Pure: every error at once, each a sentence.
/// </summary>
public static class MachineRules
{
    public const int MaxLabels = 32;

    /// <summary>The request's MAC in normal form and every error found (none: the request is good).</summary>
    public static (string? Mac, IReadOnlyList<string> Errors) Check(MachineAddRequest request)
    {
        var errors = new List<string>();
        var mac = MacAddress.Normalise(request.Mac, out var macError);
        if (macError is not null)
        {
            errors.Add(macError);
        }

        if (NodeCertificates.NameError(request.Name ?? string.Empty) is { } nameError)
        {
            errors.Add($"machine name: {nameError}");
        }

        if (FaultDomainError(request.FaultDomain) is { } fdError)
        {
            errors.Add(fdError);
        }

        if (request.HostImage is not null && HostImages.HostImageRules.NameError(request.HostImage) is { } imageError)
        {
            errors.Add($"host image: {imageError}");
        }

        var labels = request.Labels ?? new Dictionary<string, string>();
        if (labels.Count > MaxLabels)
        {
            errors.Add($"{labels.Count} labels: at most {MaxLabels}");
        }

        foreach (var (key, value) in labels.Take(MaxLabels))
        {
            if (!IsWord(key, 63, slash: true))
            {
                errors.Add($"label key '{Printable.Of(key)}': use 1 to 63 letters, digits and '-', '_', '.', '/'");
            }

            if (!IsWord(value, 63, slash: true) && value.Length != 0)
            {
                errors.Add($"label {Printable.Of(key)}'s value '{Printable.Of(value)}': use at most 63 letters, digits and '-', '_', '.', '/'");
            }
        }

        return (errors.Count == 0 ? mac : null, errors);
    }

    /// <summary>Why a fault domain cannot be one, or null.</summary>
    public static string? FaultDomainError(string? faultDomain) => IsWord(faultDomain, 63, slash: false)
        ? null
        : $"fault domain '{Printable.Of(faultDomain ?? string.Empty)}': use 1 to 63 letters, digits and '-', '_', '.' (e.g. rack-1)";

    private static bool IsWord(string? text, int max, bool slash) =>
        text is { Length: > 0 } && text.Length <= max && text.All(c => char.IsAsciiLetterOrDigit(c) || c is '-' or '_' or '.' || (slash && c == '/'));
}
