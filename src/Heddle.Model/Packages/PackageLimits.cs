namespace Heddle.Model.Packages;

/// <summary>Bounds on what reading a package may cost. The defaults suit real services and stop hostile archives.</summary>
public sealed record PackageLimits
{
    public static PackageLimits Default { get; } = new();

    /// <summary>All files together, unpacked. Default 1 GiB.</summary>
    public long MaxUnpackedBytes { get; init; } = 1L << 30;

    /// <summary>One file, unpacked. Default 1 GiB.</summary>
    public long MaxEntryBytes { get; init; } = 1L << 30;

    /// <summary>Default 100,000.</summary>
    public int MaxEntries { get; init; } = 100_000;

    /// <summary>
    /// Unpacked size over compressed size above which an entry is taken for a zip bomb. Real files rarely pass
    /// 50:1; deflate's ceiling is about 1032:1. Only checked for entries above <see cref="RatioCheckMinBytes"/>.
    /// </summary>
    public double MaxCompressionRatio { get; init; } = 200;

    public long RatioCheckMinBytes { get; init; } = 1L << 20;
}
