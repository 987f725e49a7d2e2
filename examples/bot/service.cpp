// The bot's lifecycle: startup, the stop triggers, the loops' bodies, the gateway's hand-off, shutdown.
#include "service.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <exception>
#include <thread>
#include <utility>

namespace bot {

using namespace std::chrono_literals;
using asio::use_awaitable;

bot_service::bot_service(const config& cfg, dbactor::database db, unsigned threads)
    : cfg_(cfg), db_(std::move(db)), threads_(threads), ioc_(static_cast<int>(threads)),
      control_(asio::make_strand(ioc_)), signals_(control_, SIGINT, SIGTERM), stop_timer_(control_),
      duration_timer_(control_), in_flight_(control_), gateway_(cfg, control_, counters_, in_flight_),
      loops_(control_, stopping_, in_flight_), settings_(counters_),
      handlers_(db_, counters_, in_flight_, settings_)
{
    // From here on the signal_set owns SIGINT and SIGTERM; run() (bot::run) unblocks them only now, so
    // one that arrived while the database was booting is delivered to it rather than killing the process.
    // Per-guild state lives in shards, each owned by one strand: handlers of guilds on different shards
    // run in parallel, handlers of one guild never race, and no lock guards the guild state.
    const std::size_t n = std::max<std::size_t>(threads * 8, 8);
    for (std::size_t i = 0; i < n; ++i)
        shards_.push_back(std::make_unique<shard>(asio::make_strand(ioc_)));
}

void bot_service::run()
{
    asio::co_spawn(control_, main_task(), [this](std::exception_ptr e) {
        if (!e)
            return;
        startup_failed_ = true;
        log("error", fmt::format("the bot's main task failed: {}", describe(e)));
    });
    std::vector<std::thread> pool;
    for (unsigned i = 1; i < threads_; ++i)
        pool.emplace_back([this] { ioc_.run(); });
    ioc_.run();
    for (auto& t : pool)
        t.join();
}

run_report bot_service::report()
{
    run_report r;
    r.stop_reason = stop_reason_;
    r.running_s = running_s_;
    r.elapsed_s = elapsed_s_;
    // Handler latencies in microseconds, merged from every shard.
    for (auto& s : shards_)
        r.latencies.merge(s->latencies_us);
    r.loops = loops_.reports();
    r.limiter_buckets_now = handlers_.limiter_buckets();
    r.limiter_buckets_removed = buckets_removed_.load();
    r.db_stats = stats_;
    return r;
}

asio::awaitable<void> bot_service::main_task()
{
    static const dbactor::request_options register_ro{.name = "register_guilds"};
    static const dbactor::request_options totals_ro{.name = "read_totals"};
    try {
        // Before any command reads settings: the cache is only as good as the feed behind it.
        settings_feed_ = db_.subscribe({.tables = {"guild_settings"}});
        auto snapshot = read_totals{};
        before_ = co_await db_.async_read(snapshot, totals_ro, use_awaitable);
        auto registered = register_guilds{gateway_.guild_ids(), unix_ms()};
        guilds_added_ = co_await db_.async_write(registered, register_ro, use_awaitable);
    }
    catch (...) {
        log("error", fmt::format("cannot start: {}", describe(std::current_exception())));
        startup_failed_ = true;
    }
    if (startup_failed_) {
        signals_.cancel();
        auto [ignored] = co_await db_.async_close(asio::as_tuple(use_awaitable));
        co_return;
    }

    signals_.async_wait([this](boost::system::error_code ec, int sig) {
        if (!ec)
            request_stop(sig == SIGINT ? "SIGINT" : "SIGTERM");
    });
    if (cfg_.duration_s > 0) {
        duration_timer_.expires_after(
            std::chrono::duration_cast<steady::duration>(std::chrono::duration<double>(cfg_.duration_s)));
        duration_timer_.async_wait([this](boost::system::error_code ec) {
            if (!ec)
                request_stop("duration elapsed");
        });
    }

    loops_.start(
        "tempban-sweep", 250ms, [this](std::uint64_t iteration) { return sweep_tempbans(iteration); });
    loops_.start("ratelimit-cleanup", 1s, [this](std::uint64_t) { return cleanup_limiters(); });
    if (cfg_.progress_every_s > 0)
        loops_.start("progress",
                     std::chrono::duration_cast<steady::duration>(
                         std::chrono::duration<double>(cfg_.progress_every_s)),
                     [this](std::uint64_t iteration) { return report_progress(iteration); });

    asio::co_spawn(control_, follow_settings(), asio::detached);
    started_ = steady::now();
    in_flight_.acquire(); // held by the gateway until it stops
    asio::co_spawn(control_, run_gateway(), asio::detached);
    fmt::print(stderr,
               "[info] gateway: running, {} guilds, {} events/s, {} threads; stop with SIGINT or SIGTERM\n",
               gateway_.guild_ids().size(),
               cfg_.events_per_sec,
               threads_);

    // Wait for a stop request (signal or duration).
    if (!stop_requested_) {
        stop_timer_.expires_at(steady::time_point::max());
        co_await stop_timer_.async_wait(asio::as_tuple(use_awaitable));
    }

    co_await shutdown();
}

asio::awaitable<void> bot_service::shutdown()
{
    // Stop the gateway and the loops, let in-flight handlers finish, then close the database.
    stopping_ = true;
    running_s_ = std::chrono::duration<double>(steady::now() - started_).count();
    gateway_.cancel();
    loops_.cancel();
    signals_.cancel();
    duration_timer_.cancel();
    co_await in_flight_.wait_drained();
    settings_feed_.unsubscribe(); // follow_settings ends with errc::closed
    elapsed_s_ = std::chrono::duration<double>(steady::now() - started_).count();
    stats_ = db_.stats();
    auto [e] = co_await db_.async_close(asio::as_tuple(use_awaitable));
    if (e) {
        close_failed_ = true;
        log("error", fmt::format("closing the database failed: {}", describe(e)));
    }
    fmt::print(
        stderr, "[info] shutdown: {}; gateway stopped, handlers drained, database closed\n", stop_reason_);
}

void bot_service::request_stop(std::string reason)
{
    if (stop_requested_)
        return;
    stop_requested_ = true;
    stop_reason_ = std::move(reason);
    stop_timer_.cancel();
}

asio::awaitable<void> bot_service::run_gateway()
{
    // Named before the co_await (see STYLE.md on GCC 12): the hooks are std::functions.
    const gateway::hooks hooks{[this] { return stopping_ || stop_requested_; },
                               [this](event ev) { emit(std::move(ev)); }};
    co_await gateway_.run(hooks);
    in_flight_.release();
}

asio::awaitable<void> bot_service::follow_settings()
{
    for (;;) {
        auto [e, ev] = co_await settings_feed_.async_next(asio::as_tuple(use_awaitable));
        if (e)
            co_return; // closed: the bot is shutting down
        ++counters_.feed_events;
        settings_.apply(ev);
    }
}

void bot_service::emit(event ev)
{
    ++counters_.emitted;
    in_flight_.acquire();
    auto& s = shard_of(ev.guild);
    asio::co_spawn(s.strand, handlers_.dispatch(s, std::move(ev)), asio::detached);
}

asio::awaitable<void> bot_service::sweep_tempbans(std::uint64_t iteration)
{
    static const dbactor::request_options ro{.name = "lift_expired_bans"};
    const bool fault = cfg_.fault_every != 0 && iteration % cfg_.fault_every == 0;
    auto req = lift_expired_bans{unix_ms(), fault, cfg_.fault_is_std};
    const auto lifted = co_await db_.async_write(req, ro, use_awaitable);
    counters_.lifted += static_cast<std::uint64_t>(lifted);
}

asio::awaitable<void> bot_service::cleanup_limiters()
{
    const auto now = steady::now();
    buckets_removed_ += handlers_.cleanup_limiters(now);
    co_return;
}

asio::awaitable<void> bot_service::report_progress(std::uint64_t iteration)
{
    if (iteration == 1)
        co_return; // the first iteration runs at the start, with nothing to report yet
    const auto handled = counters_.handled.load(), failed = counters_.failed.load();
    const auto emitted = counters_.emitted.load();
    log("info",
        fmt::format("progress: {} events handled ({} failed), {} in flight, after {:.1f} s",
                    handled,
                    failed,
                    emitted - handled - failed,
                    std::chrono::duration<double>(steady::now() - started_).count()));
    co_return;
}

} // namespace bot
