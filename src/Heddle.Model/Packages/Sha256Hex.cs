using System.Security.Cryptography;

namespace Heddle.Model.Packages;

/// <summary>SHA-256 as lower-case hex, the form package ids and manifest hashes take.</summary>
public static class Sha256Hex
{
    public static string Of(Stream stream) => Convert.ToHexStringLower(SHA256.HashData(stream));

    public static string Of(ReadOnlySpan<byte> bytes) => Convert.ToHexStringLower(SHA256.HashData(bytes));

    public static bool IsValid(string text) => text.Length == 64 && text.All(c => c is >= '0' and <= '9' or >= 'a' and <= 'f');
}
