using CrossStoreSync.Log;
using CrossStoreSync.Model;
using CrossStoreSync.Retention;
using CrossStoreSync.Telemetry;
using CrossStoreSync.Testing.Log;
using CrossStoreSync.Tests.Support;
using FsCheck;
using FsCheck.Fluent;
using Microsoft.Extensions.DependencyInjection;

namespace CrossStoreSync.Tests.Retention;

public sealed class RetentionPropertyTests
{
    private static readonly RetentionHolderKind[] Kinds = [RetentionHolderKind.Store, RetentionHolderKind.Migration, RetentionHolderKind.Pending, RetentionHolderKind.Holder];

    [Fact]
    public void Truncation_never_removes_an_entry_a_cursor_migration_or_holder_still_needs()
    {
        var positionGen = Gen.Choose(0, 5).Zip(Gen.Choose(-20, 320)).Select(t => (Kind: Kinds[t.Item1 % Kinds.Length], Position: (long)t.Item2));
        var cases =
            from head in Gen.Choose(0, 300)
            from truncatedFraction in Gen.Choose(0, 100)
            from ageFraction in Gen.Choose(0, 110)
            from positions in Gen.ArrayOf(positionGen)
            from cap in Gen.Choose(0, 400)
            from capped in Gen.Elements(true, false)
            from batch in Gen.Choose(1, 64)
            select (head, truncatedFraction, ageFraction, positions, cap, capped, batch);

        Prop.ForAll(Arb.From(cases), c =>
        {
            var log = new InMemoryChangeLog();
            if (c.head > 0)
            {
                log.AppendAsync([.. Enumerable.Range(0, c.head).Select(i => EntityChange.Delete(Items.Key("k" + (i % 17)), new HlcTimestamp(1_000 + i)))], LogEntryState.Committed, CancellationToken.None).AsTask().GetAwaiter().GetResult();
            }

            var holders = c.positions.Select((p, i) => new RetentionPosition($"h{i}", p.Kind, p.Position)).ToArray();

            // A log already truncated by an earlier round, never past what the current holders need (positions only move forward).
            var lowest = holders.Length == 0 ? c.head : Math.Clamp(holders.Min(h => h.Position), 0, c.head);
            var truncated = lowest * c.truncatedFraction / 100;
            Truncate(log, truncated, c.batch);
            var ageBound = Math.Min(c.head, c.head * c.ageFraction / 100);
            long? cap = c.capped ? c.cap : null;

            var plan = RetentionPlanner.Plan(c.head, truncated, ageBound, holders, cap);
            var through = Truncate(log, plan.TruncateThrough, c.batch);

            // Every holder that is not cut off still finds every entry after its position.
            foreach (var holder in holders.Where(h => !plan.CutOff.Contains(h)))
            {
                var position = Math.Clamp(holder.Position, 0, c.head);
                Assert.True(through <= position, $"{holder} needs entries after {position}, but the log is truncated through {through}.");
                var read = new List<LogRecord>();
                log.ReadCommittedAsync(position, int.MaxValue, read, CancellationToken.None).AsTask().GetAwaiter().GetResult();
                Assert.Equal(Enumerable.Range((int)position + 1, (int)(c.head - position)).Select(i => (long)i), read.Select(r => r.Lsn));
            }

            // Only stores are ever cut off, only under a cap, and only when beyond it and older than KeepAppliedFor.
            foreach (var cut in plan.CutOff)
            {
                Assert.Equal(RetentionHolderKind.Store, cut.Kind);
                Assert.NotNull(cap);
                Assert.True(cut.Position < c.head - cap && cut.Position < ageBound, $"{cut} was cut off with head {c.head}, cap {cap}, age bound {ageBound}.");
            }

            // Nothing younger than KeepAppliedFor goes unless the cap demands it; and what may go does go.
            var byAge = cap is { } limit ? Math.Max(ageBound, c.head - limit) : ageBound;
            Assert.True(through <= Math.Max(truncated, byAge));
            Assert.Equal(Math.Max(truncated, Math.Min(plan.LowWaterMark, byAge)), through);
            Assert.Equal(c.head, log.GetLastLsnAsync(CancellationToken.None).AsTask().GetAwaiter().GetResult());
            Assert.Equal(c.head - through, log.Retained);
        }).QuickCheckThrowOnFailure();
    }

