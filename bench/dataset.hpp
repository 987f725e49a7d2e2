// The data every system runs on: kv rows and ids for W1–W4, the bot's guilds and event stream for W5.
#pragma once

#include "common.hpp"

#include <array>
#include <cstdint>
#include <random>
#include <string>
#include <vector>

namespace dbactor_bench {

// Generated once from fixed seeds (dataset.cpp), so every system and every round runs the same statements.

struct kv_row
{
    std::int64_t id;
    std::int64_t guild;
    std::string val;
};

std::string random_text(std::mt19937_64& rng, std::size_t n);

// A Discord snowflake: milliseconds since the Discord epoch (2015) in the top 42 bits.
std::int64_t snowflake(std::mt19937_64& rng, std::int64_t unix_ms);

/// One request of the bot example (examples/bot/requests.hpp), same SQL.
enum class bot_req : std::uint8_t
{
    // reads
    load_settings, ///< every command reads its guild's settings
    load_rank,     ///< /rank
    // writes
    add_member,      ///< GUILD_MEMBER_ADD
    record_message,  ///< every message: the guild's multiplier, then the member's messages/xp upsert
    record_game,     ///< the word game, when a game ends
    add_warning,     ///< /warn: insert, reply with the member's count
    add_tempban,     ///< /tempban: ban_log + tempbans
    update_settings, ///< /settings
    lift_expired,    ///< the unban sweep (a background loop)
};

struct bot_request
{
    bot_req kind;
    bool won = false;
    std::int64_t guild = 0;
    std::int64_t user = 0;
    std::int64_t moderator = 0;
    std::int64_t now = 0;
    std::int64_t arg = 0; ///< base xp, guesses, multiplier or the tempban's expiry
    const std::string* reason = nullptr;
};

/// One gateway event: the requests its handler sends, one after another.
struct w5_event
{
    std::array<bot_request, 2> steps;
    std::uint8_t n = 0;
};

struct dataset
{
    std::vector<kv_row> prefill;
    std::vector<std::int64_t> w1_ids, w2_ids;
    std::vector<kv_row> w3_rows, w4_rows;

    // W5
    std::vector<std::int64_t> guild_ids;
    std::vector<std::vector<std::int64_t>> members; // per guild, prefilled
    std::vector<std::string> reasons;
    std::vector<w5_event> events;
    std::int64_t w5_joins = 0, w5_messages = 0, w5_warnings = 0, w5_bans = 0, w5_requests = 0, w5_writes = 0;
};

dataset make_dataset(const config& c);

} // namespace dbactor_bench
