// Generating the data from fixed seeds: the kv prefill and W1–W4's ids and rows, then W5's guilds and events.
#include "dataset.hpp"

#include <algorithm>
#include <unordered_set>
#include <utility>

namespace dbactor_bench {

std::string random_text(std::mt19937_64& rng, std::size_t n)
{
    static constexpr char alphabet[] = "abcdefghijklmnopqrstuvwxyz0123456789";
    std::string s(n, ' ');
    for (auto& ch : s)
        ch = alphabet[rng() % (sizeof(alphabet) - 1)];
    return s;
}

// A Discord snowflake: milliseconds since the Discord epoch (2015) in the top 42 bits.
std::int64_t snowflake(std::mt19937_64& rng, std::int64_t unix_ms)
{
    constexpr std::int64_t discord_epoch = 1'420'070'400'000;
    return ((unix_ms - discord_epoch) << 22) | static_cast<std::int64_t>(rng() & 0x3FFFFF);
}

namespace {

using unit_dist = std::uniform_real_distribution<double>;

/// The kv prefill, W3/W4's rows and W1/W2's ids.
void make_kv_data(const config& c, std::mt19937_64& rng, dataset& d)
{
    std::unordered_set<std::int64_t> used;
    auto fresh_row = [&] {
        std::int64_t id;
        do
            id = static_cast<std::int64_t>(rng() >> 2) + 1; // random, positive, distinct
        while (!used.insert(id).second);
        return kv_row{id, id % 1000, random_text(rng, 32)};
    };
    for (std::size_t i = 0; i < c.rows; ++i)
        d.prefill.push_back(fresh_row());
    // W3/W4 insert random ids (DESIGN.md) by default: each lands on a random leaf page, so a large insert is
    // bound by the page cache. --insert-order ascending appends instead (ids above the prefill's).
    std::int64_t next_id = 0;
    for (const auto& r : d.prefill)
        next_id = std::max(next_id, r.id);
    auto insert_row = [&] {
        if (!c.ascending_inserts)
            return fresh_row();
        const std::int64_t id = ++next_id;
        return kv_row{id, id % 1000, random_text(rng, 32)};
    };
    for (std::size_t i = 0; i < c.w3; ++i)
        d.w3_rows.push_back(insert_row());
    for (std::size_t i = 0; i < c.w4; ++i)
        d.w4_rows.push_back(insert_row());
    for (std::size_t i = 0; i < c.w1; ++i)
        d.w1_ids.push_back(d.prefill[rng() % d.prefill.size()].id);
    for (std::size_t i = 0; i < c.w2; ++i)
        d.w2_ids.push_back(d.prefill[rng() % d.prefill.size()].id);
}

/// W5: 1,000 guilds with snowflake ids, members per guild, a few canned reasons.
void make_w5_world(const config& c, std::mt19937_64& rng, dataset& d, std::int64_t now_ms)
{
    for (std::size_t g = 0; g < c.guilds; ++g) {
        d.guild_ids.push_back(snowflake(rng, now_ms - static_cast<std::int64_t>(rng() % 200'000'000'000)));
        std::vector<std::int64_t> m;
        for (std::size_t u = 0; u < c.members_per_guild; ++u)
            m.push_back(snowflake(rng, now_ms - static_cast<std::int64_t>(rng() % 100'000'000'000)));
        d.members.push_back(std::move(m));
    }
    for (int i = 0; i < 16; ++i)
        d.reasons.push_back(random_text(rng, 10 + static_cast<std::size_t>(i) * 4).insert(0, "spam: "));
}

/// A command: it reads the guild's settings, then /rank, the word game, /ask, /warn, /tempban or /settings.
template <class Add, class Pick>
void add_command(std::mt19937_64& rng, unit_dist& unit, dataset& d, std::int64_t guild, Add& add, Pick& pick)
{
    const std::int64_t user = pick();
    add({bot_req::load_settings, false, guild});
    const double cmd = unit(rng);
    const auto* reason = &d.reasons[rng() % d.reasons.size()];
    if (cmd < 0.30)
        add({bot_req::load_rank, false, guild, user});
    else if (cmd < 0.60) {
        if (rng() % 4 == 0)
            add({bot_req::record_game,
                 rng() % 2 == 0,
                 guild,
                 user,
                 0,
                 0,
                 1 + static_cast<std::int64_t>(rng() % 6)});
    }
    else if (cmd < 0.80) {
        // /ask: the settings read only
    }
    else if (cmd < 0.92) {
        add({bot_req::add_warning, false, guild, pick(), user, 0, 0, reason});
        ++d.w5_warnings;
    }
    else if (cmd < 0.98) {
        add({bot_req::add_tempban,
             false,
             guild,
             pick(),
             user,
             0,
             1'000 * (1 + static_cast<std::int64_t>(rng() % 3)),
             reason});
        ++d.w5_bans;
    }
    else
        add({bot_req::update_settings, false, guild, 0, 0, 0, 1 + static_cast<std::int64_t>(rng() % 3)});
}

// The bot's event mix (examples/bot: gateway.cpp, gateway::make_event): 5% member joins, 70% messages, 25%
// commands; a command reads the guild's settings, then /rank 30% (a read), the word game 30% (a write
// when a game ends: here one in four), /ask 20% (no request), /warn 12%, /tempban 6%, /settings 2%
// (writes). Every 500th event is the unban sweep. Per-user rate limiting and the warn-limit escalation
// are left out (they depend on timing and on the order of replies).
void make_w5_events(const config& c, std::mt19937_64& rng, dataset& d, std::int64_t now_ms)
{
    std::uniform_real_distribution<double> unit(0.0, 1.0);
    std::vector<std::vector<std::int64_t>> rosters = d.members;
    for (std::size_t i = 0; i < c.w5; ++i) {
        w5_event e{};
        const std::int64_t now = now_ms + static_cast<std::int64_t>(i) * 10;
        auto add = [&](bot_request r) {
            r.now = now;
            e.steps[e.n++] = r;
            ++d.w5_requests;
            d.w5_writes += r.kind >= bot_req::add_member;
        };
        if (i % 500 == 499) {
            add({bot_req::lift_expired});
            d.events.push_back(e);
            continue;
        }
        // Skewed towards a few busy guilds and a few busy members, as the bot's generator is.
        const double ug = unit(rng);
        const auto g =
            std::min(c.guilds - 1, static_cast<std::size_t>(ug * ug * static_cast<double>(c.guilds)));
        auto& roster = rosters[g];
        const std::int64_t guild = d.guild_ids[g];
        auto pick = [&] {
            const double u = unit(rng);
            return roster[std::min(roster.size() - 1,
                                   static_cast<std::size_t>(u * u * static_cast<double>(roster.size())))];
        };
        const double r = unit(rng);
        if (r < 0.05) {
            const std::int64_t user = snowflake(rng, now);
            roster.push_back(user);
            add({bot_req::add_member, false, guild, user});
            ++d.w5_joins;
        }
        else if (r < 0.75) {
            add({bot_req::record_message,
                 false,
                 guild,
                 pick(),
                 0,
                 0,
                 15 + static_cast<std::int64_t>(rng() % 11)});
            ++d.w5_messages;
        }
        else
            add_command(rng, unit, d, guild, add, pick);
        d.events.push_back(e);
    }
}

} // namespace

dataset make_dataset(const config& c)
{
    dataset d;
    std::mt19937_64 rng(20240601);
    make_kv_data(c, rng, d);
    const std::int64_t now_ms = 1'717'200'000'000; // fixed, so runs are reproducible
    make_w5_world(c, rng, d, now_ms);
    make_w5_events(c, rng, d, now_ms);
    return d;
}

} // namespace dbactor_bench