    [Fact]
    public async Task Rounds_over_a_running_engine_never_truncate_past_a_durable_cursor_migration_or_holder()
    {
        // Random workloads through the real engine and retention task: replicas go down and up, a holder moves, time
        // passes. After every round, nothing a non-cut store's durable cursor or the holder needs is gone.
        var step = Gen.Choose(0, 5).Zip(Gen.Choose(1, 40));
        var scenarios = Gen.Sample(Gen.Choose(4, 14).SelectMany(n => Gen.ArrayOf(step, n)), 50, 12);
        foreach (var scenario in scenarios)
        {
            try
            {
                await RunScenarioAsync(scenario);
            }
            catch (Exception ex) when (ex is Xunit.Sdk.XunitException)
            {
                throw new Xunit.Sdk.XunitException($"Scenario [{string.Join(", ", scenario.Select(s => $"({s.Item1},{s.Item2})"))}] failed: {ex.Message}");
            }
        }
    }

    private static async Task RunScenarioAsync((int, int)[] scenario)
    {
        // Registered from the start, holding everything (a peer that has acknowledged nothing yet).
        var holder = new SettableHolder("peer") { Position = 0 };
        var (engine, time, retention) = await RetentionSupport.StartAsync(
            o =>
            {
                o.DispatchBatchSize = 8;
                o.Retention.MaxRetainedEntries = 40;
            },
            s => s.AddSingleton<ILogRetentionHolder>(holder));
        await using (engine)
        {
            var written = 0;
            foreach (var (op, n) in scenario)
            {
                switch (op)
                {
                    case 0:
                    case 1:
                        var last = default(CrossStoreSync.Sync.SyncTicket);
                        for (var i = 0; i < n; i++)
                        {
                            last = await engine.Manager.WriteAsync(Items.Entity("k" + (written++ % 23), written));
                        }

                        await engine.WaitForReplicaAsync("graph", last.Lsns.Last);
                        break;
                    case 2:
                        engine.VectorFaults.GoDown();
                        break;
                    case 3:
                        engine.VectorFaults.ComeBack();
                        break;
                    case 4:
                        // A holder's position only moves forward, like a cursor.
                        holder.Position = Math.Max(holder.Position ?? 0, engine.Log.Count - n);
                        break;
                    default:
                        time.Advance(TimeSpan.FromSeconds(n * 5));
                        break;
                }

                await retention.RoundAsync();
                await AssertNothingNeededIsGoneAsync(engine, holder);
            }

            engine.VectorFaults.ComeBack();
        }
    }

    private static async Task AssertNothingNeededIsGoneAsync(TestEngine engine, SettableHolder holder)
    {
        var log = engine.Log;
        var through = await log.GetTruncatedThroughAsync(CancellationToken.None);
        var head = await log.GetLastLsnAsync(CancellationToken.None);
        Assert.Equal(head - through, log.Retained);
        foreach (var dispatcher in engine.Engine.Dispatchers)
        {
            if (dispatcher.NeedsRebuild)
            {
                // Cut off past the cap: it no longer holds the log; its rebuild will.
                continue;
            }

            var cursor = await log.GetCursorAsync(dispatcher.Name, CancellationToken.None);
            Assert.True(through <= cursor, $"Store {dispatcher.Name} (durable cursor {cursor}) lost entries: the log is truncated through {through}.");
        }

        if (holder.Position is { } position)
        {
            Assert.True(through <= position, $"The holder needs entries after {position}; the log is truncated through {through}.");
        }
    }

    private static long Truncate(InMemoryChangeLog log, long through, int batch)
    {
        var result = log.GetTruncatedThroughAsync(CancellationToken.None).AsTask().GetAwaiter().GetResult();
        while (result < through)
        {
            var step = log.TruncateAsync(through, batch, CancellationToken.None).AsTask().GetAwaiter().GetResult();
            result = step.TruncatedThrough;
            if (step.Removed == 0)
            {
                break;
            }
        }

        return result;
    }
}
