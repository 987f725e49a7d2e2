// The bot's typed database requests: one struct per stored thing, each callable on a dbactor::connection&.
#pragma once

#include "snowflake.hpp"

#include <dbactor/connection.hpp>

#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

namespace bot {

/// Thrown by the injected fault of --fault-every with --fault-non-std: not a std::exception. (The log names
/// it `bot::injected_fault`.)
struct injected_fault
{
    const char* what;
};

/// GUILD_CREATE for every guild at connect: a settings row with defaults where there is none yet.
struct register_guilds
{
    std::vector<std::uint64_t> ids;
    std::int64_t now;
    std::int64_t operator()(dbactor::connection& c) const
    {
        std::int64_t added = 0;
        for (auto id : ids)
            added +=
                c.execute("INSERT INTO guild_settings (guild_id, created_at, updated_at) VALUES (?, ?, ?) "
                          "ON CONFLICT (guild_id) DO NOTHING",
                          id,
                          now,
                          now);
        return added;
    }
};

/// A guild's settings, also the row load_settings reads: the fields take its columns by position.
struct guild_settings
{
    std::string prefix = "!";
    std::int64_t xp_multiplier = 1;
    bool ai_enabled = true;
    std::int64_t warn_limit = 3;
};

/// Read on every command (the read-heavy path).
struct load_settings
{
    std::uint64_t guild;
    guild_settings operator()(dbactor::connection& c) const
    {
        return c
            .query_one<guild_settings>(
                "SELECT prefix, xp_multiplier, ai_enabled, warn_limit FROM guild_settings WHERE guild_id = ?",
                guild)
            .value_or(guild_settings{});
    }
};

struct update_xp_multiplier
{
    std::uint64_t guild;
    std::int64_t multiplier;
    std::int64_t now;
    void operator()(dbactor::connection& c) const
    {
        c.execute("UPDATE guild_settings SET xp_multiplier = ?, updated_at = ? WHERE guild_id = ?",
                  multiplier,
                  now,
                  guild);
    }
};

struct add_member
{
    std::uint64_t guild;
    std::uint64_t user;
    std::int64_t joined_at;
    void operator()(dbactor::connection& c) const
    {
        c.execute("INSERT INTO members (guild_id, user_id, joined_at) VALUES (?, ?, ?) "
                  "ON CONFLICT (guild_id, user_id) DO UPDATE SET joined_at = excluded.joined_at",
                  guild,
                  user,
                  joined_at);
    }
};

/// The write-heavy path: one message, counted and rewarded with XP (scaled by the guild's multiplier).
/// Returns the XP awarded.
struct record_message
{
    std::uint64_t guild;
    std::uint64_t user;
    std::uint64_t message_id;
    std::int64_t base_xp;
    std::int64_t operator()(dbactor::connection& c) const
    {
        const auto mult =
            c.query_one<std::int64_t>("SELECT xp_multiplier FROM guild_settings WHERE guild_id = ?", guild)
                .value_or(1);
        const std::int64_t xp = base_xp * mult;
        c.execute(
            "INSERT INTO members (guild_id, user_id, joined_at, messages, xp, last_message_id) "
            "VALUES (?, ?, ?, 1, ?, ?) "
            "ON CONFLICT (guild_id, user_id) DO UPDATE SET messages = messages + 1, xp = xp + excluded.xp, "
            "last_message_id = excluded.last_message_id",
            guild,
            user,
            static_cast<std::int64_t>(snowflake_generator::unix_ms_of(message_id)),
            xp,
            message_id);
        return xp;
    }
};

struct rank
{
    std::int64_t messages = 0;
    std::int64_t xp = 0;
    std::int64_t position = 0;
};

struct load_rank
{
    std::uint64_t guild;
    std::uint64_t user;
    struct activity
    {
        std::int64_t messages;
        std::int64_t xp;
    };
    std::optional<rank> operator()(dbactor::connection& c) const
    {
        auto me = c.query_one<activity>(
            "SELECT messages, xp FROM members WHERE guild_id = ? AND user_id = ?", guild, user);
        if (!me)
            return std::nullopt;
        auto above = c.query_one<std::int64_t>(
            "SELECT count(*) FROM members WHERE guild_id = ? AND xp > ?", guild, me->xp);
        return rank{me->messages, me->xp, above.value_or(0) + 1};
    }
};

/// Returns how many warnings the user has now.
struct add_warning
{
    std::uint64_t guild;
    std::uint64_t user;
    std::uint64_t moderator;
    std::string reason;
    std::int64_t now;
    std::int64_t operator()(dbactor::connection& c) const
    {
        c.execute("INSERT INTO warnings (guild_id, user_id, moderator_id, reason, created_at) VALUES (?, ?, "
                  "?, ?, ?)",
                  guild,
                  user,
                  moderator,
                  reason,
                  now);
        return c
            .query_one<std::int64_t>(
                "SELECT count(*) FROM warnings WHERE guild_id = ? AND user_id = ?", guild, user)
            .value_or(0);
    }
};

/// A tempban: logged in ban_log and active in tempbans until the sweep lifts it. A user already banned
/// gets the new ban instead (the old one is stamped lifted).
struct add_tempban
{
    std::uint64_t guild;
    std::uint64_t user;
    std::uint64_t moderator;
    std::string reason;
    std::int64_t now;
    std::int64_t expires_at;
    std::int64_t operator()(dbactor::connection& c) const
    {
        c.execute(
            "UPDATE ban_log SET lifted_at = ? WHERE id = (SELECT ban_id FROM tempbans WHERE guild_id = ? AND "
            "user_id = ?)",
            now,
            guild,
            user);
        c.execute("DELETE FROM tempbans WHERE guild_id = ? AND user_id = ?", guild, user);
        c.execute("INSERT INTO ban_log (guild_id, user_id, moderator_id, reason, banned_at, expires_at) "
                  "VALUES (?, ?, ?, ?, ?, ?)",
                  guild,
                  user,
                  moderator,
                  reason,
                  now,
                  expires_at);
        const auto id = c.last_insert_rowid();
        c.execute("INSERT INTO tempbans (guild_id, user_id, ban_id, expires_at) VALUES (?, ?, ?, ?)",
                  guild,
                  user,
                  id,
                  expires_at);
        return id;
    }
};

/// The sweep's request: lifts every tempban whose expiry has passed. Returns how many it lifted.
struct lift_expired_bans
{
    std::int64_t now;
    bool inject_fault = false;
    bool fault_is_std = true;
    std::int64_t operator()(dbactor::connection& c) const
    {
        c.execute("UPDATE ban_log SET lifted_at = ? WHERE id IN (SELECT ban_id FROM tempbans WHERE "
                  "expires_at <= ?)",
                  now,
                  now);
        const auto lifted = c.execute("DELETE FROM tempbans WHERE expires_at <= ?", now);
        if (inject_fault && fault_is_std)
            throw std::runtime_error(
                "injected fault (--fault-every); this iteration's changes are rolled back");
        if (inject_fault)
            throw injected_fault{"injected fault (--fault-every --fault-non-std)"};
        return lifted;
    }
};

struct record_game
{
    std::uint64_t guild;
    std::uint64_t user;
    bool won;
    std::int64_t guesses;
    void operator()(dbactor::connection& c) const
    {
        c.execute(
            "INSERT INTO word_game_stats (guild_id, user_id, played, won, guesses, best) VALUES (?, ?, 1, ?, "
            "?, ?) "
            "ON CONFLICT (guild_id, user_id) DO UPDATE SET played = played + 1, won = won + excluded.won, "
            "guesses = guesses + excluded.guesses, "
            "best = CASE WHEN excluded.best IS NULL THEN best "
            "WHEN best IS NULL OR excluded.best < best THEN excluded.best ELSE best END",
            guild,
            user,
            won ? 1 : 0,
            guesses,
            won ? std::optional<std::int64_t>(guesses) : std::nullopt);
    }
};

/// Whole-database totals, compared before and after a run by the self-check.
struct totals
{
    std::int64_t guilds = 0, members = 0, messages = 0, xp = 0, warnings = 0, bans = 0, lifted = 0,
                 active_bans = 0, unlifted = 0, games = 0, schema_version = 0;
};

struct read_totals
{
    totals operator()(dbactor::connection& c) const
    {
        totals t;
        t.guilds = c.query_one<std::int64_t>("SELECT count(*) FROM guild_settings").value_or(0);
        auto m = c.query_one<std::tuple<std::int64_t, std::int64_t, std::int64_t>>(
            "SELECT count(*), coalesce(sum(messages), 0), coalesce(sum(xp), 0) FROM members");
        std::tie(t.members, t.messages, t.xp) = *m;
        t.warnings = c.query_one<std::int64_t>("SELECT count(*) FROM warnings").value_or(0);
        auto b = c.query_one<std::tuple<std::int64_t, std::int64_t>>(
            "SELECT count(*), count(lifted_at) FROM ban_log");
        std::tie(t.bans, t.lifted) = *b;
        t.active_bans = c.query_one<std::int64_t>("SELECT count(*) FROM tempbans").value_or(0);
        t.unlifted =
            c.query_one<std::int64_t>("SELECT count(*) FROM ban_log WHERE lifted_at IS NULL").value_or(0);
        t.games =
            c.query_one<std::int64_t>("SELECT coalesce(sum(played), 0) FROM word_game_stats").value_or(0);
        t.schema_version = c.query_one<std::int64_t>("PRAGMA user_version").value_or(0);
        return t;
    }
};

} // namespace bot
