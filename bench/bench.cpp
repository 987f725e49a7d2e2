// dbactor-bench: workloads W1–W5 of DESIGN.md through RAW (the C API on one thread), MUTEX (std::mutex around
// one SQLiteCpp connection, calls posted to an asio::thread_pool) and DBACTOR, alternated over rounds on
// fresh copies of one prefilled database, with per-round ratios to RAW and their medians.
//
// Every request is written once, as a struct templated on the connection type (`op(c)`), so the three
// systems run exactly the same SQL: RAW and MUTEX through small adapters with the same execute / query_one /
// query surface as dbactor::connection.

#include <dbactor/dbactor.hpp>

#include <bot_migrations.hpp> // generated: migrations/bot, embedded (bench/CMakeLists.txt)

#include <SQLiteCpp/SQLiteCpp.h>
#include <sqlite3.h>

#include <boost/asio/async_result.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <fmt/core.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <filesystem>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <regex>
#include <set>
#include <stdexcept>
#include <string>
#include <string_view>
#include <tuple>
#include <type_traits>
#include <unordered_set>
#include <utility>
#include <vector>

#include <unistd.h>

namespace asio = boost::asio;
namespace fs = std::filesystem;
using clock_type = std::chrono::steady_clock;

namespace {

// ---------------------------------------------------------------------------------------------------------
// Configuration

struct config
{
    bool quick = false;
    int rounds = 5;
    std::set<std::string> only; // workload names; empty = all
    fs::path dir;
    unsigned readers = 0;
    std::optional<std::size_t> max_batch;
    bool ascending_inserts = false; ///< W3/W4 insert ids above the prefill's (appends) instead of random ids
    std::size_t cache_mib = 0; ///< PRAGMA cache_size for every system, in MiB; 0 = SQLite's default (2 MiB)

