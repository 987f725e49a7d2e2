// The simulated gateway (no network): its events, and the source that emits them under backpressure.
#pragma once

#include "bot_core.hpp"
#include "common.hpp"
#include "in_flight.hpp"
#include "summary.hpp"

#include <boost/asio/awaitable.hpp>
#include <boost/asio/steady_timer.hpp>

#include <array>
#include <cstdint>
#include <functional>
#include <random>
#include <string_view>
#include <vector>

namespace bot {

// ---------------------------------------------------------------------------------------------------------
// Events of the simulated gateway.

enum class event_kind
{
    message,
    command,
    member_join,
};

enum class command_kind
{
    rank,     // commands limiter
    word,     // commands limiter: a guess in the guild's word game
    ask,      // ai limiter
    warn,     // moderation limiter
    tempban,  // moderation limiter
    settings, // moderation limiter
};

struct event
{
    event_kind kind;
    command_kind command = command_kind::rank;
    std::uint64_t guild = 0;
    std::uint64_t user = 0;   // the author (or the member who joined)
    std::uint64_t id = 0;     // the message / interaction / join snowflake
    std::uint64_t target = 0; // warn, tempban: the member acted upon
    std::int64_t arg = 0;     // message: base XP; tempban: seconds; settings: multiplier
    std::string_view word;    // word: the guess
    steady::time_point emitted;
};

constexpr std::array<std::string_view, 16> words = {"crane",
                                                    "slate",
                                                    "pious",
                                                    "ghost",
                                                    "lemon",
                                                    "quart",
                                                    "bravo",
                                                    "flint",
                                                    "mirth",
                                                    "snack",
                                                    "tiger",
                                                    "vivid",
                                                    "waltz",
                                                    "young",
                                                    "zebra",
                                                    "oxide"};
constexpr int word_game_max_guesses = 6;

/// The gateway stops reading while this many events are in flight.
constexpr std::int64_t max_in_flight = 8192;

/// Every 10 ms emits the events owed at --events-per-sec: messages, commands and member joins of guilds
/// whose ids come from the seed. A few guilds are busy and most are quiet, and so are their members.
/// Thread safety: none (the control strand only).
class gateway
{
public:
    /// What the gateway asks of the service.
    struct hooks
    {
        /// True once the bot stops: the gateway then stops emitting.
        std::function<bool()> stopping;
        /// Hands one event to its handler.
        std::function<void(event)> emit;
    };

    gateway(const config& cfg, const io_strand& control, counters& c, const in_flight_tracker& in_flight);

    /// Emits events until `h.stopping()`; backpressure: emits none in a tick while max_in_flight events are
    /// in flight.
    asio::awaitable<void> run(const hooks& h);
    /// Wakes the gateway from its tick timer (at shutdown).
    void cancel() { timer_.cancel(); }

    const std::vector<std::uint64_t>& guild_ids() const noexcept { return guild_ids_; }

private:
    event
    make_event(std::mt19937_64& rng, std::uniform_real_distribution<double>& unit, snowflake_generator& ids);

    const config& cfg_;
    counters& counters_;
    const in_flight_tracker& in_flight_;
    asio::steady_timer timer_;
    std::vector<std::uint64_t> guild_ids_;
    std::vector<member_roster> rosters_; // the gateway's view of each guild's members
};

} // namespace bot
