using System.Diagnostics;

namespace Heddle.Testing;

/// <summary>Waiting for something in a test: poll with a deadline, never sleep a fixed time and hope.</summary>
public static class Poll
{
    public static async Task<T> UntilAsync<T>(Func<Task<T>> probe, Func<T, bool> done, TimeSpan deadline, string what, TimeSpan? every = null)
    {
        var clock = Stopwatch.StartNew();
        var last = default(T);
        Exception? lastError = null;
        while (clock.Elapsed < deadline)
        {
            try
            {
                last = await probe();
                if (done(last))
                {
                    return last;
                }
            }
            catch (Exception e) when (e is not OutOfMemoryException)
            {
                lastError = e;
            }

            await Task.Delay(every ?? TimeSpan.FromMilliseconds(50));
        }

        throw new TimeoutException($"{what} did not happen within {deadline.TotalSeconds:0.#} s; last seen: {Describe(last)}{(lastError is null ? string.Empty : $"; last error: {lastError.Message}")}");
    }

    public static Task UntilAsync(Func<bool> done, TimeSpan deadline, string what) =>
        UntilAsync(() => Task.FromResult(done()), d => d, deadline, what);

    private static string Describe<T>(T? value) => value switch
    {
        null => "nothing",
        System.Collections.IEnumerable list and not string => string.Join("; ", list.Cast<object>()),
        _ => value.ToString() ?? string.Empty,
    };
}
