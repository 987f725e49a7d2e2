// The event handlers: per-guild state on shard strands, the rate limiters, one coroutine per event.
#pragma once

#include "common.hpp"
#include "gateway.hpp"
#include "in_flight.hpp"
#include "latency_histogram.hpp"
#include "rate_limiter.hpp"
#include "settings_cache.hpp"
#include "summary.hpp"

#include <dbactor/database.hpp>

#include <boost/asio/awaitable.hpp>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string_view>
#include <unordered_map>
#include <utility>

namespace bot {

/// One guild's state in memory: its word game.
struct guild_state
{
    std::string_view word;                        // the word game's secret
    std::unordered_map<std::uint64_t, int> tries; // guesses per player in the current game
};

/// Guilds are sharded onto strands: handlers of guilds on different shards run in parallel, handlers of
/// one guild never race, and no lock guards the guild state.
struct shard
{
    explicit shard(io_strand s) : strand(std::move(s)) {}
    io_strand strand;
    std::unordered_map<std::uint64_t, guild_state> guilds; // touched only on `strand`
    latency_histogram latencies_us;                        // touched only on `strand`
};

/// Handles the gateway's events, each as a coroutine on its guild's shard strand. A command is checked
/// against its sliding-window limiter before anything else, so a refused command costs no request.
/// Thread safety: dispatch() on the event's shard strand; the limiters from any thread.
class event_handlers
{
public:
    event_handlers(dbactor::database& db, counters& c, in_flight_tracker& in_flight, settings_cache& settings)
        : db_(db), counters_(c), in_flight_(in_flight), settings_(settings)
    {}

    /// Handles `ev`, catching everything it throws (nothing may escape io_context::run), records its
    /// latency in the shard's histogram and releases it.
    asio::awaitable<void> dispatch(shard& s, event ev);

    /// Drops the limiters' empty buckets; returns how many.
    std::size_t cleanup_limiters(steady::time_point now)
    {
        return ai_.cleanup(now) + moderation_.cleanup(now) + commands_.cleanup(now);
    }
    /// The limiters' buckets held now.
    std::size_t limiter_buckets() { return ai_.buckets() + moderation_.buckets() + commands_.buckets(); }

private:
    asio::awaitable<void> on_join(const event& ev);
    asio::awaitable<void> on_message(const event& ev);
    asio::awaitable<void> on_command(shard& s, const event& ev);
    asio::awaitable<void> ban(std::uint64_t guild,
                              std::uint64_t user,
                              std::uint64_t moderator,
                              const char* reason,
                              std::int64_t seconds);
    asio::awaitable<void> play_word(shard& s, const event& ev);

    // Reasons are static strings: no std::string temporary is created inside a co_await expression (see
    // STYLE.md on GCC 12).
    static constexpr const char* reason_warnings = "warning limit reached";
    static constexpr const char* reason_command = "tempban command";

    dbactor::database& db_;
    counters& counters_;
    in_flight_tracker& in_flight_;
    settings_cache& settings_;
    sliding_window_limiter ai_{"ai", 10, std::chrono::seconds{60}};
    sliding_window_limiter moderation_{"moderation", 5, std::chrono::seconds{60}};
    sliding_window_limiter commands_{"commands", 15, std::chrono::seconds{30}};
};

} // namespace bot
