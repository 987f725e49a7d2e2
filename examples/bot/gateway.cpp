// The simulated gateway: guild ids from the seed, events at --events-per-sec, backpressure.
#include "gateway.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <algorithm>
#include <chrono>

namespace bot {

using namespace std::chrono_literals;

gateway::gateway(const config& cfg, const io_strand& control, counters& c, const in_flight_tracker& in_flight)
    : cfg_(cfg), counters_(c), in_flight_(in_flight), timer_(control)
{
    std::mt19937_64 rng(cfg_.seed);
    // Guild ids: created at random times in 2016-2023, the same ones for the same seed.
    snowflake_generator gen(1, 0);
    std::vector<std::uint64_t> created;
    std::uniform_int_distribution<std::uint64_t> when(1451606400000ull, 1704067200000ull);
    for (unsigned i = 0; i < cfg_.guilds; ++i)
        created.push_back(when(rng));
    std::sort(created.begin(), created.end());
    for (auto ms : created)
        guild_ids_.push_back(gen.next(ms));
    rosters_.assign(guild_ids_.size(), member_roster(cfg_.roster_cap));
}

asio::awaitable<void> gateway::run(const hooks& h)
{
    std::mt19937_64 rng(cfg_.seed ^ static_cast<std::uint64_t>(unix_ms()));
    snowflake_generator ids(2, 0);
    std::uniform_real_distribution<double> unit(0, 1);
    constexpr auto tick = 10ms;
    const double per_tick = cfg_.events_per_sec * std::chrono::duration<double>(tick).count();
    double owed = 0;
    auto next_tick = steady::now();
    while (!h.stopping()) {
        // Backpressure: with too many events in flight the gateway stops reading (as a bot stops reading
        // its socket), so a database that cannot keep up lowers the event rate instead of growing memory.
        if (in_flight_.count() >= max_in_flight) {
            ++counters_.paused_ticks;
        }
        else {
            owed += per_tick;
            while (owed >= 1) {
                owed -= 1;
                h.emit(make_event(rng, unit, ids));
            }
        }
        next_tick += tick;
        timer_.expires_at(next_tick);
        co_await timer_.async_wait(asio::as_tuple(asio::use_awaitable));
    }
}

event gateway::make_event(std::mt19937_64& rng,
                          std::uniform_real_distribution<double>& unit,
                          snowflake_generator& ids)
{
    // A few guilds are busy, most are quiet (like real bots): guild index skewed towards the front.
    const double g = unit(rng);
    const std::size_t gi =
        std::min(guild_ids_.size() - 1, static_cast<std::size_t>(g * g * guild_ids_.size()));
    member_roster& roster = rosters_[gi];
    event ev{};
    ev.guild = guild_ids_[gi];
    ev.id = ids.next(static_cast<std::uint64_t>(unix_ms()));
    ev.emitted = steady::now();
    const double r = unit(rng);
    if (roster.size() < 2 || r < 0.05) {
        ev.kind = event_kind::member_join;
        ev.user = ev.id; // a new account: its id is a fresh snowflake
        roster.add(ev.user, rng());
        ++counters_.joins;
        return ev;
    }
    auto pick = [&] { return roster.pick(unit(rng)); };
    ev.user = pick();
    if (r < 0.75) {
        ev.kind = event_kind::message;
        ev.arg = 15 + static_cast<std::int64_t>(rng() % 11);
        ++counters_.messages;
        return ev;
    }
    ev.kind = event_kind::command;
    ++counters_.commands;
    const double c = unit(rng);
    if (c < 0.30) {
        ev.command = command_kind::rank;
    }
    else if (c < 0.60) {
        ev.command = command_kind::word;
        ev.word = words[rng() % words.size()];
    }
    else if (c < 0.80) {
        ev.command = command_kind::ask;
    }
    else if (c < 0.92) {
        ev.command = command_kind::warn;
        ev.target = pick();
    }
    else if (c < 0.98) {
        ev.command = command_kind::tempban;
        ev.target = pick();
        ev.arg = 1 + static_cast<std::int64_t>(rng() % 3);
    }
    else {
        ev.command = command_kind::settings;
        ev.arg = 1 + static_cast<std::int64_t>(rng() % 3);
    }
    return ev;
}

} // namespace bot