    // Sizes (DESIGN.md); --quick shrinks them.
    std::size_t rows = 100'000;
    std::size_t w1 = 20'000;
    std::size_t w2 = 200'000;
    std::size_t w3 = 20'000;
    std::size_t w4 = 100'000;
    std::size_t w5 = 20'000;
    std::size_t guilds = 1'000;
    std::size_t members_per_guild = 100;
    std::size_t tasks = 64;
    std::size_t pool_threads = 4;
};

[[noreturn]] void usage_error(const std::string& msg)
{
    std::fprintf(
        stderr,
        "dbactor-bench: %s\n"
        "usage: dbactor-bench [--quick] [--rounds N] [--only W1,W2,W3,W3_NORMAL,W3_FULL,W4,W5] [--dir DIR]\n"
        "                     [--readers N] [--max-batch N] [--insert-order random|ascending]\n"
        "                     [--cache-mib N]\n",
        msg.c_str());
    std::exit(2);
}

std::size_t parse_count(const std::string& opt, const std::string& v)
{
    try {
        std::size_t pos = 0;
        const unsigned long long n = std::stoull(v, &pos);
        if (pos != v.size())
            throw std::invalid_argument(v);
        return static_cast<std::size_t>(n);
    }
    catch (const std::exception&) {
        usage_error(fmt::format("{} expects a non-negative integer, got '{}'", opt, v));
    }
}

config parse_args(int argc, char** argv)
{
    config c;
    bool rounds_given = false;
    for (int i = 1; i < argc; ++i) {
        const std::string a = argv[i];
        auto value = [&]() -> std::string {
            if (i + 1 >= argc)
                usage_error(a + " needs a value");
            return argv[++i];
        };
        if (a == "--quick")
            c.quick = true;
        else if (a == "--rounds") {
            c.rounds = static_cast<int>(parse_count(a, value()));
            rounds_given = true;
            if (c.rounds < 1)
                usage_error("--rounds must be at least 1");
        }
        else if (a == "--only") {
            std::string list = value();
            std::size_t start = 0;
            while (start <= list.size()) {
                const auto comma = list.find(',', start);
                std::string w =
                    list.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
                std::transform(
                    w.begin(), w.end(), w.begin(), [](unsigned char ch) { return std::toupper(ch); });
                if (w == "W3") {
                    c.only.insert("W3_NORMAL");
                    c.only.insert("W3_FULL");
                }
                else if (w == "W1" || w == "W2" || w == "W3_NORMAL" || w == "W3_FULL" || w == "W4" ||
                         w == "W5")
                    c.only.insert(w);
                else if (!w.empty())
                    usage_error(fmt::format("unknown workload '{}' in --only", w));
                if (comma == std::string::npos)
                    break;
                start = comma + 1;
            }
        }
        else if (a == "--dir")
            c.dir = value();
        else if (a == "--readers")
            c.readers = static_cast<unsigned>(parse_count(a, value()));
        else if (a == "--max-batch") {
            c.max_batch = parse_count(a, value());
            if (*c.max_batch < 1)
                usage_error("--max-batch must be at least 1 (1 = group commit off)");
        }
        else if (a == "--cache-mib") {
            c.cache_mib = parse_count(a, value());
            if (c.cache_mib > 20)
                usage_error("--cache-mib is at most 20 (DESIGN.md: 20 MiB or less of page cache)");
        }
        else if (a == "--insert-order") {
            const std::string v = value();
            if (v != "random" && v != "ascending")
                usage_error("--insert-order is 'random' (the default) or 'ascending'");
            c.ascending_inserts = v == "ascending";
        }
        else if (a == "--help" || a == "-h")
            usage_error("runs workloads W1-W5 (DESIGN.md) through RAW, MUTEX and DBACTOR");
        else
            usage_error(fmt::format("unknown option '{}'", a));
    }
    if (c.quick) {
        if (!rounds_given)
            c.rounds = 1;
        c.rows = 2'000;
        c.w1 = 200;
        c.w2 = 2'000;
        c.w3 = 256;
        c.w4 = 2'000;
        c.w5 = 1'000;
        c.members_per_guild = 5;
    }
    if (c.dir.empty())
        c.dir = fs::temp_directory_path();
    return c;
}

// ---------------------------------------------------------------------------------------------------------
// Data: generated once from fixed seeds, so every system and every round runs the same statements.

struct kv_row
{
    std::int64_t id;
    std::int64_t guild;
    std::string val;
};

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

/// One request of the bot example (examples/bot/bot_core.cpp), same SQL.
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

dataset make_dataset(const config& c)
{
    dataset d;
    std::mt19937_64 rng(20240601);
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

    // W5: 1,000 guilds with snowflake ids, members per guild, a few canned reasons, then the event stream.
    const std::int64_t now_ms = 1'717'200'000'000; // fixed, so runs are reproducible
    for (std::size_t g = 0; g < c.guilds; ++g) {
        d.guild_ids.push_back(snowflake(rng, now_ms - static_cast<std::int64_t>(rng() % 200'000'000'000)));
        std::vector<std::int64_t> m;
        for (std::size_t u = 0; u < c.members_per_guild; ++u)
            m.push_back(snowflake(rng, now_ms - static_cast<std::int64_t>(rng() % 100'000'000'000)));
        d.members.push_back(std::move(m));
    }
    for (int i = 0; i < 16; ++i)
        d.reasons.push_back(random_text(rng, 10 + static_cast<std::size_t>(i) * 4).insert(0, "spam: "));

    // The bot's event mix (examples/bot: bot_core.cpp, next_event): 5% member joins, 70% messages, 25%
    // commands; a command reads the guild's settings, then /rank 30% (a read), the word game 30% (a write
    // when a game ends: here one in four), /ask 20% (no request), /warn 12%, /tempban 6%, /settings 2%
    // (writes). Every 500th event is the unban sweep. Per-user rate limiting and the warn-limit escalation
    // are left out (they depend on timing and on the order of replies).
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
        else {
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
                add({bot_req::update_settings,
                     false,
                     guild,
                     0,
                     0,
                     0,
                     1 + static_cast<std::int64_t>(rng() % 3)});
        }
        d.events.push_back(e);
    }
    return d;
}

// ---------------------------------------------------------------------------------------------------------
// The SQL, and the requests: each written once, for any connection type C with execute / query_one / query.

constexpr const char* kv_schema =
    "CREATE TABLE kv(id INTEGER PRIMARY KEY, guild INTEGER NOT NULL, val TEXT NOT NULL)";
constexpr const char* kv_select = "SELECT val FROM kv WHERE id = ?";
constexpr const char* kv_insert = "INSERT INTO kv(id, guild, val) VALUES (?, ?, ?)";

// W5: the bot example's SQL (examples/bot/bot_core.cpp), on its schema (migrations/bot, embedded).
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

/// W1/W2: one point read.
struct kv_get
{
    std::int64_t id;
    std::size_t count() const { return 1; }
    const kv_get& step(std::size_t) const { return *this; }
    bool writes() const { return false; }
    template <class C>
    std::optional<std::string> operator()(C& c) const
    {
        return c.template query_one<std::string>(kv_select, id);
    }
};

/// W3: one single-row insert.
struct kv_put
{
    const kv_row* row;
    std::size_t count() const { return 1; }
    const kv_put& step(std::size_t) const { return *this; }
    bool writes() const { return true; }
    template <class C>
    std::int64_t operator()(C& c) const
    {
        return c.execute(kv_insert, row->id, row->guild, row->val);
    }
};

/// W4: every row in one request.
struct kv_put_all
{
    const std::vector<kv_row>* rows;
    std::size_t count() const { return 1; }
    const kv_put_all& step(std::size_t) const { return *this; }
    bool writes() const { return true; }
    template <class C>
    std::int64_t operator()(C& c) const
    {
        std::int64_t n = 0;
        for (const auto& r : *rows)
            n += c.execute(kv_insert, r.id, r.guild, r.val);
        return n;
    }
};

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

std::int64_t tally(const std::optional<std::string>& v)
{
    return v ? 1 : 0;
}
std::int64_t tally(std::int64_t v)
{
    return v;
}

template <class T>
struct is_tuple : std::false_type
{};
template <class... T>
struct is_tuple<std::tuple<T...>> : std::true_type
{};

// ---------------------------------------------------------------------------------------------------------
// RAW: the C API on one thread; each SQL text prepared once and reused (looked up by its address).

[[noreturn]] void throw_sqlite(sqlite3* db, const char* what)
{
    throw std::runtime_error(
        fmt::format("{}: {} (extended code {})", what, sqlite3_errmsg(db), sqlite3_extended_errcode(db)));
}

constexpr const char* common_pragmas =
    "PRAGMA journal_mode=WAL; PRAGMA foreign_keys=ON; PRAGMA busy_timeout=5000; "
    "PRAGMA journal_size_limit=67108864;";

/// --cache-mib, the same for every system: PRAGMA cache_size in KiB (negative), or empty for the default.
std::string cache_pragma_value;

class raw_conn
{
public:
    raw_conn(const fs::path& path, bool full)
    {
        if (sqlite3_open_v2(path.c_str(), &db_, SQLITE_OPEN_READWRITE, nullptr) != SQLITE_OK) {
            const std::string msg = db_ ? sqlite3_errmsg(db_) : "out of memory";
            sqlite3_close(db_);
            throw std::runtime_error(fmt::format("cannot open {}: {}", path.string(), msg));
        }
        sqlite3_extended_result_codes(db_, 1);
        exec(common_pragmas);
        exec(full ? "PRAGMA synchronous=FULL" : "PRAGMA synchronous=NORMAL");
        if (!cache_pragma_value.empty())
            exec(("PRAGMA cache_size=" + cache_pragma_value).c_str());
    }
    raw_conn(const raw_conn&) = delete;
    raw_conn& operator=(const raw_conn&) = delete;
    ~raw_conn()
    {
        for (auto& e : cache_)
            sqlite3_finalize(e.second);
        sqlite3_close(db_);
    }

    void exec(const char* sql)
    {
        char* err = nullptr;
        if (sqlite3_exec(db_, sql, nullptr, nullptr, &err) != SQLITE_OK) {
            std::string msg = err ? err : "unknown error";
            sqlite3_free(err);
            throw std::runtime_error(fmt::format("{}: {}", sql, msg));
        }
    }

    template <class... A>
    std::int64_t execute(const char* sql, const A&... a)
    {
        sqlite3_stmt* s = bound(sql, a...);
        int rc;
        while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        }
        sqlite3_reset(s);
        if (rc != SQLITE_DONE)
            throw_sqlite(db_, sql);
        return sqlite3_changes(db_);
    }

    template <class T, class... A>
    std::optional<T> query_one(const char* sql, const A&... a)
    {
        sqlite3_stmt* s = bound(sql, a...);
        const int rc = sqlite3_step(s);
        std::optional<T> r;
        if (rc == SQLITE_ROW)
            r = row<T>(s);
        sqlite3_reset(s);
        if (rc != SQLITE_ROW && rc != SQLITE_DONE)
            throw_sqlite(db_, sql);
        return r;
    }

    template <class T, class... A>
    std::vector<T> query(const char* sql, const A&... a)
    {
        sqlite3_stmt* s = bound(sql, a...);
        std::vector<T> rows;
        int rc;
        while ((rc = sqlite3_step(s)) == SQLITE_ROW)
            rows.push_back(row<T>(s));
        sqlite3_reset(s);
        if (rc != SQLITE_DONE)
            throw_sqlite(db_, sql);
        return rows;
    }

    std::int64_t last_insert_rowid() const { return sqlite3_last_insert_rowid(db_); }

private:
    template <class... A>
    sqlite3_stmt* bound(const char* sql, const A&... a)
    {
        sqlite3_stmt* s = nullptr;
        for (auto& e : cache_)
            if (e.first == sql)
                s = e.second;
        if (!s) {
            if (sqlite3_prepare_v3(db_, sql, -1, SQLITE_PREPARE_PERSISTENT, &s, nullptr) != SQLITE_OK)
                throw_sqlite(db_, sql);
            cache_.emplace_back(sql, s);
        }
        int i = 0;
        (bind(s, ++i, a), ...);
        return s;
    }
    static void bind(sqlite3_stmt* s, int i, std::int64_t v) { sqlite3_bind_int64(s, i, v); }
    static void bind(sqlite3_stmt* s, int i, const std::optional<std::int64_t>& v)
    {
        if (v)
            sqlite3_bind_int64(s, i, *v);
        else
            sqlite3_bind_null(s, i);
    }
    static void bind(sqlite3_stmt* s, int i, const std::string& v)
    {
        sqlite3_bind_text(s, i, v.data(), static_cast<int>(v.size()), SQLITE_STATIC);
    }
    template <class T>
    static T column(sqlite3_stmt* s, int i)
    {
        if constexpr (std::is_same_v<T, std::int64_t>)
            return sqlite3_column_int64(s, i);
        else {
            const auto* p = reinterpret_cast<const char*>(sqlite3_column_text(s, i));
            return std::string(p ? p : "", static_cast<std::size_t>(sqlite3_column_bytes(s, i)));
        }
    }
    template <class T>
    static T row(sqlite3_stmt* s)
    {
        if constexpr (is_tuple<T>::value)
            return [&]<std::size_t... I>(std::index_sequence<I...>)
            {
                return T{column<std::tuple_element_t<I, T>>(s, static_cast<int>(I))...};
            }
        (std::make_index_sequence<std::tuple_size_v<T>>{});
        else return column<T>(s, 0);
    }

    sqlite3* db_ = nullptr;
    std::vector<std::pair<const char*, sqlite3_stmt*>> cache_;
};

// ---------------------------------------------------------------------------------------------------------
// MUTEX: what users write instead of an actor. One SQLiteCpp connection behind a std::mutex; each call is
// posted to an asio::thread_pool, runs under the lock and posts its reply back to the caller's executor.
// Its statements are cached under the mutex (the strongest form of this baseline: re-preparing per call,
// the common SQLiteCpp idiom, is slower still).

class mutex_conn
{
public:
    explicit mutex_conn(SQLite::Database& db) : db_(db) {}

    template <class... A>
    std::int64_t execute(const char* sql, const A&... a)
    {
        auto& st = bound(sql, a...);
        reset_on_exit guard{st};
        return st.exec();
    }

    template <class T, class... A>
    std::optional<T> query_one(const char* sql, const A&... a)
    {
        auto& st = bound(sql, a...);
        reset_on_exit guard{st};
        if (!st.executeStep())
            return std::nullopt;
        return row<T>(st);
    }

    template <class T, class... A>
    std::vector<T> query(const char* sql, const A&... a)
    {
        auto& st = bound(sql, a...);
        reset_on_exit guard{st};
        std::vector<T> rows;
        while (st.executeStep())
            rows.push_back(row<T>(st));
        return rows;
    }

    std::int64_t last_insert_rowid() const { return db_.getLastInsertRowid(); }

private:
    struct reset_on_exit
    {
        SQLite::Statement& st;
        ~reset_on_exit() { st.tryReset(); }
    };

    template <class... A>
    SQLite::Statement& bound(const char* sql, const A&... a)
    {
        SQLite::Statement* s = nullptr;
        for (auto& e : cache_)
            if (e.first == sql)
                s = e.second.get();
        if (!s)
            s = cache_.emplace_back(sql, std::make_unique<SQLite::Statement>(db_, sql)).second.get();
        int i = 0;
        (bind(*s, ++i, a), ...);
        return *s;
    }
    template <class T>
    static void bind(SQLite::Statement& s, int i, const T& v)
    {
        s.bind(i, v);
    }
    static void bind(SQLite::Statement& s, int i, const std::optional<std::int64_t>& v)
    {
        if (v)
            s.bind(i, *v);
        else
            s.bind(i);
    }
    template <class T>
    static T column(SQLite::Statement& st, int i)
    {
        if constexpr (std::is_same_v<T, std::int64_t>)
            return st.getColumn(i).getInt64();
        else
            return st.getColumn(i).getString();
    }
    template <class T>
    static T row(SQLite::Statement& st)
    {
        if constexpr (is_tuple<T>::value)
            return [&]<std::size_t... I>(std::index_sequence<I...>)
            {
                return T{column<std::tuple_element_t<I, T>>(st, static_cast<int>(I))...};
            }
        (std::make_index_sequence<std::tuple_size_v<T>>{});
        else return column<T>(st, 0);
    }

    SQLite::Database& db_;
    std::vector<std::pair<const char*, std::unique_ptr<SQLite::Statement>>> cache_;
};

class mutex_db
{
public:
    mutex_db(const fs::path& path, bool full, std::size_t threads)
        : db_(path.string(), SQLite::OPEN_READWRITE), conn_(db_), pool_(threads)
    {
        db_.exec(common_pragmas);
        db_.exec(full ? "PRAGMA synchronous=FULL" : "PRAGMA synchronous=NORMAL");
        if (!cache_pragma_value.empty())
            db_.exec("PRAGMA cache_size=" + cache_pragma_value);
    }
    mutex_db(const mutex_db&) = delete;
    mutex_db& operator=(const mutex_db&) = delete;
    ~mutex_db() { pool_.join(); }

    /// Runs fn(conn) on the pool under the lock (inside BEGIN IMMEDIATE … COMMIT when `tx`); the coroutine
    /// resumes on its own executor.
    template <class Fn>
    auto run(const Fn& fn, bool tx)
    {
        using R = std::invoke_result_t<const Fn&, mutex_conn&>;
        return asio::async_initiate<const asio::use_awaitable_t<>&, void(std::exception_ptr, R)>(
            [this, tx](auto handler, Fn f) {
                auto work = asio::make_work_guard(handler);
                asio::post(pool_, [this, tx, f, h = std::move(handler), work = std::move(work)]() mutable {
                    std::exception_ptr e;
                    R r{};
                    {
                        std::lock_guard lock(m_);
                        try {
                            if (tx)
                                db_.exec("BEGIN IMMEDIATE");
                            r = f(conn_);
                            if (tx)
                                db_.exec("COMMIT");
                        }
                        catch (...) {
                            e = std::current_exception();
                            if (tx)
                                db_.tryExec("ROLLBACK");
                        }
                    }
                    auto ex = work.get_executor();
                    asio::post(ex, [h = std::move(h), e = std::move(e), r = std::move(r)]() mutable {
                        std::move(h)(std::move(e), std::move(r));
                    });
                    work.reset();
                });
            },
            asio::use_awaitable,
            fn);
    }

private:
    std::mutex m_;
    SQLite::Database db_;
    mutex_conn conn_;
    asio::thread_pool pool_;
};

struct mutex_system
{
    mutex_db* db;
    template <class Fn>
    auto read(const Fn& fn)
    {
        return db->run(fn, false);
    }
    template <class Fn>
    auto write(const Fn& fn)
    {
        return db->run(fn, false);
    } // one statement: its own autocommit transaction
    template <class Fn>
    auto write_tx(const Fn& fn)
    {
        return db->run(fn, true);
    }
};

struct actor_system
{
    dbactor::database* db;
    template <class Fn>
    auto read(const Fn& fn)
    {
        return db->async_read(fn, asio::use_awaitable);
    }
    template <class Fn>
    auto write(const Fn& fn)
    {
        return db->async_write(fn, asio::use_awaitable);
    }
    template <class Fn>
    auto write_tx(const Fn& fn)
    {
        return db->async_write(fn, asio::use_awaitable);
    }
};

// ---------------------------------------------------------------------------------------------------------
// Drivers: RAW runs the requests one after another on this thread; MUTEX and DBACTOR run `tasks`
// coroutines on one io_context (this thread), each taking the next request and awaiting it.

template <class Op>
struct run_state
{
    const std::vector<Op>* ops;
    bool tx = false;     ///< RAW/MUTEX: a write request runs inside BEGIN IMMEDIATE … COMMIT (W4, W5)
    bool record = false; ///< record each request's latency
    std::size_t next = 0;
    std::size_t done = 0;     ///< ops (events) completed
    std::size_t requests = 0; ///< requests completed
    std::int64_t acc = 0;
    std::vector<std::int64_t> lat_ns;
};

template <class Op>
double run_raw(raw_conn& c, run_state<Op>& st)
{
    if (st.record)
        st.lat_ns.assign(st.ops->size(), 0);
    const auto start = clock_type::now();
    for (std::size_t i = 0; i < st.ops->size(); ++i) {
        const Op& op = (*st.ops)[i];
        const auto t0 = st.record ? clock_type::now() : start;
        for (std::size_t k = 0; k < op.count(); ++k) {
            const auto& rq = op.step(k);
            const bool tx = st.tx && rq.writes();
            if (tx)
                c.exec("BEGIN IMMEDIATE");
            st.acc += tally(rq(c));
            if (tx)
                c.exec("COMMIT");
            ++st.requests;
        }
        if (st.record)
            st.lat_ns[i] =
                std::chrono::duration_cast<std::chrono::nanoseconds>(clock_type::now() - t0).count();
        ++st.done;
    }
    return std::chrono::duration<double>(clock_type::now() - start).count();
}

template <class System, class Op>
asio::awaitable<void> task_loop(System* sys, run_state<Op>* st)
{
    while (st->next < st->ops->size()) {
        const std::size_t i = st->next++;
        const Op& op = (*st->ops)[i];
        const auto t0 = clock_type::now();
        for (std::size_t k = 0; k < op.count(); ++k) {
            const auto rq = op.step(k); // named before co_await (STYLE.md: GCC 12.2 and temporaries)
            if (!rq.writes())
                st->acc += tally(co_await sys->read(rq));
            else if (st->tx)
                st->acc += tally(co_await sys->write_tx(rq));
            else
                st->acc += tally(co_await sys->write(rq));
            ++st->requests;
        }
        if (st->record)
            st->lat_ns[i] =
                std::chrono::duration_cast<std::chrono::nanoseconds>(clock_type::now() - t0).count();
        ++st->done;
    }
}

template <class System, class Op>
double run_async(System& sys, run_state<Op>& st, std::size_t tasks)
{
    if (st.record)
        st.lat_ns.assign(st.ops->size(), 0);
    asio::io_context io(1);
    for (std::size_t t = 0; t < tasks; ++t)
        asio::co_spawn(io, task_loop(&sys, &st), [](std::exception_ptr e) {
            if (e)
                std::rethrow_exception(e);
        });
    const auto start = clock_type::now();
    io.run();
    return std::chrono::duration<double>(clock_type::now() - start).count();
}

// ---------------------------------------------------------------------------------------------------------
// Workloads and systems

enum class system_id
{
    raw,
    mutex,
    actor,
};
constexpr std::array<system_id, 3> all_systems{system_id::raw, system_id::mutex, system_id::actor};

const char* system_name(system_id s)
{
    switch (s) {
    case system_id::raw: return "RAW";
    case system_id::mutex: return "MUTEX";
    case system_id::actor: return "DBACTOR";
    }
    return "?";
}

struct metric
{
    std::string name; ///< as printed: p50_us, ops_per_s, ...
    double value;
};

struct workload
{
    std::string name; ///< W1, W2, W3_NORMAL, W3_FULL, W4, W5
    bool full_sync;   ///< synchronous=FULL (the library's default) or NORMAL
    bool bot_schema;  ///< W5 runs on its own (bot) database
};

/// What a ratio line compares, and which way is better.
struct ratio_spec
{
    std::string workload;
    std::string metric; ///< metric name as printed
    std::string label;  ///< as in the RATIO line: p50, ops_per_s, ...
    bool higher_is_better;
};

const std::vector<ratio_spec>& ratio_specs()
{
    static const std::vector<ratio_spec> specs{
        {"W1", "p50_us", "p50", false},
        {"W1", "p99_us", "p99", false},
        {"W2", "ops_per_s", "ops_per_s", true},
        {"W3_NORMAL", "commits_per_s", "commits_per_s", true},
        {"W3_FULL", "commits_per_s", "commits_per_s", true},
        {"W4", "rows_per_s", "rows_per_s", true},
        {"W5", "events_per_s", "events_per_s", true},
        {"W5", "p99_us", "p99", false},
    };
    return specs;
}

double percentile_us(std::vector<std::int64_t> v, double p)
{
    if (v.empty())
        return 0;
    std::sort(v.begin(), v.end());
    auto rank = static_cast<std::size_t>(std::ceil(p * static_cast<double>(v.size())));
    rank = std::clamp<std::size_t>(rank, 1, v.size());
    return static_cast<double>(v[rank - 1]) / 1000.0;
}

double mean_us(const std::vector<std::int64_t>& v)
{
    if (v.empty())
        return 0;
    long double s = 0;
    for (auto x : v)
        s += static_cast<long double>(x);
    return static_cast<double>(s / static_cast<long double>(v.size())) / 1000.0;
}

void fail(const std::string& msg)
{
    throw std::runtime_error(msg);
}

void check_equal(const std::string& what, std::int64_t got, std::int64_t want)
{
    if (got != want)
        fail(fmt::format("{}: got {}, expected {}", what, got, want));
}

std::int64_t scalar(const fs::path& path, const char* sql)
{
    raw_conn c(path, true);
    return c.query_one<std::int64_t>(sql).value_or(-1);
}

void remove_db(const fs::path& p)
{
    std::error_code ec;
    fs::remove(p, ec);
    fs::remove(fs::path(p.string() + "-wal"), ec);
    fs::remove(fs::path(p.string() + "-shm"), ec);
}

class bench
{
public:
    bench(config c, fs::path work) : cfg_(std::move(c)), work_(std::move(work)), data_(make_dataset(cfg_)) {}

    void make_templates()
    {
        kv_template_ = work_ / "kv-template.db";
        bot_template_ = work_ / "bot-template.db";
        {
            raw_conn c = create(kv_template_);
            c.exec(kv_schema);
            c.exec("BEGIN");
            for (const auto& r : data_.prefill)
                c.execute(kv_insert, r.id, r.guild, r.val);
            c.exec("COMMIT");
            c.exec("PRAGMA wal_checkpoint(TRUNCATE)");
        }
        {
            // The bot's schema, applied by dbactor from the bot's own migrations, then a prefill.
            remove_db(bot_template_);
            dbactor::options o;
            o.path = bot_template_.string();
            o.migrations = bot_migrations();
            auto db = dbactor::database::open(std::move(o));
            auto prefill = [this](dbactor::connection& c) { prefill_bot(c); };
            db.write(prefill);
            auto checkpoint = [](dbactor::connection& c) { c.exec("PRAGMA wal_checkpoint(TRUNCATE)"); };
            db.call(checkpoint);
            db.close();
        }
        w5_before_ = bot_totals(bot_template_);
    }

    /// 1,000 guilds with their settings, their members with message counts and XP, warnings for a fifth of
    /// the members and tempbans (some already expired, for the sweep) for a fiftieth.
    void prefill_bot(dbactor::connection& c)
    {
        std::mt19937_64 rng(7);
        static const std::string prefixes[] = {"!", "?", "$", ".", "b!"};
        const std::int64_t now_ms = 1'717'200'000'000;
        for (std::size_t g = 0; g < data_.guild_ids.size(); ++g) {
            const std::int64_t guild = data_.guild_ids[g];
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
            for (auto user : data_.members[g]) {
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
        const std::size_t members = data_.guild_ids.size() * cfg_.members_per_guild;
        for (std::size_t i = 0; i < members / 5; ++i) {
            const auto g = rng() % data_.guild_ids.size();
            const auto& m = data_.members[g];
            c.execute(bot_add_warning,
                      data_.guild_ids[g],
                      m[rng() % m.size()],
                      m[rng() % m.size()],
                      data_.reasons[rng() % data_.reasons.size()],
                      now_ms - static_cast<std::int64_t>(rng() % 10'000'000'000));
        }
        for (std::size_t i = 0; i < members / 50; ++i) {
            const auto g = rng() % data_.guild_ids.size();
            const auto& m = data_.members[g];
            const std::int64_t guild = data_.guild_ids[g], user = m[rng() % m.size()];
            const std::int64_t expires = now_ms - 3'600'000 + static_cast<std::int64_t>(rng() % 7'200'000);
            c.execute(bot_delete_ban, guild, user);
            c.execute(bot_log_ban,
                      guild,
                      user,
                      m[rng() % m.size()],
                      data_.reasons[rng() % data_.reasons.size()],
                      now_ms - 3'600'000,
                      expires);
            c.execute(bot_add_ban, guild, user, c.last_insert_rowid(), expires);
        }
    }

    struct totals
    {
        std::int64_t members, messages, warnings, bans;
    };
    static totals bot_totals(const fs::path& db)
    {
        return {scalar(db, "SELECT count(*) FROM members"),
                scalar(db, "SELECT sum(messages) FROM members"),
                scalar(db, "SELECT count(*) FROM warnings"),
                scalar(db, "SELECT count(*) FROM ban_log")};
    }

    int run()
    {
        header();
        make_templates();
        std::vector<workload> wls{
            {"W1", true, false},
            {"W2", true, false},
            {"W3_NORMAL", false, false},
            {"W3_FULL", true, false},
            {"W4", true, false},
            {"W5", true, true},
        };
        for (int round = 1; round <= cfg_.rounds; ++round) {
            // Rotate the order of the systems from round to round, so that none always runs first (cold)
            // or last (after the others have warmed the OS page cache and the CPU frequency).
            std::array<system_id, 3> order = all_systems;
            std::rotate(order.begin(), order.begin() + (round - 1) % 3, order.end());
            emit_comment(fmt::format("round {}/{}: order {} {} {}",
                                     round,
                                     cfg_.rounds,
                                     system_name(order[0]),
                                     system_name(order[1]),
                                     system_name(order[2])));
            for (const auto& w : wls) {
                if (!cfg_.only.empty() && !cfg_.only.count(w.name))
                    continue;
                std::map<system_id, std::vector<metric>> results;
                for (auto s : order) {
                    auto m = measure(w, s);
                    std::string line = fmt::format("{} {}", system_name(s), w.name);
                    for (const auto& x : m)
                        line += fmt::format(" {}={}", x.name, format_value(x));
                    emit(line);
                    if (s == system_id::actor && !actor_note_.empty())
                        emit_comment(std::exchange(actor_note_, {}));
                    results[s] = std::move(m);
                }
                for (auto s : all_systems)
                    for (const auto& x : results[s])
                        values_[{w.name, s, x.name}].push_back(x.value);
                ratios(w, results, round);
            }
        }
        summary();
        return check_lines();
    }

private:
    raw_conn create(const fs::path& p)
    {
        remove_db(p);
        sqlite3* db = nullptr;
        if (sqlite3_open_v2(p.c_str(), &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, nullptr) != SQLITE_OK)
            fail(fmt::format("cannot create {}", p.string()));
        sqlite3_close(db);
        return raw_conn(p, true);
    }

    void header()
    {
        emit_comment(fmt::format("dbactor-bench: rows={} W1={} W2={} W3={} W4={} W5={} tasks={} rounds={}{}",
                                 cfg_.rows,
                                 cfg_.w1,
                                 cfg_.w2,
                                 cfg_.w3,
                                 cfg_.w4,
                                 cfg_.w5,
                                 cfg_.tasks,
                                 cfg_.rounds,
                                 cfg_.quick ? " (quick)" : ""));
        emit_comment(
            fmt::format("sqlite {}; MUTEX pool threads={}; DBACTOR readers={} max_batch={}; insert ids {}; "
                        "page cache {}; dir {}",
                        sqlite3_libversion(),
                        cfg_.pool_threads,
                        cfg_.readers,
                        cfg_.max_batch ? fmt::format("{}", *cfg_.max_batch) : "default",
                        cfg_.ascending_inserts ? "ascending" : "random",
                        cfg_.cache_mib ? fmt::format("{} MiB", cfg_.cache_mib) : "SQLite's default (2 MiB)",
                        work_.string()));
        emit_comment(fmt::format(
            "W5: the bot example's traffic on its schema: {} events, {} requests, {:.0f}% of them "
            "writes; {} guilds",
            data_.events.size(),
            data_.w5_requests,
            100.0 * static_cast<double>(data_.w5_writes) /
                static_cast<double>(std::max<std::int64_t>(data_.w5_requests, 1)),
            cfg_.guilds));
        emit_comment(
            "synchronous=FULL except W3_NORMAL; ratio = system/raw of the same round: for throughput "
            "higher is better, for latency lower is better");
    }

    static std::string format_value(const metric& m)
    {
        if (m.name.ends_with("_us"))
            return fmt::format("{:.2f}", m.value);
        return fmt::format("{:.0f}", m.value);
    }

    /// One system, one workload, on a fresh copy of the template.
    std::vector<metric> measure(const workload& w, system_id s)
    {
        const fs::path db = work_ / "run.db";
        remove_db(db);
        fs::copy_file(w.bot_schema ? bot_template_ : kv_template_, db, fs::copy_options::overwrite_existing);

        std::vector<metric> out;
        if (w.name == "W1") {
            std::vector<kv_get> ops;
            for (auto id : data_.w1_ids)
                ops.push_back({id});
            run_state<kv_get> st{&ops};
            st.record = true;
            execute(s, db, w.full_sync, st, 1);
            check_equal(fmt::format("{} W1 rows found", system_name(s)),
                        st.acc,
                        static_cast<std::int64_t>(ops.size()));
            out = {{"mean_us", mean_us(st.lat_ns)},
                   {"p50_us", percentile_us(st.lat_ns, 0.50)},
                   {"p99_us", percentile_us(st.lat_ns, 0.99)}};
        }
        else if (w.name == "W2") {
            std::vector<kv_get> ops;
            for (auto id : data_.w2_ids)
                ops.push_back({id});
            run_state<kv_get> st{&ops};
            const double secs = execute(s, db, w.full_sync, st, cfg_.tasks);
            check_equal(fmt::format("{} W2 rows found", system_name(s)),
                        st.acc,
                        static_cast<std::int64_t>(ops.size()));
            out = {{"ops_per_s", static_cast<double>(ops.size()) / secs}};
        }
        else if (w.name == "W3_NORMAL" || w.name == "W3_FULL") {
            std::vector<kv_put> ops;
            for (const auto& r : data_.w3_rows)
                ops.push_back({&r});
            run_state<kv_put> st{&ops};
            const double secs = execute(s, db, w.full_sync, st, cfg_.tasks);
            const auto n = static_cast<std::int64_t>(ops.size());
            check_equal(fmt::format("{} {} rows inserted", system_name(s), w.name), st.acc, n);
            check_equal(fmt::format("{} {} rows in kv afterwards", system_name(s), w.name),
                        scalar(db, "SELECT count(*) FROM kv"),
                        static_cast<std::int64_t>(cfg_.rows) + n);
            out = {{"commits_per_s", static_cast<double>(n) / secs}};
        }
        else if (w.name == "W4") {
            std::vector<kv_put_all> ops{{&data_.w4_rows}};
            run_state<kv_put_all> st{&ops};
            st.tx = true;
            const double secs = execute(s, db, w.full_sync, st, 1);
            const auto n = static_cast<std::int64_t>(data_.w4_rows.size());
            check_equal(fmt::format("{} W4 rows inserted", system_name(s)), st.acc, n);
            check_equal(fmt::format("{} W4 rows in kv afterwards", system_name(s)),
                        scalar(db, "SELECT count(*) FROM kv"),
                        static_cast<std::int64_t>(cfg_.rows) + n);
            out = {{"rows_per_s", static_cast<double>(n) / secs}};
        }
        else if (w.name == "W5") {
            std::vector<w5_op> ops;
            for (const auto& e : data_.events)
                ops.push_back({&e});
            run_state<w5_op> st{&ops};
            st.record = true;
            st.tx = true;
            const double secs = execute(s, db, w.full_sync, st, cfg_.tasks);
            const std::string who = fmt::format("{} W5", system_name(s));
            check_equal(who + " events completed",
                        static_cast<std::int64_t>(st.done),
                        static_cast<std::int64_t>(ops.size()));
            check_equal(
                who + " requests completed", static_cast<std::int64_t>(st.requests), data_.w5_requests);
            const totals after = bot_totals(db);
            check_equal(who + " members afterwards", after.members, w5_before_.members + data_.w5_joins);
            check_equal(who + " messages counted afterwards",
                        after.messages,
                        w5_before_.messages + data_.w5_messages);
            check_equal(
                who + " warnings afterwards", after.warnings, w5_before_.warnings + data_.w5_warnings);
            check_equal(who + " bans logged afterwards", after.bans, w5_before_.bans + data_.w5_bans);
            out = {{"events_per_s", static_cast<double>(ops.size()) / secs},
                   {"p99_us", percentile_us(st.lat_ns, 0.99)}};
        }
        remove_db(db);
        return out;
    }

    /// Opens `db` through system `s`, runs the requests, closes it (open and close are not timed).
    template <class Op>
    double execute(system_id s, const fs::path& db, bool full, run_state<Op>& st, std::size_t tasks)
    {
        constexpr bool bot = std::is_same_v<Op, w5_op>;
        switch (s) {
        case system_id::raw: {
            raw_conn c(db, full);
            return run_raw(c, st);
        }
        case system_id::mutex: {
            mutex_db m(db, full, cfg_.pool_threads);
            mutex_system sys{&m};
            return run_async(sys, st, tasks);
        }
        case system_id::actor: {
            dbactor::options o;
            o.path = db.string();
            o.synchronous = full ? dbactor::synchronous_mode::full : dbactor::synchronous_mode::normal;
            o.integrity_check = dbactor::check_level::none; // boot is not measured; the copy is known good
            if (bot)
                o.migrations = bot_migrations(); // as the bot opens it (all applied already)
            o.readers = cfg_.readers;
            if (!cache_pragma_value.empty())
                o.pragmas.emplace_back("cache_size", cache_pragma_value);
            if (cfg_.max_batch)
                o.max_batch = *cfg_.max_batch;
            auto d = dbactor::database::open(std::move(o));
            actor_system sys{&d};
            const double secs = run_async(sys, st, tasks);
            const auto x = d.stats();
            actor_note_ =
                fmt::format("DBACTOR stats: write_batches={} write_batch_mean={:.1f} write_batch_max={} "
                            "read_batches={} read_batch_mean={:.1f} queue_depth_max={}",
                            x.write_batches,
                            x.write_batch_mean,
                            x.write_batch_max,
                            x.read_batches,
                            x.read_batch_mean,
                            x.queue_depth_max);
            d.close();
            return secs;
        }
        }
        return 0;
    }

    void ratios(const workload& w, const std::map<system_id, std::vector<metric>>& results, int round)
    {
        auto get = [&](system_id s, const std::string& name) {
            for (const auto& m : results.at(s))
                if (m.name == name)
                    return m.value;
            return 0.0;
        };
        for (const auto& r : ratio_specs()) {
            if (r.workload != w.name)
                continue;
            const double raw = get(system_id::raw, r.metric);
            const double a = raw > 0 ? get(system_id::actor, r.metric) / raw : 0;
            const double m = raw > 0 ? get(system_id::mutex, r.metric) / raw : 0;
            ratio_values_[{r.workload, r.label}].first.push_back(a);
            ratio_values_[{r.workload, r.label}].second.push_back(m);
            emit(fmt::format("RATIO {} {} dbactor/raw=x{:.3f} mutex/raw=x{:.3f} {} round={}",
                             r.workload,
                             r.label,
                             a,
                             m,
                             r.higher_is_better ? "higher_is_better" : "lower_is_better",
                             round));
        }
    }

    static double median(std::vector<double> v)
    {
        if (v.empty())
            return 0;
        std::sort(v.begin(), v.end());
        const auto n = v.size();
        return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
    }

    void summary()
    {
        emit_comment(fmt::format("medians over {} round(s)", cfg_.rounds));
        static const std::vector<std::string> order{"W1", "W2", "W3_NORMAL", "W3_FULL", "W4", "W5"};
        for (const auto& wl : order)
            for (auto s : all_systems) {
                std::string line;
                for (const auto& [key, vals] : values_)
                    if (std::get<0>(key) == wl && std::get<1>(key) == s)
                        line += fmt::format(
                            " {}={}", std::get<2>(key), format_value({std::get<2>(key), median(vals)}));
                if (!line.empty())
                    emit(fmt::format("MEDIAN {} {}{}", system_name(s), wl, line));
            }
        for (const auto& r : ratio_specs()) {
            auto it = ratio_values_.find({r.workload, r.label});
            if (it == ratio_values_.end())
                continue;
            emit(fmt::format("MEDIAN {} {} dbactor/raw=x{:.3f} mutex/raw=x{:.3f} {}",
                             r.workload,
                             r.label,
                             median(it->second.first),
                             median(it->second.second),
                             r.higher_is_better ? "higher_is_better" : "lower_is_better"));
        }
    }

    /// Every line printed must have the documented form, with finite positive figures; 3 otherwise.
    int check_lines() const
    {
        const std::string num = R"([0-9]+(\.[0-9]+)?)";
        const std::string sys = "(RAW|MUTEX|DBACTOR)";
        const std::string body = "(W1 mean_us=" + num + " p50_us=" + num + " p99_us=" + num +
                                 "|W2 ops_per_s=" + num + "|W3_(NORMAL|FULL) commits_per_s=" + num +
                                 "|W4 rows_per_s=" + num + "|W5 events_per_s=" + num + " p99_us=" + num + ")";
        const std::string ratio = "W1 p50|W1 p99|W2 ops_per_s|W3_NORMAL commits_per_s|W3_FULL commits_per_s|"
                                  "W4 rows_per_s|W5 events_per_s|W5 p99";
        const std::regex result_re("^" + sys + " " + body + "$");
        const std::regex median_re("^MEDIAN " + sys + " " + body + "$");
        const std::regex ratio_re("^RATIO (" + ratio + ") dbactor/raw=x" + num + " mutex/raw=x" + num +
                                  " (higher|lower)_is_better round=[0-9]+$");
        const std::regex median_ratio_re("^MEDIAN (" + ratio + ") dbactor/raw=x" + num + " mutex/raw=x" +
                                         num + " (higher|lower)_is_better$");
        int bad = 0;
        std::size_t results = 0;
        for (const auto& l : lines_) {
            const bool is_result = std::regex_match(l, result_re);
            results += is_result;
            if (!is_result && !std::regex_match(l, ratio_re) && !std::regex_match(l, median_re) &&
                !std::regex_match(l, median_ratio_re)) {
                std::fprintf(stderr, "dbactor-bench: FAILED: malformed output line: %s\n", l.c_str());
                ++bad;
            }
            // A zero figure means something did not run (a ratio of 0 or a rate of 0).
            if (l.find("=0 ") != std::string::npos || l.ends_with("=0") ||
                l.find("=x0.000") != std::string::npos) {
                std::fprintf(stderr, "dbactor-bench: FAILED: zero figure: %s\n", l.c_str());
                ++bad;
            }
        }
        const std::size_t workloads = cfg_.only.empty() ? 6 : cfg_.only.size();
        if (results != workloads * 3 * static_cast<std::size_t>(cfg_.rounds)) {
            std::fprintf(stderr,
                         "dbactor-bench: FAILED: %zu result lines, expected %zu\n",
                         results,
                         workloads * 3 * static_cast<std::size_t>(cfg_.rounds));
            ++bad;
        }
        return bad ? 3 : 0;
    }

    void emit(const std::string& line)
    {
        std::fputs(line.c_str(), stdout);
        std::fputc('\n', stdout);
        std::fflush(stdout);
        lines_.push_back(line);
    }
    static void emit_comment(const std::string& line)
    {
        std::printf("# %s\n", line.c_str());
        std::fflush(stdout);
    }

    config cfg_;
    fs::path work_;
    dataset data_;
    fs::path kv_template_, bot_template_;
    totals w5_before_{};
    std::string actor_note_; ///< the actor's own counters for the last DBACTOR run, printed as a comment
    std::vector<std::string> lines_;
    std::map<std::tuple<std::string, system_id, std::string>, std::vector<double>> values_;
    std::map<std::pair<std::string, std::string>, std::pair<std::vector<double>, std::vector<double>>>
        ratio_values_;
};

/// A unique directory under --dir, removed at exit.
class work_dir
{
public:
    explicit work_dir(const fs::path& parent)
    {
        fs::create_directories(parent);
        std::string tmpl = (parent / "dbactor-bench-XXXXXX").string();
        if (!::mkdtemp(tmpl.data()))
            fail(fmt::format("cannot create a directory under {}", parent.string()));
        path_ = tmpl;
    }
    work_dir(const work_dir&) = delete;
    work_dir& operator=(const work_dir&) = delete;
    ~work_dir()
    {
        std::error_code ec;
        fs::remove_all(path_, ec);
    }
    const fs::path& path() const { return path_; }

private:
    fs::path path_;
};

} // namespace

int main(int argc, char** argv)
{
    const config cfg = parse_args(argc, argv);
    if (cfg.cache_mib > 0)
        cache_pragma_value = std::to_string(-static_cast<long long>(cfg.cache_mib) * 1024);
    try {
        work_dir dir(cfg.dir);
        bench b(cfg, dir.path());
        return b.run();
    }
    catch (const std::exception& e) {
        std::fprintf(stderr, "dbactor-bench: FAILED: %s\n", e.what());
        return 1;
    }
}
