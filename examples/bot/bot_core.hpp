// The bot example's entry point: bot::config and bot::run(); includes the units its tests use on their own.
#pragma once

#include "latency_histogram.hpp"
#include "member_roster.hpp"
#include "rate_limiter.hpp"
#include "snowflake.hpp"

#include <dbactor/options.hpp>

#include <cstddef>
#include <cstdint>
#include <iosfwd>
#include <string>

namespace bot {

/// How one run of the bot is set up (the command line of dbactor-bot maps onto this).
struct config
{
    std::string db_path = "var/bot.db";
    unsigned guilds = 1000;
    double events_per_sec = 1000;
    /// Seconds to run; 0 runs until SIGINT or SIGTERM.
    double duration_s = 10;
    /// Threads running the io_context; 0 = one per core.
    unsigned threads = 0;
    /// Seeds the simulated gateway; the same seed gives the same guild ids on every run.
    std::uint64_t seed = 42;
    /// After closing, reopen the database and check that it holds exactly what the handlers wrote.
    bool self_check = false;
    /// Fault injection for the tests: every N-th iteration of the tempban sweep throws inside its request.
    unsigned fault_every = 0;
    /// What the injected fault throws: a std::runtime_error, or (false) a value of a type not derived from
    /// std::exception, which the loop's supervisor must catch too.
    bool fault_is_std = true;
    /// Seconds between the `[info] progress:` lines on stderr (0 = none).
    double progress_every_s = 5;
    /// Members the gateway remembers per guild (it picks authors among them); past it a new member replaces
    /// a quiet one, so a bot running for weeks does not grow with every join. The database keeps them all.
    std::size_t roster_cap = 512;
    /// Read-only connections serving async_read (dbactor::options::readers); 0 = reads share the writer.
    unsigned readers = 0;
    dbactor::synchronous_mode synchronous = dbactor::synchronous_mode::full;
    /// Who checkpoints the WAL (dbactor::options::checkpoints): the actor, or a replicator the bot runs under
    /// (`litestream replicate -exec "dbactor-bot --checkpoints external …"`, docs/SCALING.md).
    dbactor::checkpoint_mode checkpoints = dbactor::checkpoint_mode::actor;
};

/// Runs the bot until the duration elapses or a signal arrives; prints the summary to `out` and
/// diagnostics to stderr. Returns the process exit code (0 also after SIGINT/SIGTERM; 1 when the database
/// cannot be opened, a handler failed or the self-check found a difference).
int run(const config& cfg, std::ostream& out);

/// The bot's schema (migrations/bot), compiled in.
dbactor::migration_set schema();

} // namespace bot
