namespace Heddle.Controller.Leadership;

/// <summary>
/// A term of leadership: who leads, and a number that grows with each new term. <paramref name="FenceKey"/> is the
/// store key that exists exactly while the term holds (etcd's election key, made at revision <paramref name="Term"/>):
/// the leader's writes are conditional on it, so a write from a term that has ended is refused by the store itself.
/// </summary>
public sealed record Leadership(string Holder, long Term, string? FenceKey = null)
{
    /// <summary>The leader acts again in a term it had stopped acting in while its lease was unconfirmed (no new election).</summary>
    public bool Again { get; init; }
}

/// <summary>The term this controller leads in now, or null while it follows.</summary>
public sealed class LeaderTerm
{
    /// <summary>How this controller's cluster chooses its leader (set when the controller starts campaigning).</summary>
    public ILeaderElection? Election { get; set; }

    private volatile Leadership? _current;

    public Leadership? Current
    {
        get => _current;
        set => _current = value;
    }

    /// <summary>
    /// The term as a condition of a write (the leader key at the revision that made this controller leader): a write
    /// the leader makes fails once another controller leads. Null while following, and with the embedded store's one controller.
    /// </summary>
    public (string Key, long Revision)? Fence => Current is { FenceKey: { } key } leading ? (key, leading.Term) : null;
}

/// <summary>
/// Who among the controllers runs the reconcilers, node health and upgrade walks. <see cref="RunAsync"/> campaigns,
/// runs <c>lead</c> while this controller leads, and campaigns again when it stops leading; the token given to
/// <c>lead</c> is cancelled as soon as leadership may be lost, before another controller can have been elected. When the
/// term turns out to have held, <c>lead</c> runs again in it (<see cref="Leadership.Again"/>).
/// </summary>
public interface ILeaderElection
{
    Task RunAsync(Func<Leadership, CancellationToken, Task> lead, CancellationToken cancellationToken);

    /// <summary>The holder of the current term, or null while there is none.</summary>
    Task<string?> LeaderAsync(CancellationToken cancellationToken = default);
}

/// <summary>One controller on its own (the SQLite store): it leads from the start, for as long as it runs.</summary>
public sealed class SoleLeader(string holder) : ILeaderElection
{
    public Task RunAsync(Func<Leadership, CancellationToken, Task> lead, CancellationToken cancellationToken) => lead(new Leadership(holder, 1), cancellationToken);

    public Task<string?> LeaderAsync(CancellationToken cancellationToken = default) => Task.FromResult<string?>(holder);
}
