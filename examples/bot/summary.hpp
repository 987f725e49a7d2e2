// The bot's statistics and end of run: counters, loop reports, the printed summary, the self-check.
#pragma once

#include "bot_core.hpp"
#include "requests.hpp"

#include <dbactor/report.hpp>

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <iosfwd>
#include <string>
#include <vector>

namespace bot {

/// What the gateway emitted and the handlers did, counted from any thread.
struct counters
{
    std::atomic<std::uint64_t> emitted{0}, messages{0}, commands{0}, joins{0};
    std::atomic<std::uint64_t> handled{0}, failed{0}, rate_limited{0};
    std::atomic<std::uint64_t> xp_awarded{0}, warnings{0}, bans{0}, auto_bans{0}, games{0}, wins{0},
        ai_answers{0}, ranks{0}, settings_changed{0};
    std::atomic<std::uint64_t> lifted{0};
    // The settings cache (settings_cache.hpp), invalidated through the change feed.
    std::atomic<std::uint64_t> settings_hits{0}, settings_misses{0}, settings_invalidated{0}, feed_events{0};
    std::atomic<std::uint64_t> paused_ticks{0}; // gateway ticks skipped because too much was in flight
};

/// One background loop's iterations and failures.
struct loop_report
{
    std::string name;
    std::uint64_t iterations = 0;
    std::uint64_t failures = 0;
};

/// The rest of what the summary prints, collected from the service after its run.
struct run_report
{
    std::string stop_reason;
    /// From the gateway's start until the stop request.
    double running_s = 0;
    /// From the gateway's start until the last handler finished.
    double elapsed_s = 0;
    /// Handler latencies in microseconds.
    latency_histogram latencies;
    std::vector<loop_report> loops;
    std::size_t limiter_buckets_now = 0;
    std::size_t limiter_buckets_removed = 0;
    /// The database's figures, taken before the close.
    dbactor::stats_snapshot db_stats;
};

/// Prints the summary after the run: why and when it stopped, the gateway, the handlers, the loops, the
/// rate limiters and the database.
void print_summary(std::ostream& out, const counters& c, const run_report& r);

/// Compares the database after the run with what the handlers reported writing; prints `self-check: ok`
/// or one `self-check: FAILED` line per difference and returns whether it found none.
bool self_check(
    const config& cfg, const totals& before, std::int64_t guilds_added, const counters& c, std::ostream& out);

} // namespace bot
