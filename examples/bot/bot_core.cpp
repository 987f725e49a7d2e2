// The bot example's core: a simulated gateway, per-guild handlers on strands, typed requests, supervised
// background loops, graceful shutdown and the summary.
#include "bot_core.hpp"

#include <bot_migrations.hpp>

#include <dbactor/dbactor.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <fmt/format.h>
#include <fmt/ostream.h>

#include <algorithm>
#include <atomic>
#include <csignal>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <ostream>
#include <random>
#include <stdexcept>
#include <string_view>
#include <thread>
#include <tuple>
#include <typeinfo>
#include <vector>

#include <cxxabi.h>
#include <pthread.h>
#include <signal.h>

namespace bot {

/// Thrown by the injected fault of --fault-every with --fault-non-std: not a std::exception. (Outside the
/// anonymous namespace only so that the log names it `bot::injected_fault`.)
struct injected_fault
{
    const char* what;
};

namespace {

namespace asio = boost::asio;
using namespace std::chrono_literals;
using steady = std::chrono::steady_clock;
using asio::use_awaitable;

std::int64_t unix_ms()
{
    return std::chrono::duration_cast<std::chrono::milliseconds>(
               std::chrono::system_clock::now().time_since_epoch())
        .count();
}

void log(std::string_view level, std::string_view what)
{
    // One write per line, so lines from different threads do not interleave.
    std::string line = fmt::format("[{}] {}\n", level, what);
    std::fwrite(line.data(), 1, line.size(), stderr);
}

/// For a log line: what() of a std::exception, or the type of anything else thrown (which would otherwise
/// escape io_context::run and terminate the process).
std::string describe(std::exception_ptr e)
{
    try {
        std::rethrow_exception(e);
    }
    catch (const std::exception& ex) {
        return ex.what();
    }
    catch (...) {
        std::string type = "unknown";
        if (const std::type_info* t = abi::__cxa_current_exception_type()) {
            int status = 0;
            char* name = abi::__cxa_demangle(t->name(), nullptr, nullptr, &status);
            type = status == 0 && name ? name : t->name();
            std::free(name);
        }
        return fmt::format("an exception of type {}, not derived from std::exception", type);
    }
}

/// Blocks SIGINT and SIGTERM in the calling thread, and so in every thread it starts, until restore(). A
/// signal that arrives meanwhile stays pending instead of killing the process with its default action;
/// once the service's signal_set exists, restore() lets it through to the signal_set. The destructor
/// discards what is still pending (a second signal during the shutdown) before restoring the mask.
class blocked_stop_signals
{
public:
    blocked_stop_signals()
    {
        sigemptyset(&set_);
        sigaddset(&set_, SIGINT);
        sigaddset(&set_, SIGTERM);
        block();
    }
    blocked_stop_signals(const blocked_stop_signals&) = delete;
    blocked_stop_signals& operator=(const blocked_stop_signals&) = delete;
    ~blocked_stop_signals()
    {
        if (blocked_) {
            const timespec now{};
            while (sigtimedwait(&set_, nullptr, &now) > 0) {
            }
        }
        restore();
    }
    void block()
    {
        pthread_sigmask(SIG_BLOCK, &set_, &old_);
        blocked_ = true;
    }
    void restore()
    {
        if (blocked_)
            pthread_sigmask(SIG_SETMASK, &old_, nullptr);
        blocked_ = false;
    }

private:
    sigset_t set_{}, old_{};
    bool blocked_ = false;
};

// ---------------------------------------------------------------------------------------------------------
// Typed requests: one struct per thing the bot stores, each a callable taking dbactor::connection&.

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
        auto row = c.query_one<std::tuple<std::string, std::int64_t, bool, std::int64_t>>(
            "SELECT prefix, xp_multiplier, ai_enabled, warn_limit FROM guild_settings WHERE guild_id = ?",
            guild);
        if (!row)
            return {};
        auto& [prefix, mult, ai, warn] = *row;
        return {std::move(prefix), mult, ai, warn};
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
    std::optional<rank> operator()(dbactor::connection& c) const
    {
        auto me = c.query_one<std::tuple<std::int64_t, std::int64_t>>(
            "SELECT messages, xp FROM members WHERE guild_id = ? AND user_id = ?", guild, user);
        if (!me)
            return std::nullopt;
        auto above = c.query_one<std::int64_t>(
            "SELECT count(*) FROM members WHERE guild_id = ? AND xp > ?", guild, std::get<1>(*me));
        return rank{std::get<0>(*me), std::get<1>(*me), above.value_or(0) + 1};
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

struct counters
{
    std::atomic<std::uint64_t> emitted{0}, messages{0}, commands{0}, joins{0};
    std::atomic<std::uint64_t> handled{0}, failed{0}, rate_limited{0};
    std::atomic<std::uint64_t> xp_awarded{0}, warnings{0}, bans{0}, auto_bans{0}, games{0}, wins{0},
        ai_answers{0}, ranks{0}, settings_changed{0};
    std::atomic<std::uint64_t> lifted{0};
    std::atomic<std::uint64_t> paused_ticks{0}; // gateway ticks skipped because too much was in flight
};

constexpr std::int64_t max_in_flight = 8192;

struct loop_report
{
    std::string name;
    std::uint64_t iterations = 0;
    std::uint64_t failures = 0;
};

// ---------------------------------------------------------------------------------------------------------
// The bot.

class bot_service
{
public:
    bot_service(const config& cfg, dbactor::database db, unsigned threads)
        : cfg_(cfg), db_(std::move(db)), threads_(threads), ioc_(static_cast<int>(threads)),
          control_(asio::make_strand(ioc_)), signals_(control_, SIGINT, SIGTERM), stop_timer_(control_),
          duration_timer_(control_), drained_timer_(control_), gateway_timer_(control_)
    {
        // From here on the signal_set owns SIGINT and SIGTERM; run() (bot::run) unblocks them only now, so
        // one that arrived while the database was booting is delivered to it rather than killing the process.
        // Per-guild state lives in shards, each owned by one strand: handlers of guilds on different shards
        // run in parallel, handlers of one guild never race, and no lock guards the guild state.
        const std::size_t n = std::max<std::size_t>(threads * 8, 8);
        for (std::size_t i = 0; i < n; ++i)
            shards_.push_back(std::make_unique<shard>(asio::make_strand(ioc_)));

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

    /// Runs everything on the io_context's threads; returns when the shutdown is complete.
    void run()
    {
        asio::co_spawn(control_, main_task(), [this](std::exception_ptr e) {
            if (!e)
                return;
            startup_failed_ = true;
            log("error", fmt::format("the bot's main task failed: {}", describe(e)));
        });
        std::vector<std::thread> pool;
        for (unsigned i = 1; i < threads_; ++i)
            pool.emplace_back([this] { ioc_.run(); });
        ioc_.run();
        for (auto& t : pool)
            t.join();
    }

    const counters& count() const { return counters_; }
    const std::vector<loop_report>& loops() const { return loop_reports_; }
    const dbactor::stats_snapshot& db_stats() const { return stats_; }
    const totals& before() const { return before_; }
    /// From the gateway's start until the last handler finished.
    double elapsed_s() const { return elapsed_s_; }
    /// From the gateway's start until the stop request.
    double running_s() const { return running_s_; }
    const std::string& stop_reason() const { return stop_reason_; }
    std::size_t limiter_buckets_removed() const { return buckets_removed_.load(); }
    std::size_t limiter_buckets_now() { return ai_.buckets() + moderation_.buckets() + commands_.buckets(); }
    bool close_failed() const { return close_failed_; }
    bool startup_failed() const { return startup_failed_; }
    std::int64_t guilds_added() const { return guilds_added_; }

    /// Handler latencies in microseconds, merged from every shard (call after run()).
    latency_histogram latencies() const
    {
        latency_histogram all;
        for (auto& s : shards_)
            all.merge(s->latencies_us);
        return all;
    }

private:
    struct guild_state
    {
        std::string_view word;                        // the word game's secret
        std::unordered_map<std::uint64_t, int> tries; // guesses per player in the current game
    };

    struct shard
    {
        explicit shard(asio::strand<asio::io_context::executor_type> s) : strand(std::move(s)) {}
        asio::strand<asio::io_context::executor_type> strand;
        std::unordered_map<std::uint64_t, guild_state> guilds; // touched only on `strand`
        latency_histogram latencies_us;                        // touched only on `strand`
    };

    shard& shard_of(std::uint64_t guild) { return *shards_[(guild >> 22) % shards_.size()]; }

    // --- lifecycle (everything below runs on control_) ---------------------------------------------------

    asio::awaitable<void> main_task()
    {
        static const dbactor::request_options register_ro{.name = "register_guilds"};
        static const dbactor::request_options totals_ro{.name = "read_totals"};
        try {
            auto snapshot = read_totals{};
            before_ = co_await db_.async_read(snapshot, totals_ro, use_awaitable);
            auto registered = register_guilds{guild_ids_, unix_ms()};
            guilds_added_ = co_await db_.async_write(registered, register_ro, use_awaitable);
        }
        catch (...) {
            log("error", fmt::format("cannot start: {}", describe(std::current_exception())));
            startup_failed_ = true;
        }
        if (startup_failed_) {
            signals_.cancel();
            auto [ignored] = co_await db_.async_close(asio::as_tuple(use_awaitable));
            co_return;
        }

        signals_.async_wait([this](boost::system::error_code ec, int sig) {
            if (!ec)
                request_stop(sig == SIGINT ? "SIGINT" : "SIGTERM");
        });
        if (cfg_.duration_s > 0) {
            duration_timer_.expires_after(
                std::chrono::duration_cast<steady::duration>(std::chrono::duration<double>(cfg_.duration_s)));
            duration_timer_.async_wait([this](boost::system::error_code ec) {
                if (!ec)
                    request_stop("duration elapsed");
            });
        }

        start_loop(
            "tempban-sweep", 250ms, [this](std::uint64_t iteration) { return sweep_tempbans(iteration); });
        start_loop("ratelimit-cleanup", 1s, [this](std::uint64_t) { return cleanup_limiters(); });
        if (cfg_.progress_every_s > 0)
            start_loop("progress",
                       std::chrono::duration_cast<steady::duration>(
                           std::chrono::duration<double>(cfg_.progress_every_s)),
                       [this](std::uint64_t iteration) { return report_progress(iteration); });

        started_ = steady::now();
        in_flight_.fetch_add(1); // held by the gateway until it stops
        asio::co_spawn(control_, gateway(), asio::detached);
        fmt::print(
            stderr,
            "[info] gateway: running, {} guilds, {} events/s, {} threads; stop with SIGINT or SIGTERM\n",
            guild_ids_.size(),
            cfg_.events_per_sec,
            threads_);

        // Wait for a stop request (signal or duration).
        if (!stop_requested_) {
            stop_timer_.expires_at(steady::time_point::max());
            co_await stop_timer_.async_wait(asio::as_tuple(use_awaitable));
        }

        // Shutdown: stop the gateway and the loops, let in-flight handlers finish, then close the database.
        stopping_ = true;
        running_s_ = std::chrono::duration<double>(steady::now() - started_).count();
        gateway_timer_.cancel();
        for (auto& t : loop_timers_)
            t->cancel();
        signals_.cancel();
        duration_timer_.cancel();
        if (!drained_) {
            drained_timer_.expires_at(steady::time_point::max());
            co_await drained_timer_.async_wait(asio::as_tuple(use_awaitable));
        }
        elapsed_s_ = std::chrono::duration<double>(steady::now() - started_).count();
        stats_ = db_.stats();
        auto [e] = co_await db_.async_close(asio::as_tuple(use_awaitable));
        if (e) {
            close_failed_ = true;
            log("error", fmt::format("closing the database failed: {}", describe(e)));
        }
        fmt::print(stderr,
                   "[info] shutdown: {}; gateway stopped, handlers drained, database closed\n",
                   stop_reason_);
    }

    void request_stop(std::string reason)
    {
        if (stop_requested_)
            return;
        stop_requested_ = true;
        stop_reason_ = std::move(reason);
        stop_timer_.cancel();
    }

    /// Called from any thread when a handler, the gateway or a loop is done.
    void release()
    {
        if (in_flight_.fetch_sub(1) == 1)
            asio::post(control_, [this] {
                drained_ = true;
                drained_timer_.cancel();
            });
    }

    // --- the simulated gateway -----------------------------------------------------------------------------

    asio::awaitable<void> gateway()
    {
        std::mt19937_64 rng(cfg_.seed ^ static_cast<std::uint64_t>(unix_ms()));
        snowflake_generator ids(2, 0);
        std::uniform_real_distribution<double> unit(0, 1);
        constexpr auto tick = 10ms;
        const double per_tick = cfg_.events_per_sec * std::chrono::duration<double>(tick).count();
        double owed = 0;
        auto next_tick = steady::now();
        while (!stopping_ && !stop_requested_) {
            // Backpressure: with too many events in flight the gateway stops reading (as a bot stops reading
            // its socket), so a database that cannot keep up lowers the event rate instead of growing memory.
            if (in_flight_.load() >= max_in_flight) {
                ++counters_.paused_ticks;
            }
            else {
                owed += per_tick;
                while (owed >= 1) {
                    owed -= 1;
                    emit(make_event(rng, unit, ids));
                }
            }
            next_tick += tick;
            gateway_timer_.expires_at(next_tick);
            co_await gateway_timer_.async_wait(asio::as_tuple(use_awaitable));
        }
        release();
    }

    event
    make_event(std::mt19937_64& rng, std::uniform_real_distribution<double>& unit, snowflake_generator& ids)
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

    void emit(event ev)
    {
        ++counters_.emitted;
        in_flight_.fetch_add(1);
        auto& s = shard_of(ev.guild);
        asio::co_spawn(s.strand, dispatch(s, std::move(ev)), asio::detached);
    }

    // --- handlers (each runs on its guild's shard strand)
    // ---------------------------------------------------

    asio::awaitable<void> dispatch(shard& s, event ev)
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
        const auto us =
            std::chrono::duration_cast<std::chrono::microseconds>(steady::now() - ev.emitted).count();
        s.latencies_us.record(static_cast<std::uint32_t>(std::clamp<std::int64_t>(us, 0, UINT32_MAX)));
        release();
    }

    asio::awaitable<void> on_join(const event& ev)
    {
        static const dbactor::request_options ro{.name = "add_member"};
        auto req =
            add_member{ev.guild, ev.user, static_cast<std::int64_t>(snowflake_generator::unix_ms_of(ev.id))};
        co_await db_.async_write(req, ro, use_awaitable);
    }

    asio::awaitable<void> on_message(const event& ev)
    {
        static const dbactor::request_options ro{.name = "record_message"};
        auto req = record_message{ev.guild, ev.user, ev.id, ev.arg};
        const auto xp = co_await db_.async_write(req, ro, use_awaitable);
        counters_.xp_awarded += static_cast<std::uint64_t>(xp);
    }

    asio::awaitable<void> on_command(shard& s, const event& ev)
    {
        // The limiter first: a refused command costs no database round trip.
        const auto now = steady::now();
        sliding_window_limiter& limiter =
            ev.command == command_kind::ask                                          ? ai_
            : (ev.command == command_kind::rank || ev.command == command_kind::word) ? commands_
                                                                                     : moderation_;
        if (limiter.check(ev.user, now) != steady::duration::zero()) {
            ++counters_.rate_limited; // the reply would be "slow down, try again in N s"
            co_return;
        }

        static const dbactor::request_options settings_ro{.name = "load_settings"};
        // Every command that passed its limiter reads its guild's settings (the read-heavy path).
        auto settings_req = load_settings{ev.guild};
        const guild_settings settings = co_await db_.async_read(settings_req, settings_ro, use_awaitable);

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

    // Reasons are static strings: no std::string temporary is created inside a co_await expression (see
    // STYLE.md on GCC 12).
    static constexpr const char* reason_warnings = "warning limit reached";
    static constexpr const char* reason_command = "tempban command";

    asio::awaitable<void> ban(std::uint64_t guild,
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

    asio::awaitable<void> play_word(shard& s, const event& ev)
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

    // --- supervised background loops
    // ------------------------------------------------------------------------

    using loop_body = std::function<asio::awaitable<void>(std::uint64_t iteration)>;

    /// Runs `body` every `period` until shutdown. An exception in one iteration is logged with the loop's
    /// name and the loop goes on; a loop that exits is reported (an error unless the bot is stopping).
    void start_loop(std::string name, steady::duration period, loop_body body)
    {
        const std::size_t index = loop_reports_.size();
        loop_reports_.push_back({name, 0, 0});
        loop_timers_.push_back(std::make_unique<asio::steady_timer>(control_));
        in_flight_.fetch_add(1);
        asio::co_spawn(
            control_, supervised(index, period, std::move(body)), [this, name](std::exception_ptr e) {
                if (e) {
                    log("error", fmt::format("loop {}: exited with an exception: {}", name, describe(e)));
                }
                else if (!stopping_) {
                    log("error", fmt::format("loop {}: exited while the bot is running", name));
                }
                else {
                    log("info", fmt::format("loop {}: stopped", name));
                }
                release();
            });
    }

    asio::awaitable<void> supervised(std::size_t index, steady::duration period, loop_body body)
    {
        auto& timer = *loop_timers_[index];
        while (!stopping_) {
            auto& report = loop_reports_[index];
            const auto iteration = ++report.iterations;
            try {
                co_await body(iteration);
            }
            catch (...) {
                // Anything thrown, not only std::exception: whatever escaped here would end io_context::run.
                ++loop_reports_[index].failures;
                log("error",
                    fmt::format("loop {}: iteration {} failed: {}",
                                report.name,
                                iteration,
                                describe(std::current_exception())));
            }
            if (stopping_)
                break;
            timer.expires_after(period);
            co_await timer.async_wait(asio::as_tuple(use_awaitable));
        }
    }

    asio::awaitable<void> sweep_tempbans(std::uint64_t iteration)
    {
        static const dbactor::request_options ro{.name = "lift_expired_bans"};
        const bool fault = cfg_.fault_every != 0 && iteration % cfg_.fault_every == 0;
        auto req = lift_expired_bans{unix_ms(), fault, cfg_.fault_is_std};
        const auto lifted = co_await db_.async_write(req, ro, use_awaitable);
        counters_.lifted += static_cast<std::uint64_t>(lifted);
    }

    asio::awaitable<void> cleanup_limiters()
    {
        const auto now = steady::now();
        buckets_removed_ += ai_.cleanup(now) + moderation_.cleanup(now) + commands_.cleanup(now);
        co_return;
    }

    asio::awaitable<void> report_progress(std::uint64_t iteration)
    {
        if (iteration == 1)
            co_return; // the first iteration runs at the start, with nothing to report yet
        const auto handled = counters_.handled.load(), failed = counters_.failed.load();
        const auto emitted = counters_.emitted.load();
        log("info",
            fmt::format("progress: {} events handled ({} failed), {} in flight, after {:.1f} s",
                        handled,
                        failed,
                        emitted - handled - failed,
                        std::chrono::duration<double>(steady::now() - started_).count()));
        co_return;
    }

    const config& cfg_;
    dbactor::database db_;
    unsigned threads_;
    asio::io_context ioc_;
    asio::strand<asio::io_context::executor_type> control_;
    asio::signal_set signals_;
    asio::steady_timer stop_timer_, duration_timer_, drained_timer_, gateway_timer_;
    std::vector<std::unique_ptr<asio::steady_timer>> loop_timers_;
    std::vector<loop_report> loop_reports_;
    std::vector<std::unique_ptr<shard>> shards_;
    std::vector<std::uint64_t> guild_ids_;
    std::vector<member_roster> rosters_; // the gateway's view of each guild's members (touched on control_)

    sliding_window_limiter ai_{"ai", 10, 60s};
    sliding_window_limiter moderation_{"moderation", 5, 60s};
    sliding_window_limiter commands_{"commands", 15, 30s};
    std::atomic<std::size_t> buckets_removed_{0};

    counters counters_;
    std::atomic<std::int64_t> in_flight_{0};
    // Touched on control_ only, except stopping_, which handlers' completions may read elsewhere.
    bool stop_requested_ = false, drained_ = false, close_failed_ = false, startup_failed_ = false;
    std::atomic<bool> stopping_{false};
    std::int64_t guilds_added_ = 0;
    std::string stop_reason_;
    steady::time_point started_;
    double elapsed_s_ = 0, running_s_ = 0;
    totals before_;
    dbactor::stats_snapshot stats_;
};

std::string ms(std::uint64_t ns)
{
    return fmt::format("{:.3f} ms", static_cast<double>(ns) / 1e6);
}

void print_lane(std::ostream& out, std::string_view name, const dbactor::lane_stats& l)
{
    fmt::print(out,
               "database {:<5}: {} requests ({} failed); queue wait p50 {} p99 {}; execution p50 {} p99 {}\n",
               name,
               l.completed,
               l.failed,
               ms(l.queue_wait.p50_ns),
               ms(l.queue_wait.p99_ns),
               ms(l.execution.p50_ns),
               ms(l.execution.p99_ns));
}

/// Compares the database after the run with what the handlers reported writing.
bool self_check(
    const config& cfg, const totals& before, std::int64_t guilds_added, const counters& c, std::ostream& out)
{
    dbactor::options o;
    o.path = cfg.db_path;
    o.create = false;
    o.migrations = bot_migrations();
    auto db = dbactor::database::open(std::move(o));
    const totals after = db.read(read_totals{});
    const auto fk = db.read([](dbactor::connection& conn) {
        return conn.query<std::string>("SELECT \"table\" FROM pragma_foreign_key_check");
    });
    db.close();

    std::vector<std::string> problems;
    auto expect = [&](std::string_view what, std::int64_t got, std::int64_t want) {
        if (got != want)
            problems.push_back(fmt::format("{}: the database says {}, the handlers say {}", what, got, want));
    };
    expect("events handled vs emitted",
           static_cast<std::int64_t>(c.handled),
           static_cast<std::int64_t>(c.emitted));
    expect("failed handlers", static_cast<std::int64_t>(c.failed), 0);
    expect("new guilds", after.guilds - before.guilds, guilds_added);
    expect("new members", after.members - before.members, static_cast<std::int64_t>(c.joins));
    expect("messages", after.messages - before.messages, static_cast<std::int64_t>(c.messages));
    expect("xp", after.xp - before.xp, static_cast<std::int64_t>(c.xp_awarded));
    expect("warnings", after.warnings - before.warnings, static_cast<std::int64_t>(c.warnings));
    expect("bans", after.bans - before.bans, static_cast<std::int64_t>(c.bans));
    expect("active tempbans vs unlifted bans", after.active_bans, after.unlifted);
    expect("word games", after.games - before.games, static_cast<std::int64_t>(c.games));
    expect("foreign key violations", static_cast<std::int64_t>(fk.size()), 0);
    expect("schema version", after.schema_version, bot_migrations().latest_version());
    if (problems.empty()) {
        fmt::print(out,
                   "self-check: ok (members +{}, messages +{}, xp +{}, warnings +{}, bans +{}, games +{}, "
                   "{} tempbans active)\n",
                   after.members - before.members,
                   after.messages - before.messages,
                   after.xp - before.xp,
                   after.warnings - before.warnings,
                   after.bans - before.bans,
                   after.games - before.games,
                   after.active_bans);
        return true;
    }
    for (auto& p : problems)
        fmt::print(out, "self-check: FAILED: {}\n", p);
    return false;
}

} // namespace

dbactor::migration_set schema()
{
    return bot_migrations();
}

int run(const config& cfg, std::ostream& out)
{
    const unsigned threads = cfg.threads ? cfg.threads : std::max(1u, std::thread::hardware_concurrency());
    dbactor::options o;
    o.path = cfg.db_path;
    o.synchronous = cfg.synchronous;
    o.migrations = bot_migrations();
    o.queue_capacity = 4096;
    o.readers = cfg.readers;
    o.slow_request = std::chrono::milliseconds(250);
    // At most one slow-request line per second: under overload every request is slow, and a line each
    // would bury everything else.
    struct slow_log
    {
        std::atomic<std::int64_t> last_ns{0};
        std::atomic<std::uint64_t> suppressed{0};
    };
    o.on_slow_request = [state = std::make_shared<slow_log>()](const dbactor::slow_request_info& info) {
        const std::int64_t now = steady::now().time_since_epoch().count();
        std::int64_t last = state->last_ns.load();
        if (now - last < 1'000'000'000 || !state->last_ns.compare_exchange_strong(last, now)) {
            ++state->suppressed;
            return;
        }
        log("warning",
            fmt::format("slow request {}: waited {} and ran {} ({} more slow requests not shown)",
                        info.name.empty() ? "(unnamed)" : info.name,
                        ms(static_cast<std::uint64_t>(info.queue_wait.count())),
                        ms(static_cast<std::uint64_t>(info.execution.count())),
                        state->suppressed.exchange(0)));
    };
    o.on_log = [](dbactor::log_level level, std::string_view msg) {
        if (level >= dbactor::log_level::warning)
            log(level == dbactor::log_level::error ? "error" : "warning", fmt::format("dbactor: {}", msg));
    };

    // Before any thread starts (database::open starts the actor's): a SIGINT or SIGTERM during the boot
    // waits, blocked, for the service's signal_set instead of killing the process; the bot then starts and
    // stops at once, gracefully.
    blocked_stop_signals stop_signals;
    dbactor::database db;
    try {
        const auto parent = std::filesystem::path(cfg.db_path).parent_path();
        if (!parent.empty())
            std::filesystem::create_directories(parent);
        log("info", fmt::format("opening {}: integrity check, pragmas, migrations", cfg.db_path));
        db = dbactor::database::open(std::move(o));
    }
    catch (const std::exception& e) {
        fmt::print(stderr, "[error] cannot start: {}\n", e.what());
        return 1;
    }
    const auto& boot = db.boot_report();
    const auto applied = std::count_if(
        boot.migrations.begin(), boot.migrations.end(), [](const auto& m) { return m.applied_now; });
    fmt::print(out,
               "dbactor-bot: database {} (schema version {}, {} migration(s) applied now, boot {:.1f} ms)\n",
               cfg.db_path,
               boot.schema_version,
               applied,
               static_cast<double>(boot.total.count()) / 1000.0);
    out.flush();

    bot_service service(cfg, std::move(db), threads);
    stop_signals.restore(); // the signal_set exists: a pending signal reaches it now
    service.run();
    // Shutting down already: a second signal during the summary and the self-check is ignored.
    stop_signals.block();
    if (service.startup_failed())
        return 1;

    const auto& c = service.count();
    const latency_histogram lat = service.latencies();
    auto pct = [&](double p) -> double { return lat.percentile(p) / 1000.0; };
    const double secs = service.elapsed_s();
    fmt::print(out,
               "stopped: {} after {:.2f} s; in-flight handlers drained in {:.2f} s\n",
               service.stop_reason(),
               service.running_s(),
               secs - service.running_s());
    fmt::print(
        out,
        "gateway: emitted {} events (messages {}, commands {}, joins {}); paused {} ms for backpressure\n",
        c.emitted.load(),
        c.messages.load(),
        c.commands.load(),
        c.joins.load(),
        c.paused_ticks.load() * 10);
    fmt::print(
        out,
        "handled: {} events ({} failed), {:.0f} events/s; handler latency p50 {:.3f} ms p99 {:.3f} ms\n",
        c.handled.load(),
        c.failed.load(),
        secs > 0 ? static_cast<double>(c.handled.load()) / secs : 0.0,
        pct(0.50),
        pct(0.99));
    fmt::print(out,
               "outcomes: xp +{}, warnings {}, tempbans {} ({} from warnings, {} lifted by the sweep), word "
               "games {} "
               "({} won), ai answers {}, ranks {}, settings changes {}, rate limited {}\n",
               c.xp_awarded.load(),
               c.warnings.load(),
               c.bans.load(),
               c.auto_bans.load(),
               c.lifted.load(),
               c.games.load(),
               c.wins.load(),
               c.ai_answers.load(),
               c.ranks.load(),
               c.settings_changed.load(),
               c.rate_limited.load());
    for (const auto& l : service.loops())
        fmt::print(out, "loop {}: {} iterations, {} failed\n", l.name, l.iterations, l.failures);
    fmt::print(out,
               "rate limiters: {} buckets now, {} empty buckets cleaned up\n",
               service.limiter_buckets_now(),
               service.limiter_buckets_removed());
    const auto& st = service.db_stats();
    print_lane(out, "write", st.write);
    print_lane(out, "read", st.read);
    fmt::print(out,
               "database batches: {} write transactions, {:.2f} writes per transaction (max {}); queue depth "
               "max {}\n",
               st.write_batches,
               st.write_batch_mean,
               st.write_batch_max,
               st.queue_depth_max);
    out.flush();

    bool ok = c.failed == 0 && !service.close_failed();
    if (cfg.self_check) {
        try {
            ok = self_check(cfg, service.before(), service.guilds_added(), c, out) && ok;
        }
        catch (const std::exception& e) {
            fmt::print(out, "self-check: FAILED: {}\n", e.what());
            ok = false;
        }
    }
    out.flush();
    return ok ? 0 : 1;
}

} // namespace bot
