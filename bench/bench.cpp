// dbactor-bench: workloads W1–W5 of DESIGN.md through RAW (the C API on one thread), MUTEX (std::mutex around
// one SQLiteCpp connection, calls posted to an asio::thread_pool) and DBACTOR, alternated over rounds on fresh
// copies of one prefilled database, with per-round ratios to RAW and their medians.
//
// Every request is written once, as a struct templated on the connection type (`op(c)`), so the three
// systems run exactly the same SQL: RAW and MUTEX through small adapters with the same execute / query_one /
// query surface as dbactor::connection.

#include <dbactor/dbactor.hpp>

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

    // Sizes (DESIGN.md); --quick shrinks them.
    std::size_t rows = 100'000;
    std::size_t w1 = 20'000;
    std::size_t w2 = 200'000;
    std::size_t w3 = 20'000;
    std::size_t w4 = 100'000;
    std::size_t w5 = 50'000;
    std::size_t guilds = 1'000;
    std::size_t members_per_guild = 100;
    std::size_t tasks = 64;
    std::size_t pool_threads = 4;
};

[[noreturn]] void usage_error(const std::string& msg)
{
    std::fprintf(stderr,
                 "dbactor-bench: %s\n"
                 "usage: dbactor-bench [--quick] [--rounds N] [--only W1,W2,W3,W3_NORMAL,W3_FULL,W4,W5] [--dir DIR]\n"
                 "                     [--readers N] [--max-batch N]\n",
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
                std::string w = list.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
                std::transform(w.begin(), w.end(), w.begin(), [](unsigned char ch) { return std::toupper(ch); });
                if (w == "W3") {
                    c.only.insert("W3_NORMAL");
                    c.only.insert("W3_FULL");
                }
                else if (w == "W1" || w == "W2" || w == "W3_NORMAL" || w == "W3_FULL" || w == "W4" || w == "W5")
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

enum class ev : std::uint8_t
{
    // reads
    settings,  ///< guild settings, on every command
    rank,      ///< /rank: the member's xp and their place in the guild
    warnings,  ///< /warnings: the member's last warnings
    ban_check, ///< member join: an active tempban?
    ban_sweep, ///< the unban timer: tempbans that expired
    // writes
    xp,      ///< every message: xp upsert
    warn,    ///< /warn: insert a warning, reply with the member's count
    tempban, ///< /tempban: upsert a tempban
};

struct w5_event
{
    ev kind;
    std::int64_t guild;
    std::int64_t user;
    std::int64_t moderator;
    std::int64_t now_ms;
    std::int64_t amount; ///< xp gained, or the tempban's duration
    const std::string* text;
};

struct dataset
{
    std::vector<kv_row> prefill;
    std::vector<std::int64_t> w1_ids, w2_ids;
    std::vector<kv_row> w3_rows, w4_rows;

    // W5
    std::vector<std::int64_t> guild_ids;
    std::vector<std::vector<std::int64_t>> members; // per guild
    std::vector<std::string> reasons;
    std::vector<w5_event> events;
    std::int64_t w5_messages_before = 0;
    std::int64_t w5_warnings_before = 0;
    std::int64_t w5_xp_events = 0;
    std::int64_t w5_warn_events = 0;
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
    for (std::size_t i = 0; i < c.w3; ++i)
        d.w3_rows.push_back(fresh_row());
    for (std::size_t i = 0; i < c.w4; ++i)
        d.w4_rows.push_back(fresh_row());
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
        d.reasons.push_back("spam: " + random_text(rng, 10 + static_cast<std::size_t>(i) * 4));

    std::uniform_real_distribution<double> unit(0.0, 1.0);
    for (std::size_t i = 0; i < c.w5; ++i) {
        w5_event e{};
        // Skewed towards a few busy guilds, as on a real bot.
        const double u = unit(rng);
        const auto g = std::min(c.guilds - 1, static_cast<std::size_t>(u * u * static_cast<double>(c.guilds)));
        const auto& m = d.members[g];
        e.guild = d.guild_ids[g];
        e.user = m[rng() % m.size()];
        e.moderator = m[rng() % m.size()];
        e.now_ms = now_ms + static_cast<std::int64_t>(i) * 10;
        e.text = &d.reasons[rng() % d.reasons.size()];
        const auto p = rng() % 100; // 80% reads, 20% writes
        if (p < 45)
            e.kind = ev::settings;
        else if (p < 60)
            e.kind = ev::rank;
        else if (p < 72)
            e.kind = ev::warnings;
        else if (p < 78)
            e.kind = ev::ban_check;
        else if (p < 80)
            e.kind = ev::ban_sweep;
        else if (p < 97) {
            e.kind = ev::xp;
            e.amount = 15 + static_cast<std::int64_t>(rng() % 11);
            if (rng() % 10 == 0) // a member's first message
                e.user = snowflake(rng, e.now_ms);
            ++d.w5_xp_events;
        }
        else if (p < 99) {
            e.kind = ev::warn;
            ++d.w5_warn_events;
        }
        else {
            e.kind = ev::tempban;
            e.amount = 3'600'000 * static_cast<std::int64_t>(1 + rng() % 72);
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

constexpr const char* w5_schema = R"sql(
CREATE TABLE guild_settings(
    guild_id INTEGER PRIMARY KEY,
    prefix TEXT NOT NULL,
    locale TEXT NOT NULL,
    xp_enabled INTEGER NOT NULL,
    mod_log_channel_id INTEGER);
CREATE TABLE member_xp(
    guild_id INTEGER NOT NULL,
    user_id INTEGER NOT NULL,
    xp INTEGER NOT NULL,
    messages INTEGER NOT NULL,
    last_message_at INTEGER NOT NULL,
    PRIMARY KEY (guild_id, user_id)) WITHOUT ROWID;
CREATE INDEX member_xp_rank ON member_xp(guild_id, xp);
CREATE TABLE warnings(
    id INTEGER PRIMARY KEY,
    guild_id INTEGER NOT NULL,
    user_id INTEGER NOT NULL,
    moderator_id INTEGER NOT NULL,
    reason TEXT NOT NULL,
    created_at INTEGER NOT NULL);
CREATE INDEX warnings_member ON warnings(guild_id, user_id);
CREATE TABLE tempbans(
    guild_id INTEGER NOT NULL,
    user_id INTEGER NOT NULL,
    moderator_id INTEGER NOT NULL,
    reason TEXT NOT NULL,
    expires_at INTEGER NOT NULL,
    PRIMARY KEY (guild_id, user_id)) WITHOUT ROWID;
CREATE INDEX tempbans_expiry ON tempbans(expires_at);
)sql";
constexpr const char* w5_settings = "SELECT prefix, locale, xp_enabled FROM guild_settings WHERE guild_id = ?";
constexpr const char* w5_member_xp = "SELECT xp FROM member_xp WHERE guild_id = ? AND user_id = ?";
constexpr const char* w5_rank = "SELECT count(*) FROM member_xp WHERE guild_id = ? AND xp > ?";
constexpr const char* w5_warnings =
    "SELECT id, reason, created_at FROM warnings WHERE guild_id = ? AND user_id = ? ORDER BY id DESC LIMIT 10";
constexpr const char* w5_ban_check =
    "SELECT expires_at FROM tempbans WHERE guild_id = ? AND user_id = ? AND expires_at > ?";
constexpr const char* w5_ban_sweep =
    "SELECT guild_id, user_id FROM tempbans WHERE expires_at <= ? ORDER BY expires_at LIMIT 25";
constexpr const char* w5_xp_upsert =
    "INSERT INTO member_xp(guild_id, user_id, xp, messages, last_message_at) VALUES (?, ?, ?, 1, ?) "
    "ON CONFLICT(guild_id, user_id) DO UPDATE SET xp = xp + excluded.xp, messages = messages + 1, "
    "last_message_at = excluded.last_message_at";
constexpr const char* w5_warn_insert =
    "INSERT INTO warnings(guild_id, user_id, moderator_id, reason, created_at) VALUES (?, ?, ?, ?, ?)";
constexpr const char* w5_warn_count = "SELECT count(*) FROM warnings WHERE guild_id = ? AND user_id = ?";
constexpr const char* w5_tempban_upsert =
    "INSERT INTO tempbans(guild_id, user_id, moderator_id, reason, expires_at) VALUES (?, ?, ?, ?, ?) "
    "ON CONFLICT(guild_id, user_id) DO UPDATE SET moderator_id = excluded.moderator_id, "
    "reason = excluded.reason, expires_at = excluded.expires_at";

/// W1/W2: one point read.
struct kv_get
{
    std::int64_t id;
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

/// W5: one bot event, as the bot's persistence layer would send it (one request per event).
struct w5_request
{
    const w5_event* e;
    bool writes() const { return e->kind >= ev::xp; }
    template <class C>
    std::int64_t operator()(C& c) const
    {
        switch (e->kind) {
        case ev::settings: {
            auto s = c.template query_one<std::tuple<std::string, std::string, std::int64_t>>(w5_settings, e->guild);
            return s ? 1 : 0;
        }
        case ev::rank: {
            auto xp = c.template query_one<std::int64_t>(w5_member_xp, e->guild, e->user);
            if (!xp)
                return 0;
            return c.template query_one<std::int64_t>(w5_rank, e->guild, *xp).value_or(0) + 1;
        }
        case ev::warnings:
            return static_cast<std::int64_t>(
                c.template query<std::tuple<std::int64_t, std::string, std::int64_t>>(w5_warnings, e->guild, e->user)
                    .size());
        case ev::ban_check:
            return c.template query_one<std::int64_t>(w5_ban_check, e->guild, e->user, e->now_ms) ? 1 : 0;
        case ev::ban_sweep:
            return static_cast<std::int64_t>(
                c.template query<std::tuple<std::int64_t, std::int64_t>>(w5_ban_sweep, e->now_ms).size());
        case ev::xp:
            return c.execute(w5_xp_upsert, e->guild, e->user, e->amount, e->now_ms);
        case ev::warn:
            c.execute(w5_warn_insert, e->guild, e->user, e->moderator, *e->text, e->now_ms);
            return c.template query_one<std::int64_t>(w5_warn_count, e->guild, e->user).value_or(0);
        case ev::tempban:
            return c.execute(w5_tempban_upsert, e->guild, e->user, e->moderator, *e->text, e->now_ms + e->amount);
        }
        return 0;
    }
};

std::int64_t tally(const std::optional<std::string>& v) { return v ? 1 : 0; }
std::int64_t tally(std::int64_t v) { return v; }

template <class T>
struct is_tuple : std::false_type
{
};
template <class... T>
struct is_tuple<std::tuple<T...>> : std::true_type
{
};

// ---------------------------------------------------------------------------------------------------------
// RAW: the C API on one thread; each SQL text prepared once and reused (looked up by its address).

[[noreturn]] void throw_sqlite(sqlite3* db, const char* what)
{
    throw std::runtime_error(fmt::format("{}: {} (extended code {})", what, sqlite3_errmsg(db),
                                         sqlite3_extended_errcode(db)));
}

constexpr const char* common_pragmas = "PRAGMA journal_mode=WAL; PRAGMA foreign_keys=ON; PRAGMA busy_timeout=5000; "
                                       "PRAGMA journal_size_limit=67108864;";

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
            return [&]<std::size_t... I>(std::index_sequence<I...>) {
                return T{column<std::tuple_element_t<I, T>>(s, static_cast<int>(I))...};
            }(std::make_index_sequence<std::tuple_size_v<T>>{});
        else
            return column<T>(s, 0);
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
        (s->bind(++i, a), ...);
        return *s;
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
            return [&]<std::size_t... I>(std::index_sequence<I...>) {
                return T{column<std::tuple_element_t<I, T>>(st, static_cast<int>(I))...};
            }(std::make_index_sequence<std::tuple_size_v<T>>{});
        else
            return column<T>(st, 0);
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
            asio::use_awaitable, fn);
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
    auto read(const Fn& fn) { return db->run(fn, false); }
    template <class Fn>
    auto write(const Fn& fn) { return db->run(fn, false); } // one statement: its own autocommit transaction
    template <class Fn>
    auto write_tx(const Fn& fn) { return db->run(fn, true); }
};

struct actor_system
{
    dbactor::database* db;
    template <class Fn>
    auto read(const Fn& fn) { return db->async_read(fn, asio::use_awaitable); }
    template <class Fn>
    auto write(const Fn& fn) { return db->async_write(fn, asio::use_awaitable); }
    template <class Fn>
    auto write_tx(const Fn& fn) { return db->async_write(fn, asio::use_awaitable); }
};

// ---------------------------------------------------------------------------------------------------------
// Drivers: RAW runs the requests one after another on this thread; MUTEX and DBACTOR run `tasks`
// coroutines on one io_context (this thread), each taking the next request and awaiting it.

template <class Op>
struct run_state
{
    const std::vector<Op>* ops;
    bool tx = false;     ///< a write request runs inside BEGIN IMMEDIATE … COMMIT (W4)
    bool record = false; ///< record each request's latency
    std::size_t next = 0;
    std::size_t done = 0;
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
        if (st.tx && op.writes())
            c.exec("BEGIN IMMEDIATE");
        st.acc += tally(op(c));
        if (st.tx && op.writes())
            c.exec("COMMIT");
        if (st.record)
            st.lat_ns[i] = std::chrono::duration_cast<std::chrono::nanoseconds>(clock_type::now() - t0).count();
        ++st.done;
    }
    return std::chrono::duration<double>(clock_type::now() - start).count();
}

template <class System, class Op>
asio::awaitable<void> task_loop(System* sys, run_state<Op>* st)
{
    while (st->next < st->ops->size()) {
        const std::size_t i = st->next++;
        const Op& op = (*st->ops)[i]; // named before co_await (STYLE.md: GCC 12.2 and temporaries)
        const auto t0 = clock_type::now();
        if (!op.writes())
            st->acc += tally(co_await sys->read(op));
        else if (st->tx)
            st->acc += tally(co_await sys->write_tx(op));
        else
            st->acc += tally(co_await sys->write(op));
        if (st->record)
            st->lat_ns[i] = std::chrono::duration_cast<std::chrono::nanoseconds>(clock_type::now() - t0).count();
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

void fail(const std::string& msg) { throw std::runtime_error(msg); }

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
            raw_conn c = create(bot_template_);
            c.exec(w5_schema);
            c.exec("BEGIN");
            std::mt19937_64 rng(7);
            static const std::string prefixes[] = {"!", "?", "$", ".", "b!"};
            static const std::string locales[] = {"en-US", "en-GB", "de", "fr", "pt-BR", "ja"};
            const std::int64_t now_ms = 1'717'200'000'000;
            for (std::size_t g = 0; g < data_.guild_ids.size(); ++g) {
                const std::int64_t guild = data_.guild_ids[g];
                c.execute("INSERT INTO guild_settings(guild_id, prefix, locale, xp_enabled, mod_log_channel_id) "
                          "VALUES (?, ?, ?, ?, ?)",
                          guild, prefixes[rng() % 5], locales[rng() % 6], static_cast<std::int64_t>(rng() % 10 != 0),
                          snowflake(rng, now_ms - 1'000'000));
                for (auto user : data_.members[g]) {
                    const auto messages = static_cast<std::int64_t>(1 + rng() % 5'000);
                    c.execute("INSERT INTO member_xp(guild_id, user_id, xp, messages, last_message_at) "
                              "VALUES (?, ?, ?, ?, ?)",
                              guild, user, messages * 20, messages,
                              now_ms - static_cast<std::int64_t>(rng() % 1'000'000'000));
                    data_.w5_messages_before += messages;
                }
            }
            const std::size_t members = data_.guild_ids.size() * cfg_.members_per_guild;
            for (std::size_t i = 0; i < members / 5; ++i) { // warnings for a fifth of the members
                const auto g = rng() % data_.guild_ids.size();
                const auto& m = data_.members[g];
                c.execute(w5_warn_insert, data_.guild_ids[g], m[rng() % m.size()], m[rng() % m.size()],
                          data_.reasons[rng() % data_.reasons.size()],
                          now_ms - static_cast<std::int64_t>(rng() % 10'000'000'000));
                ++data_.w5_warnings_before;
            }
            for (std::size_t i = 0; i < members / 50; ++i) { // tempbans, some expired, some active
                const auto g = rng() % data_.guild_ids.size();
                const auto& m = data_.members[g];
                c.execute(w5_tempban_upsert, data_.guild_ids[g], m[rng() % m.size()], m[rng() % m.size()],
                          data_.reasons[rng() % data_.reasons.size()],
                          now_ms - 3'600'000 * 24 * 7 + static_cast<std::int64_t>(rng() % (3'600'000LL * 24 * 14)));
            }
            c.exec("COMMIT");
            c.exec("PRAGMA wal_checkpoint(TRUNCATE)");
        }
    }

    int run()
    {
        header();
        make_templates();
        std::vector<workload> wls{
            {"W1", true, false},       {"W2", true, false}, {"W3_NORMAL", false, false},
            {"W3_FULL", true, false},  {"W4", true, false}, {"W5", true, true},
        };
        for (int round = 1; round <= cfg_.rounds; ++round) {
            // Rotate the order of the systems from round to round, so that none always runs first (cold)
            // or last (after the others have warmed the OS page cache and the CPU frequency).
            std::array<system_id, 3> order = all_systems;
            std::rotate(order.begin(), order.begin() + (round - 1) % 3, order.end());
            emit_comment(fmt::format("round {}/{}: order {} {} {}", round, cfg_.rounds, system_name(order[0]),
                                     system_name(order[1]), system_name(order[2])));
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
        emit_comment(fmt::format("dbactor-bench: rows={} W1={} W2={} W3={} W4={} W5={} tasks={} rounds={}{}", cfg_.rows,
                                 cfg_.w1, cfg_.w2, cfg_.w3, cfg_.w4, cfg_.w5, cfg_.tasks, cfg_.rounds,
                                 cfg_.quick ? " (quick)" : ""));
        emit_comment(fmt::format("sqlite {}; MUTEX pool threads={}; DBACTOR readers={} max_batch={}; dir {}",
                                 sqlite3_libversion(), cfg_.pool_threads, cfg_.readers,
                                 cfg_.max_batch ? fmt::format("{}", *cfg_.max_batch) : "default", work_.string()));
        emit_comment("synchronous=FULL except W3_NORMAL; ratio = system/raw of the same round: for throughput "
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
            check_equal(fmt::format("{} W1 rows found", system_name(s)), st.acc, static_cast<std::int64_t>(ops.size()));
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
            check_equal(fmt::format("{} W2 rows found", system_name(s)), st.acc, static_cast<std::int64_t>(ops.size()));
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
                        scalar(db, "SELECT count(*) FROM kv"), static_cast<std::int64_t>(cfg_.rows) + n);
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
                        scalar(db, "SELECT count(*) FROM kv"), static_cast<std::int64_t>(cfg_.rows) + n);
            out = {{"rows_per_s", static_cast<double>(n) / secs}};
        }
        else if (w.name == "W5") {
            std::vector<w5_request> ops;
            for (const auto& e : data_.events)
                ops.push_back({&e});
            run_state<w5_request> st{&ops};
            st.record = true;
            const double secs = execute(s, db, w.full_sync, st, cfg_.tasks);
            check_equal(fmt::format("{} W5 events completed", system_name(s)), static_cast<std::int64_t>(st.done),
                        static_cast<std::int64_t>(ops.size()));
            check_equal(fmt::format("{} W5 messages counted afterwards", system_name(s)),
                        scalar(db, "SELECT sum(messages) FROM member_xp"),
                        data_.w5_messages_before + data_.w5_xp_events);
            check_equal(fmt::format("{} W5 warnings afterwards", system_name(s)),
                        scalar(db, "SELECT count(*) FROM warnings"), data_.w5_warnings_before + data_.w5_warn_events);
            out = {{"events_per_s", static_cast<double>(ops.size()) / secs}, {"p99_us", percentile_us(st.lat_ns, 0.99)}};
        }
        remove_db(db);
        return out;
    }

    /// Opens `db` through system `s`, runs the requests, closes it (open and close are not timed).
    template <class Op>
    double execute(system_id s, const fs::path& db, bool full, run_state<Op>& st, std::size_t tasks)
    {
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
            o.readers = cfg_.readers;
            if (cfg_.max_batch)
                o.max_batch = *cfg_.max_batch;
            auto d = dbactor::database::open(std::move(o));
            actor_system sys{&d};
            const double secs = run_async(sys, st, tasks);
            const auto x = d.stats();
            actor_note_ = fmt::format("DBACTOR stats: write_batches={} write_batch_mean={:.1f} write_batch_max={} "
                                      "read_batches={} read_batch_mean={:.1f} queue_depth_max={}",
                                      x.write_batches, x.write_batch_mean, x.write_batch_max, x.read_batches,
                                      x.read_batch_mean, x.queue_depth_max);
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
            emit(fmt::format("RATIO {} {} dbactor/raw=x{:.3f} mutex/raw=x{:.3f} {} round={}", r.workload, r.label, a, m,
                             r.higher_is_better ? "higher_is_better" : "lower_is_better", round));
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
                        line += fmt::format(" {}={}", std::get<2>(key), format_value({std::get<2>(key), median(vals)}));
                if (!line.empty())
                    emit(fmt::format("MEDIAN {} {}{}", system_name(s), wl, line));
            }
        for (const auto& r : ratio_specs()) {
            auto it = ratio_values_.find({r.workload, r.label});
            if (it == ratio_values_.end())
                continue;
            emit(fmt::format("MEDIAN {} {} dbactor/raw=x{:.3f} mutex/raw=x{:.3f} {}", r.workload, r.label,
                             median(it->second.first), median(it->second.second),
                             r.higher_is_better ? "higher_is_better" : "lower_is_better"));
        }
    }

    /// Every line printed must have the documented form, with finite positive figures; 3 otherwise.
    int check_lines() const
    {
        const std::string num = R"([0-9]+(\.[0-9]+)?)";
        const std::string sys = "(RAW|MUTEX|DBACTOR)";
        const std::string body = "(W1 mean_us=" + num + " p50_us=" + num + " p99_us=" + num + "|W2 ops_per_s=" + num +
                                 "|W3_(NORMAL|FULL) commits_per_s=" + num + "|W4 rows_per_s=" + num +
                                 "|W5 events_per_s=" + num + " p99_us=" + num + ")";
        const std::string ratio = "W1 p50|W1 p99|W2 ops_per_s|W3_NORMAL commits_per_s|W3_FULL commits_per_s|"
                                  "W4 rows_per_s|W5 events_per_s|W5 p99";
        const std::regex result_re("^" + sys + " " + body + "$");
        const std::regex median_re("^MEDIAN " + sys + " " + body + "$");
        const std::regex ratio_re("^RATIO (" + ratio + ") dbactor/raw=x" + num + " mutex/raw=x" + num +
                                  " (higher|lower)_is_better round=[0-9]+$");
        const std::regex median_ratio_re("^MEDIAN (" + ratio + ") dbactor/raw=x" + num + " mutex/raw=x" + num +
                                         " (higher|lower)_is_better$");
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
            if (l.find("=0 ") != std::string::npos || l.ends_with("=0") || l.find("=x0.000") != std::string::npos) {
                std::fprintf(stderr, "dbactor-bench: FAILED: zero figure: %s\n", l.c_str());
                ++bad;
            }
        }
        const std::size_t workloads = cfg_.only.empty() ? 6 : cfg_.only.size();
        if (results != workloads * 3 * static_cast<std::size_t>(cfg_.rounds)) {
            std::fprintf(stderr, "dbactor-bench: FAILED: %zu result lines, expected %zu\n", results,
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
    std::string actor_note_; ///< the actor's own counters for the last DBACTOR run, printed as a comment
    std::vector<std::string> lines_;
    std::map<std::tuple<std::string, system_id, std::string>, std::vector<double>> values_;
    std::map<std::pair<std::string, std::string>, std::pair<std::vector<double>, std::vector<double>>> ratio_values_;
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
