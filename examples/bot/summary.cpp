// The bot's summary: the lines printed after the run, and the self-check against the database.
#include "summary.hpp"

#include "common.hpp"

#include <bot_migrations.hpp>

#include <dbactor/database.hpp>

#include <fmt/format.h>
#include <fmt/ostream.h>

#include <ostream>
#include <string_view>
#include <utility>

namespace bot {

namespace {

void print_lane(std::ostream& out, std::string_view name, const dbactor::lane_stats& l)
{
    fmt::print(out,
               "database {:<5}: {} requests ({} failed); queue wait p50 {} p99 {}; execution p50 {} p99 {}\n",
               name,
               l.completed,
               l.failed,
               ms(l.queue_wait.p50_ns),
               ms(l.queue_wait.p99_ns),
               ms(l.execution.p50_ns),
               ms(l.execution.p99_ns));
}

} // namespace

void print_summary(std::ostream& out, const counters& c, const run_report& r)
{
    const latency_histogram& lat = r.latencies;
    auto pct = [&](double p) -> double { return lat.percentile(p) / 1000.0; };
    const double secs = r.elapsed_s;
    fmt::print(out,
               "stopped: {} after {:.2f} s; in-flight handlers drained in {:.2f} s\n",
               r.stop_reason,
               r.running_s,
               secs - r.running_s);
    fmt::print(
        out,
        "gateway: emitted {} events (messages {}, commands {}, joins {}); paused {} ms for backpressure\n",
        c.emitted.load(),
        c.messages.load(),
        c.commands.load(),
        c.joins.load(),
        c.paused_ticks.load() * 10);
    fmt::print(
        out,
        "handled: {} events ({} failed), {:.0f} events/s; handler latency p50 {:.3f} ms p99 {:.3f} ms\n",
        c.handled.load(),
        c.failed.load(),
        secs > 0 ? static_cast<double>(c.handled.load()) / secs : 0.0,
        pct(0.50),
        pct(0.99));
    fmt::print(out,
               "outcomes: xp +{}, warnings {}, tempbans {} ({} from warnings, {} lifted by the sweep), word "
               "games {} "
               "({} won), ai answers {}, ranks {}, settings changes {}, rate limited {}\n",
               c.xp_awarded.load(),
               c.warnings.load(),
               c.bans.load(),
               c.auto_bans.load(),
               c.lifted.load(),
               c.games.load(),
               c.wins.load(),
               c.ai_answers.load(),
               c.ranks.load(),
               c.settings_changed.load(),
               c.rate_limited.load());
    const auto lookups = c.settings_hits.load() + c.settings_misses.load();
    fmt::print(
        out,
        "settings cache: {} hits, {} misses (hit rate {:.1f}%), {} entries invalidated by {} change-feed "
        "events\n",
        c.settings_hits.load(),
        c.settings_misses.load(),
        lookups ? 100.0 * static_cast<double>(c.settings_hits.load()) / static_cast<double>(lookups) : 0.0,
        c.settings_invalidated.load(),
        c.feed_events.load());
    for (const auto& l : r.loops)
        fmt::print(out, "loop {}: {} iterations, {} failed\n", l.name, l.iterations, l.failures);
    fmt::print(out,
               "rate limiters: {} buckets now, {} empty buckets cleaned up\n",
               r.limiter_buckets_now,
               r.limiter_buckets_removed);
    const auto& st = r.db_stats;
    print_lane(out, "write", st.write);
    print_lane(out, "read", st.read);
    fmt::print(out,
               "database batches: {} write transactions, {:.2f} writes per transaction (max {}); queue depth "
               "max {}\n",
               st.write_batches,
               st.write_batch_mean,
               st.write_batch_max,
               st.queue_depth_max);
    out.flush();
}

bool self_check(
    const config& cfg, const totals& before, std::int64_t guilds_added, const counters& c, std::ostream& out)
{
    dbactor::options o;
    o.path = cfg.db_path;
    o.create = false;
    o.migrations = bot_migrations();
    o.checkpoints = cfg.checkpoints; // under a replicator the check must not checkpoint at its close either
    auto db = dbactor::database::open(std::move(o));
    const totals after = db.read(read_totals{});
    const auto fk = db.read([](dbactor::connection& conn) {
        return conn.query<std::string>("SELECT \"table\" FROM pragma_foreign_key_check");
    });
    db.close();

    std::vector<std::string> problems;
    auto expect = [&](std::string_view what, std::int64_t got, std::int64_t want) {
        if (got != want)
            problems.push_back(fmt::format("{}: the database says {}, the handlers say {}", what, got, want));
    };
    expect("events handled vs emitted",
           static_cast<std::int64_t>(c.handled),
           static_cast<std::int64_t>(c.emitted));
    expect("failed handlers", static_cast<std::int64_t>(c.failed), 0);
    expect("new guilds", after.guilds - before.guilds, guilds_added);
    expect("new members", after.members - before.members, static_cast<std::int64_t>(c.joins));
    expect("messages", after.messages - before.messages, static_cast<std::int64_t>(c.messages));
    expect("xp", after.xp - before.xp, static_cast<std::int64_t>(c.xp_awarded));
    expect("warnings", after.warnings - before.warnings, static_cast<std::int64_t>(c.warnings));
    expect("bans", after.bans - before.bans, static_cast<std::int64_t>(c.bans));
    expect("active tempbans vs unlifted bans", after.active_bans, after.unlifted);
    expect("word games", after.games - before.games, static_cast<std::int64_t>(c.games));
    expect("foreign key violations", static_cast<std::int64_t>(fk.size()), 0);
    expect("schema version", after.schema_version, bot_migrations().latest_version());
    if (problems.empty()) {
        fmt::print(out,
                   "self-check: ok (members +{}, messages +{}, xp +{}, warnings +{}, bans +{}, games +{}, "
                   "{} tempbans active)\n",
                   after.members - before.members,
                   after.messages - before.messages,
                   after.xp - before.xp,
                   after.warnings - before.warnings,
                   after.bans - before.bans,
                   after.games - before.games,
                   after.active_bans);
        return true;
    }
    for (auto& p : problems)
        fmt::print(out, "self-check: FAILED: {}\n", p);
    return false;
}

} // namespace bot
