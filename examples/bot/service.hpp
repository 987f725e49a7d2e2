// bot::bot_service: the bot's lifecycle on one io_context: startup, the gateway, handlers, loops, shutdown.
#pragma once

#include "bot_core.hpp"
#include "common.hpp"
#include "gateway.hpp"
#include "handlers.hpp"
#include "in_flight.hpp"
#include "loops.hpp"
#include "requests.hpp"
#include "settings_cache.hpp"
#include "summary.hpp"

#include <dbactor/database.hpp>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace bot {

/// The bot: the gateway on the control strand, each guild's handlers on its shard's strand, the
/// supervised loops, and a graceful stop on SIGINT, SIGTERM or when the duration elapses.
/// Thread safety: construct, run() and read the results from one thread; run() runs the io_context's.
class bot_service
{
public:
    bot_service(const config& cfg, dbactor::database db, unsigned threads);

    /// Runs everything on the io_context's threads; returns when the shutdown is complete.
    void run();

    const counters& count() const { return counters_; }
    /// What the summary prints besides the counters (call after run()).
    run_report report();
    const totals& before() const { return before_; }
    bool close_failed() const { return close_failed_; }
    bool startup_failed() const { return startup_failed_; }
    std::int64_t guilds_added() const { return guilds_added_; }

private:
    shard& shard_of(std::uint64_t guild) { return *shards_[(guild >> 22) % shards_.size()]; }

    // Everything below runs on control_, except emit's handlers (on their shard's strand).
    asio::awaitable<void> main_task();
    asio::awaitable<void> shutdown();
    void request_stop(std::string reason);
    asio::awaitable<void> run_gateway();
    /// Applies each change-feed event on guild_settings to the settings cache, until the feed closes.
    asio::awaitable<void> follow_settings();
    void emit(event ev);

    asio::awaitable<void> sweep_tempbans(std::uint64_t iteration);
    asio::awaitable<void> cleanup_limiters();
    asio::awaitable<void> report_progress(std::uint64_t iteration);

    const config& cfg_;
    dbactor::database db_;
    unsigned threads_;
    asio::io_context ioc_;
    io_strand control_;
    asio::signal_set signals_;
    asio::steady_timer stop_timer_, duration_timer_;

    counters counters_;
    in_flight_tracker in_flight_;
    // Touched on control_ only, except stopping_, which handlers' completions may read elsewhere.
    bool stop_requested_ = false, close_failed_ = false, startup_failed_ = false;
    std::atomic<bool> stopping_{false};

    gateway gateway_;
    supervised_loops loops_;
    settings_cache settings_;
    dbactor::change_feed settings_feed_; // guild_settings' commits, for settings_ (control_ only)
    event_handlers handlers_;
    std::vector<std::unique_ptr<shard>> shards_;
    std::atomic<std::size_t> buckets_removed_{0};

    std::int64_t guilds_added_ = 0;
    std::string stop_reason_;
    steady::time_point started_;
    double elapsed_s_ = 0, running_s_ = 0;
    totals before_;
    dbactor::stats_snapshot stats_;
};

} // namespace bot
