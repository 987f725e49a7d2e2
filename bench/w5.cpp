// Workload W5, the bot example's traffic: its template database (the bot's schema, a prefill) and its run.
#include "bot_requests.hpp"
#include "stats.hpp"
#include "systems.hpp"
#include "workloads.hpp"

#include <dbactor/dbactor.hpp>

#include <bot_migrations.hpp> // generated: migrations/bot, embedded (bench/CMakeLists.txt)

#include <fmt/core.h>

#include <cstdint>
#include <random>
#include <string>
#include <utility>
#include <vector>

namespace dbactor_bench {

namespace {

/// 1,000 guilds with their settings, their members with message counts and XP, warnings for a fifth of
/// the members and tempbans (some already expired, for the sweep) for a fiftieth.
void prefill_bot(dbactor::connection& c, const config& cfg, const dataset& data)
{
    std::mt19937_64 rng(7);
    static const std::string prefixes[] = {"!", "?", "$", ".", "b!"};
    const std::int64_t now_ms = 1'717'200'000'000;
    for (std::size_t g = 0; g < data.guild_ids.size(); ++g) {
        const std::int64_t guild = data.guild_ids[g];
        c.execute("INSERT INTO guild_settings (guild_id, prefix, xp_multiplier, ai_enabled, warn_limit, "
                  "created_at, "
                  "updated_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                  guild,
                  prefixes[rng() % 5],
                  std::int64_t{1} + static_cast<std::int64_t>(rng() % 3),
                  rng() % 10 != 0,
                  std::int64_t{3},
                  now_ms - 1'000'000'000,
                  now_ms - 1'000'000);
        for (auto user : data.members[g]) {
            const auto messages = static_cast<std::int64_t>(1 + rng() % 5'000);
            c.execute("INSERT INTO members (guild_id, user_id, joined_at, messages, xp, last_message_id) "
                      "VALUES (?, ?, ?, ?, ?, ?)",
                      guild,
                      user,
                      now_ms - static_cast<std::int64_t>(rng() % 1'000'000'000),
                      messages,
                      messages * 20,
                      snowflake(rng, now_ms - 1'000'000));
        }
    }
    const std::size_t members = data.guild_ids.size() * cfg.members_per_guild;
    for (std::size_t i = 0; i < members / 5; ++i) {
        const auto g = rng() % data.guild_ids.size();
        const auto& m = data.members[g];
        c.execute(bot_add_warning,
                  data.guild_ids[g],
                  m[rng() % m.size()],
                  m[rng() % m.size()],
                  data.reasons[rng() % data.reasons.size()],
                  now_ms - static_cast<std::int64_t>(rng() % 10'000'000'000));
    }
    for (std::size_t i = 0; i < members / 50; ++i) {
        const auto g = rng() % data.guild_ids.size();
        const auto& m = data.members[g];
        const std::int64_t guild = data.guild_ids[g], user = m[rng() % m.size()];
        const std::int64_t expires = now_ms - 3'600'000 + static_cast<std::int64_t>(rng() % 7'200'000);
        c.execute(bot_delete_ban, guild, user);
        c.execute(bot_log_ban,
                  guild,
                  user,
                  m[rng() % m.size()],
                  data.reasons[rng() % data.reasons.size()],
                  now_ms - 3'600'000,
                  expires);
        c.execute(bot_add_ban, guild, user, c.last_insert_rowid(), expires);
    }
}

} // namespace

totals bot_totals(const fs::path& db)
{
    return {scalar(db, "SELECT count(*) FROM members"),
            scalar(db, "SELECT sum(messages) FROM members"),
            scalar(db, "SELECT count(*) FROM warnings"),
            scalar(db, "SELECT count(*) FROM ban_log")};
}

/// The bot's schema, applied by dbactor from the bot's own migrations, then a prefill, checkpointed.
void make_bot_template(const fs::path& p, const config& cfg, const dataset& data)
{
    remove_db(p);
    dbactor::options o;
    o.path = p.string();
    o.migrations = bot_migrations();
    auto db = dbactor::database::open(std::move(o));
    auto prefill = [&](dbactor::connection& c) { prefill_bot(c, cfg, data); };
    db.write(prefill);
    auto checkpoint = [](dbactor::connection& c) { c.exec("PRAGMA wal_checkpoint(TRUNCATE)"); };
    db.call(checkpoint);
    db.close();
}

/// W5: the bot's events from `tasks` coroutines: events/s and the handlers' p99.
std::vector<metric> measure_w5(run_context& cx, const workload& w, system_id s, const fs::path& db)
{
    std::vector<w5_op> ops;
    for (const auto& e : cx.data.events)
        ops.push_back({&e});
    run_state<w5_op> st{&ops};
    st.record = true;
    st.tx = true;
    const double secs = execute(cx, s, db, w.full_sync, st, cx.cfg.tasks);
    const std::string who = fmt::format("{} W5", system_name(s));
    check_equal(
        who + " events completed", static_cast<std::int64_t>(st.done), static_cast<std::int64_t>(ops.size()));
    check_equal(who + " requests completed", static_cast<std::int64_t>(st.requests), cx.data.w5_requests);
    const totals after = bot_totals(db);
    check_equal(who + " members afterwards", after.members, cx.w5_before.members + cx.data.w5_joins);
    check_equal(
        who + " messages counted afterwards", after.messages, cx.w5_before.messages + cx.data.w5_messages);
    check_equal(who + " warnings afterwards", after.warnings, cx.w5_before.warnings + cx.data.w5_warnings);
    check_equal(who + " bans logged afterwards", after.bans, cx.w5_before.bans + cx.data.w5_bans);
    return {{"events_per_s", static_cast<double>(ops.size()) / secs},
            {"p99_us", percentile_us(st.lat_ns, 0.99)}};
}

} // namespace dbactor_bench
