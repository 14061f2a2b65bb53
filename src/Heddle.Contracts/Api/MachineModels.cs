namespace Heddle.Contracts.Api;

/// <summary>
/// POST /v1/machines: a machine the controller will hand a host image when it network-boots (admin only): the one named
/// by <see cref="HostImage"/> (`heddle hostimage list`), or when none is named, the kernel and initramfs `heddle boot` was given.
/// </summary>
public sealed record MachineAddRequest(string Mac, string Name, string FaultDomain, IReadOnlyDictionary<string, string>? Labels = null, string? HostImage = null);

/// <summary>PUT /v1/machines/{name}/hostimage: the host image the machine boots from its next boot on.</summary>
public sealed record MachineHostImageRequest(string HostImage);

/// <summary>Where a machine is on its way to being a node.</summary>
public enum MachineState
{
    /// <summary>Registered; it has not asked to boot since.</summary>
    Registered,

    /// <summary>It asked to boot and was given a join string, not used yet.</summary>
    JoinIssued,

    /// <summary>A node of its name holds a certificate in force.</summary>
    Enrolled,
}

/// <summary>A machine as `heddle machine list` shows it. Never carries a join string.</summary>
public sealed record MachineStatus(string Name, string Mac, string FaultDomain, IReadOnlyDictionary<string, string> Labels, DateTimeOffset Created, MachineState State, DateTimeOffset? LastBoot,
    string? HostImage = null);

/// <summary>POST /v1/boot/decisions: the boot service asks what a network card that asked for a boot script gets.</summary>
public sealed record BootRequest(string Mac);

/// <summary>What a booting machine gets.</summary>
public enum BootAction
{
    /// <summary>An unknown MAC: no image, no secret; the controller records an event (rate-limited).</summary>
    NoImage,

    /// <summary>A registered machine not yet a node: the host image, with a join string for it alone.</summary>
    Install,

    /// <summary>A registered machine whose node is enrolled: nothing to install; the firmware goes on to its next boot device.</summary>
    BootLocal,

    /// <summary>A registered machine that asked again too soon (a join string was issued to it moments ago): nothing this time; its firmware asks again.</summary>
    TryLater,
}

/// <summary>
/// The controller's answer for one boot: the action and, for <see cref="BootAction.Install"/>, the machine's name, fault
/// domain, a join string that enrols that node name once (short-lived; each boot that installs gets a new one, and the
/// previous one is revoked), the controllers' API URLs the agent is to use, and the host image the machine is set to boot
/// (null: the kernel and initramfs `heddle boot` was given).
/// </summary>
public sealed record BootDecision(BootAction Action, string Mac, string? Machine, string? FaultDomain, string? JoinString, IReadOnlyList<string> Controllers, string Message,
    BootImage? Image = null);

/// <summary>A host image as the boot service fetches it: GET /v1/boot/images/{sha256} for each part.</summary>
public sealed record BootImage(string Name, string KernelSha256, string InitrdSha256);

/// <summary>The two parts of a host image, each uploaded as a blob (PUT /v1/hostimages/blobs/{sha256}?part=) before the image is added.</summary>
public enum HostImagePart
{
    Kernel,
    Initrd,
}

/// <summary>A host image part stored (or already there).</summary>
public sealed record HostImageBlobUploaded(string Sha256, long Bytes, bool AlreadyPresent);

/// <summary>POST /v1/hostimages (admin only): a name for a kernel and an initramfs uploaded before.</summary>
public sealed record HostImageAddRequest(string Name, string KernelSha256, string InitrdSha256, string? KernelRelease = null);

/// <summary>A host image as `heddle hostimage list` shows it: its parts, the machines set to boot it and the nodes that say they run it.</summary>
public sealed record HostImageStatus(string Name, string KernelSha256, long KernelBytes, string InitrdSha256, long InitrdBytes, string? KernelRelease, DateTimeOffset Added,
    IReadOnlyList<string> Machines, IReadOnlyList<string> Nodes);

/// <summary>What POST /v1/hostimages did: the image, and whether it was there already with the same parts (nothing changed then).</summary>
public sealed record HostImageAdded(HostImageStatus Image, bool AlreadyPresent);

/// <summary>POST /v1/hostrollout (admin only): walk every machine on a host image to <see cref="Image"/>, <see cref="MaxParallel"/> nodes at a time.</summary>
public sealed record HostRolloutRequest(string Image, int MaxParallel = 1);

/// <summary>A host rollout as `heddle hostimage rollout status` shows it.</summary>
public sealed record HostRolloutStatus(string Image, int MaxParallel, string Phase, bool RollingBack, string? Reason, DateTimeOffset Started, DateTimeOffset? Finished,
    IReadOnlyList<HostRolloutNodeStatus> Nodes);

/// <summary>One node of a host rollout: its upgrade domain, where it is (Waiting, Draining, Rebooting, Gating, Done) and the image it runs now.</summary>
public sealed record HostRolloutNodeStatus(string Node, string Machine, string UpgradeDomain, string Stage, string? RunsImage, string? NodeCondition);
