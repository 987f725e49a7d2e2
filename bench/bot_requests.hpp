// W5's SQL and requests: the bot example's (examples/bot/requests.hpp), on its schema (migrations/bot).
#pragma once

#include "dataset.hpp"

#include <cstdint>
#include <optional>
#include <string>
#include <tuple>

namespace dbactor_bench {

// W5: the bot example's SQL (examples/bot/requests.hpp), on its schema (migrations/bot, embedded).
constexpr const char* bot_load_settings =
    "SELECT prefix, xp_multiplier, ai_enabled, warn_limit FROM guild_settings WHERE guild_id = ?";
constexpr const char* bot_multiplier = "SELECT xp_multiplier FROM guild_settings WHERE guild_id = ?";
constexpr const char* bot_update_settings =
    "UPDATE guild_settings SET xp_multiplier = ?, updated_at = ? WHERE guild_id = ?";
constexpr const char* bot_add_member =
    "INSERT INTO members (guild_id, user_id, joined_at) VALUES (?, ?, ?) "
    "ON CONFLICT (guild_id, user_id) DO UPDATE SET joined_at = excluded.joined_at";
constexpr const char* bot_record_message =
    "INSERT INTO members (guild_id, user_id, joined_at, messages, xp, last_message_id) VALUES (?, ?, ?, 1, "
    "?, ?) "
    "ON CONFLICT (guild_id, user_id) DO UPDATE SET messages = messages + 1, xp = xp + excluded.xp, "
    "last_message_id = excluded.last_message_id";
constexpr const char* bot_member = "SELECT messages, xp FROM members WHERE guild_id = ? AND user_id = ?";
constexpr const char* bot_rank = "SELECT count(*) FROM members WHERE guild_id = ? AND xp > ?";
constexpr const char* bot_add_warning =
    "INSERT INTO warnings (guild_id, user_id, moderator_id, reason, created_at) VALUES (?, ?, ?, ?, ?)";
constexpr const char* bot_warning_count = "SELECT count(*) FROM warnings WHERE guild_id = ? AND user_id = ?";
constexpr const char* bot_lift_one = "UPDATE ban_log SET lifted_at = ? WHERE id = (SELECT ban_id FROM "
                                     "tempbans WHERE guild_id = ? AND user_id = ?)";
constexpr const char* bot_delete_ban = "DELETE FROM tempbans WHERE guild_id = ? AND user_id = ?";
constexpr const char* bot_log_ban =
    "INSERT INTO ban_log (guild_id, user_id, moderator_id, reason, banned_at, expires_at) "
    "VALUES (?, ?, ?, ?, ?, ?)";
constexpr const char* bot_add_ban =
    "INSERT INTO tempbans (guild_id, user_id, ban_id, expires_at) VALUES (?, ?, ?, ?)";
constexpr const char* bot_lift_expired =
    "UPDATE ban_log SET lifted_at = ? WHERE id IN (SELECT ban_id FROM tempbans WHERE expires_at <= ?)";
constexpr const char* bot_delete_expired = "DELETE FROM tempbans WHERE expires_at <= ?";
constexpr const char* bot_record_game =
    "INSERT INTO word_game_stats (guild_id, user_id, played, won, guesses, best) VALUES (?, ?, 1, ?, ?, ?) "
    "ON CONFLICT (guild_id, user_id) DO UPDATE SET played = played + 1, won = won + excluded.won, "
    "guesses = guesses + excluded.guesses, "
    "best = CASE WHEN excluded.best IS NULL THEN best "
    "WHEN best IS NULL OR excluded.best < best THEN excluded.best ELSE best END";

/// W5: one of the bot's requests.
struct w5_request
{
    const bot_request* r;
    bool writes() const { return r->kind >= bot_req::add_member; }
    template <class C>
    std::int64_t operator()(C& c) const
    {
        switch (r->kind) {
        case bot_req::load_settings: {
            auto row =
                c.template query_one<std::tuple<std::string, std::int64_t, std::int64_t, std::int64_t>>(
                    bot_load_settings, r->guild);
            return row ? std::get<3>(*row) : 0;
        }
        case bot_req::load_rank: {
            auto me =
                c.template query_one<std::tuple<std::int64_t, std::int64_t>>(bot_member, r->guild, r->user);
            if (!me)
                return 0;
            return c.template query_one<std::int64_t>(bot_rank, r->guild, std::get<1>(*me)).value_or(0) + 1;
        }
        case bot_req::add_member: return c.execute(bot_add_member, r->guild, r->user, r->now);
        case bot_req::record_message: {
            const auto mult = c.template query_one<std::int64_t>(bot_multiplier, r->guild).value_or(1);
            const std::int64_t xp = r->arg * mult;
            c.execute(bot_record_message, r->guild, r->user, r->now, xp, snowflake_at(r->now));
            return xp;
        }
        case bot_req::record_game:
            return c.execute(bot_record_game,
                             r->guild,
                             r->user,
                             std::int64_t{r->won},
                             r->arg,
                             r->won ? std::optional<std::int64_t>(r->arg) : std::nullopt);
        case bot_req::add_warning:
            c.execute(bot_add_warning, r->guild, r->user, r->moderator, *r->reason, r->now);
            return c.template query_one<std::int64_t>(bot_warning_count, r->guild, r->user).value_or(0);
        case bot_req::add_tempban: {
            c.execute(bot_lift_one, r->now, r->guild, r->user);
            c.execute(bot_delete_ban, r->guild, r->user);
            c.execute(bot_log_ban, r->guild, r->user, r->moderator, *r->reason, r->now, r->now + r->arg);
            const std::int64_t id = c.last_insert_rowid();
            c.execute(bot_add_ban, r->guild, r->user, id, r->now + r->arg);
            return id;
        }
        case bot_req::update_settings: return c.execute(bot_update_settings, r->arg, r->now, r->guild);
        case bot_req::lift_expired:
            c.execute(bot_lift_expired, r->now, r->now);
            return c.execute(bot_delete_expired, r->now) + 1;
        }
        return 0;
    }
    static std::int64_t snowflake_at(std::int64_t unix_ms) { return (unix_ms - 1'420'070'400'000) << 22; }
};

/// W5: one gateway event, its requests in order.
struct w5_op
{
    const w5_event* e;
    std::size_t count() const { return e->n; }
    w5_request step(std::size_t k) const { return {&e->steps[k]}; }
};

} // namespace dbactor_bench
