// The event handlers: one coroutine per event on its guild's strand, limiter first, then its requests.
#include "handlers.hpp"

#include "requests.hpp"

#include <boost/asio/use_awaitable.hpp>

#include <fmt/format.h>

#include <algorithm>
#include <cstdint>
#include <exception>

namespace bot {

using asio::use_awaitable;

asio::awaitable<void> event_handlers::dispatch(shard& s, event ev)
{
    try {
        switch (ev.kind) {
        case event_kind::message: co_await on_message(ev); break;
        case event_kind::member_join: co_await on_join(ev); break;
        case event_kind::command: co_await on_command(s, ev); break;
        }
        ++counters_.handled;
    }
    catch (...) {
        ++counters_.failed;
        log("error",
            fmt::format("handler for event {} in guild {} failed: {}",
                        ev.id,
                        ev.guild,
                        describe(std::current_exception())));
    }
    // Still on the shard's strand: the shard's histogram needs no lock.
    const auto us = std::chrono::duration_cast<std::chrono::microseconds>(steady::now() - ev.emitted).count();
    s.latencies_us.record(static_cast<std::uint32_t>(std::clamp<std::int64_t>(us, 0, UINT32_MAX)));
    in_flight_.release();
}

asio::awaitable<void> event_handlers::on_join(const event& ev)
{
    static const dbactor::request_options ro{.name = "add_member"};
    auto req =
        add_member{ev.guild, ev.user, static_cast<std::int64_t>(snowflake_generator::unix_ms_of(ev.id))};
    co_await db_.async_write(req, ro, use_awaitable);
}

asio::awaitable<void> event_handlers::on_message(const event& ev)
{
    static const dbactor::request_options ro{.name = "record_message"};
    auto req = record_message{ev.guild, ev.user, ev.id, ev.arg};
    const auto xp = co_await db_.async_write(req, ro, use_awaitable);
    counters_.xp_awarded += static_cast<std::uint64_t>(xp);
}

asio::awaitable<void> event_handlers::on_command(shard& s, const event& ev)
{
    // The limiter first: a refused command costs no database round trip.
    const auto now = steady::now();
    sliding_window_limiter& limiter = ev.command == command_kind::ask ? ai_
                                      : (ev.command == command_kind::rank || ev.command == command_kind::word)
                                          ? commands_
                                          : moderation_;
    if (limiter.check(ev.user, now) != steady::duration::zero()) {
        ++counters_.rate_limited; // the reply would be "slow down, try again in N s"
        co_return;
    }

    static const dbactor::request_options settings_ro{.name = "load_settings"};
    // Every command that passed its limiter needs its guild's settings (the read-heavy path): from the cache,
    // which the change feed keeps true, or from the database.
    auto cached = settings_.get(ev.guild);
    guild_settings settings;
    if (cached.value)
        settings = *cached.value;
    else {
        auto settings_req = load_settings{ev.guild};
        settings = co_await db_.async_read(settings_req, settings_ro, use_awaitable);
        settings_.put(ev.guild, settings, cached.generation);
    }

    switch (ev.command) {
    case command_kind::rank: {
        static const dbactor::request_options ro{.name = "load_rank"};
        auto req = load_rank{ev.guild, ev.user};
        co_await db_.async_read(req, ro, use_awaitable);
        ++counters_.ranks;
        break;
    }
    case command_kind::word: co_await play_word(s, ev); break;
    case command_kind::ask:
        if (settings.ai_enabled)
            ++counters_.ai_answers; // the AI call itself is out of scope: no network here
        break;
    case command_kind::warn: {
        static const dbactor::request_options ro{.name = "add_warning"};
        auto req = add_warning{ev.guild, ev.target, ev.user, "spam", unix_ms()};
        const auto count = co_await db_.async_write(req, ro, use_awaitable);
        ++counters_.warnings;
        if (count % settings.warn_limit == 0) {
            // Too many warnings: escalate to a short tempban (a second request, same handler).
            co_await ban(ev.guild, ev.target, ev.user, reason_warnings, 2);
            ++counters_.auto_bans;
        }
        break;
    }
    case command_kind::tempban: co_await ban(ev.guild, ev.target, ev.user, reason_command, ev.arg); break;
    case command_kind::settings: {
        static const dbactor::request_options ro{.name = "update_settings"};
        auto req = update_xp_multiplier{ev.guild, ev.arg, unix_ms()};
        co_await db_.async_write(req, ro, use_awaitable);
        ++counters_.settings_changed;
        break;
    }
    }
}

asio::awaitable<void> event_handlers::ban(std::uint64_t guild,
                                          std::uint64_t user,
                                          std::uint64_t moderator,
                                          const char* reason,
                                          std::int64_t seconds)
{
    static const dbactor::request_options ro{.name = "add_tempban"};
    const auto now = unix_ms();
    auto req = add_tempban{guild, user, moderator, reason, now, now + seconds * 1000};
    co_await db_.async_write(req, ro, use_awaitable);
    ++counters_.bans;
}

asio::awaitable<void> event_handlers::play_word(shard& s, const event& ev)
{
    // The game's state is the guild's, touched only on this strand; nothing is held across the await
    // below except values copied out of it.
    auto& g = s.guilds[ev.guild];
    if (g.word.empty())
        g.word = words[(ev.id >> 12) % words.size()];
    const int tries = ++g.tries[ev.user];
    const bool won = ev.word == g.word;
    if (!won && tries < word_game_max_guesses)
        co_return;
    if (won) {
        g.word = {}; // a new word for the next game
        g.tries.clear();
    }
    else {
        g.tries.erase(ev.user);
    }
    static const dbactor::request_options ro{.name = "record_game"};
    auto req = record_game{ev.guild, ev.user, won, tries};
    co_await db_.async_write(req, ro, use_awaitable);
    ++counters_.games;
    if (won)
        ++counters_.wins;
}

} // namespace bot
